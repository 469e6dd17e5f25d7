"""TAC processor, layer selection and foreground mask, on a bare diffusers Attention layer (no model needed)."""

from __future__ import annotations

import pytest
import torch
from diffusers.models.attention_processor import Attention, AttnProcessor2_0

from r2r.rig.tac import (
    ForegroundMask,
    SwapRows,
    TACAttnProcessor,
    TACConfig,
    TACController,
    foreground_from_pixels,
    layer_sizes,
)


@pytest.fixture()
def attn() -> Attention:
    torch.manual_seed(0)
    return Attention(query_dim=16, heads=2, dim_head=8).eval()


def _qkv(attn: Attention, x: torch.Tensor):
    b, n, _ = x.shape
    q, k, v = (f(x).view(b, n, attn.heads, -1).transpose(1, 2) for f in (attn.to_q, attn.to_k, attn.to_v))
    return q, k, v


def _out(attn: Attention, o: torch.Tensor) -> torch.Tensor:
    b, h, n, d = o.shape
    return attn.to_out[0](o.transpose(1, 2).reshape(b, n, h * d))


def _run(attn: Attention, processor, x: torch.Tensor, context=None) -> torch.Tensor:
    attn.set_processor(processor)
    with torch.no_grad():
        return attn(x, encoder_hidden_states=context)


def test_config_threshold_and_patterns():
    c = TACConfig(layers=256)
    # 768x1024 image: 12288 and 3072 tokens selected, 768 not
    assert c.selects("x", 12288, 1024, 768) and c.selects("x", 3072, 1024, 768)
    assert not c.selects("x", 768, 1024, 768)
    assert TACConfig(layers=64).selects("x", 12, 32, 24) and not TACConfig(layers=64).selects("x", 11, 32, 24)
    named = TACConfig(layers=None, blocks=("up_blocks.3.*", "down_blocks.0"))
    assert named.selects("up_blocks.3.attentions.2.transformer_blocks.0.attn1", 1, 64, 64)
    assert named.selects("down_blocks.0.attentions.1.transformer_blocks.0.attn1", 1, 64, 64)
    assert not named.selects("down_blocks.01.attentions.1.transformer_blocks.0.attn1", 1, 64, 64)
    assert not named.selects("up_blocks.2.attentions.0.transformer_blocks.0.attn1", 10**6, 64, 64)
    with pytest.raises(ValueError, match="ratio"):
        TACConfig(ratio=1.5)


def test_inactive_processor_equals_sdpa_default(attn):
    x = torch.randn(3, 16, 16)
    ctx = torch.randn(3, 5, 16)
    ctl = TACController()
    tac = TACAttnProcessor(ctl, "a.attn1")
    for c in (None, ctx):
        assert torch.allclose(_run(attn, tac, x, c), _run(attn, AttnProcessor2_0(), x, c), atol=1e-6)
    assert not ctl.swaps


def test_swap_changes_only_target_rows(attn):
    # rows [target uncond, source cond, target cond] x 2 images
    x = torch.randn(6, 16, 16)
    ctl = TACController()
    ctl.reset(TACConfig(layers=256), height=64, width=64)  # 16 tokens >= 64*64/256
    tac = TACAttnProcessor(ctl, "a.attn1")
    plain = _run(attn, AttnProcessor2_0(), x)
    with ctl.unet_call(step=3, rows=SwapRows(source=2, target=4, count=2)):
        swapped = _run(attn, tac, x)
    assert torch.allclose(swapped[:4], plain[:4], atol=1e-6), "only the target rows may change"
    q, k, v = _qkv(attn, x)
    scale = attn.scale
    expected = _out(attn, torch.softmax(q[2:4] @ k[2:4].transpose(-1, -2) * scale, -1) @ v[4:6])
    assert torch.allclose(swapped[4:], expected, atol=1e-5), "target = softmax(Q_src K_src^T) V_target"
    assert not torch.allclose(swapped[4:], plain[4:], atol=1e-3)
    assert ctl.swaps == {("a.attn1", 3): 1}


def test_no_swap_in_cross_attention_or_small_layers(attn):
    x = torch.randn(3, 16, 16)
    ctl = TACController()
    tac = TACAttnProcessor(ctl, "a.attn1")
    rows = SwapRows(source=1, target=2, count=1)
    ctl.reset(TACConfig(layers=256), height=128, width=128)  # needs 64 tokens: a 16-token layer is not selected
    with ctl.unet_call(step=0, rows=rows):
        assert torch.allclose(_run(attn, tac, x), _run(attn, AttnProcessor2_0(), x), atol=1e-6)
    ctl.reset(TACConfig(layers=256), height=64, width=64)
    ctx = torch.randn(3, 5, 16)
    with ctl.unet_call(step=0, rows=rows):
        assert torch.allclose(_run(attn, tac, x, ctx), _run(attn, AttnProcessor2_0(), x, ctx), atol=1e-6)
    assert not ctl.swaps


def test_layer_sizes():
    assert layer_sizes(12, 16) == {192: (12, 16), 48: (6, 8), 12: (3, 4), 4: (2, 2), 1: (1, 1)}
    assert layer_sizes(13, 7) == {91: (13, 7), 28: (7, 4), 8: (4, 2), 2: (2, 1), 1: (1, 1)}


def test_foreground_from_pixels():
    img = torch.full((1, 3, 2, 3), 0.5)
    img[0, :, 0, 0] = 0.0  # exactly black: background
    img[0, :, 0, 1] = 1.0  # exactly white: background
    img[0, :, 0, 2] = 1 / 255  # near black: foreground
    img[0, 0, 1, 0] = 0.0  # one channel black: foreground
    img[0, :, 1, 1] = torch.tensor([1.0, 1.0, 254 / 255])  # near white: foreground
    fg = foreground_from_pixels(img)
    assert fg.tolist() == [[[False, False, True], [True, True, True]]]


def test_mask_nearest_resize_per_layer():
    fg = torch.ones(1, 64, 32, dtype=torch.bool)
    fg[:, :, :16] = False  # left half background
    m = ForegroundMask(fg, latent_size=(8, 4))
    top = m.at_layer(32).view(8, 4)
    assert top[:, :2].sum() == 0 and top[:, 2:].all()
    assert m.at_layer(8).view(4, 2).tolist() == [[False, True]] * 4
    with pytest.raises(ValueError, match="no UNet level has 7 tokens"):
        m.at_layer(7)


def test_mask_blocks_background_to_background_only(attn):
    torch.manual_seed(1)
    x = torch.randn(2, 16, 16)
    fg = torch.zeros(2, 32, 32, dtype=torch.bool)
    fg[0, :16] = True  # image 0: top half foreground; image 1: no foreground at all
    mask = ForegroundMask(fg, latent_size=(4, 4))
    ctl = TACController()
    ctl.reset(TACConfig(), 32, 32)
    tac = TACAttnProcessor(ctl, "a.attn1")
    with ctl.unet_call(mask=mask):
        out = _run(attn, tac, x)
    q, k, v = _qkv(attn, x)
    f = mask.at_layer(16)[0].float()
    bias = torch.outer(1 - f, 1 - f) * -1e6  # the published rule: -1e6 on background-background logits
    logits = q[0] @ k[0].transpose(-1, -2) * attn.scale + bias
    expected0 = _out(attn, (torch.softmax(logits, -1) @ v[0])[None])[0]
    assert torch.allclose(out[0], expected0, atol=1e-5)
    assert torch.allclose(out[1], _run(attn, AttnProcessor2_0(), x)[1], atol=1e-6), "no foreground: unmasked"
    # cross-attention never masked
    ctx = torch.randn(2, 5, 16)
    with ctl.unet_call(mask=mask):
        assert torch.allclose(_run(attn, tac, x, ctx), _run(attn, AttnProcessor2_0(), x, ctx), atol=1e-6)


def test_mask_rows_repeat_per_image_group():
    fg = torch.zeros(2, 16, 16, dtype=torch.bool)
    fg[0, :8] = True
    m = ForegroundMask(fg, latent_size=(2, 2))
    allowed = m.allowed(4, 6)  # 3 groups x 2 images
    assert allowed.shape == (6, 1, 4, 4)
    assert torch.equal(allowed[0], allowed[2]) and torch.equal(allowed[1], allowed[5])
    assert allowed[1].all()  # image without foreground: unmasked
    assert not allowed[0, 0, 3, 2]  # background -> background blocked
    assert allowed[0, 0, 3, 0] and allowed[0, 0, 0, 3]  # pairs with a foreground position allowed
    with pytest.raises(ValueError, match="groups"):
        m.allowed(4, 5)
