"""r2r/cpu_conv.py: inside cpu_conv_im2col CPU convolutions skip oneDNN (same results up to rounding), the setting
comes back afterwards (also after an error), and R2RPipeline uses it for float32 CPU UNet calls only."""

from __future__ import annotations

import pytest
import torch

from r2r.rig.cpu_conv import cpu_conv_im2col
from r2r.models import ModelSpec, load_pipeline


def test_switch_and_restore():
    assert torch.backends.mkldnn.enabled
    conv = torch.nn.Conv2d(8, 16, 3, padding=1)
    x = torch.randn(1, 8, 6, 6)
    with torch.no_grad():
        plain = conv(x)
        with cpu_conv_im2col():
            assert not torch.backends.mkldnn.enabled
            routed = conv(x)
        assert torch.backends.mkldnn.enabled
        with cpu_conv_im2col(False):
            assert torch.backends.mkldnn.enabled
    assert torch.allclose(routed, plain, atol=1e-5)
    with pytest.raises(RuntimeError), cpu_conv_im2col():
        raise RuntimeError
    assert torch.backends.mkldnn.enabled


@pytest.mark.usefixtures("one_torch_thread")
def test_pipeline_uses_it_for_float32_cpu_unet_calls(tiny_model):
    pipe = load_pipeline(ModelSpec(str(tiny_model)))
    seen = []
    pipe.unet.register_forward_pre_hook(lambda m, a: seen.append(torch.backends.mkldnn.enabled))
    pipe.vae.decoder.register_forward_pre_hook(lambda m, a: seen.append(("vae", torch.backends.mkldnn.enabled)))
    image = torch.rand(3, 32, 32)
    kw = {"num_inference_steps": 4, "strength": 0.5, "output_type": "pt"}
    fast = pipe(image, **kw).images
    assert seen and all(s is False for s in seen if not isinstance(s, tuple)), "UNet calls skip oneDNN"
    assert ("vae", True) in seen and torch.backends.mkldnn.enabled, "nothing else changes"
    seen.clear()
    pipe.cpu_conv_im2col = False
    plain = pipe(image, **kw).images
    assert seen and all(s is True for s in seen if not isinstance(s, tuple))
    assert (fast - plain).abs().max() < 1e-4
    seen.clear()
    pipe.cpu_conv_im2col = True
    pipe.to(torch.bfloat16)(image, **kw)
    assert all(s is True for s in seen if not isinstance(s, tuple)), "bfloat16 keeps oneDNN"
