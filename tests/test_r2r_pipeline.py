"""R2RPipeline behaviour on the tiny model: batching, determinism, TAC placement, ablations, masks, inputs."""

from __future__ import annotations

from dataclasses import asdict

import numpy as np
import pytest
import torch
from diffusers import DDIMInverseScheduler, DDIMScheduler
from diffusers.models.attention_processor import AttnProcessor2_0

from r2r.models import ModelSpec, load_pipeline
from r2r.rig.pipeline import R2RPipeline, RIGParams
from r2r.rig.schedule import RIG_SCHEDULER_CONFIG, RIGSchedule, ddim_move
from r2r.rig.tac import self_attention_layers

STEPS, K = 10, 5  # k = int(strength * steps) denoising steps (and as many inversion steps)
FAST = {"num_inference_steps": STEPS, "strength": 0.5, "negative_prompt": "cg render"}


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # see conftest.py


def rendered_image(height: int, width: int, seed: int = 0, background: bool = False) -> np.ndarray:
    """Textured uint8 RGB without exactly black/white pixels, or with a white and a black background band."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width]
    stripes = 127 + 90 * np.sin(xx / 2.5 + seed) * np.cos(yy / 4.0)
    img = np.clip(np.stack([stripes, stripes[:, ::-1], rng.integers(20, 235, (height, width))], -1), 1, 254)
    img = img.astype(np.uint8)
    if background:
        img[:, : width // 4] = 255
        img[: height // 4] = 0
    return img


@pytest.fixture(scope="module")
def pipe(tiny_model) -> R2RPipeline:
    return load_pipeline(ModelSpec(str(tiny_model)))


def run(pipe, images, **kw) -> torch.Tensor:
    return pipe(images, output_type="pt", **{**FAST, **kw}).images


def test_batch_equals_one_by_one(pipe):
    images = [rendered_image(64, 64, seed=s) for s in range(3)]
    prompts = ["", "a photo", "the real garment"]
    batch = run(pipe, images, target_prompt=prompts, generator=[torch.Generator().manual_seed(i) for i in range(3)])
    for i, image in enumerate(images):
        single = run(pipe, image, target_prompt=prompts[i], generator=torch.Generator().manual_seed(i))
        diff = (batch[i] - single[0]).abs()
        assert diff.max() < 1e-3 and diff.mean() < 1e-5, f"image {i}: mean {diff.mean():.2e} max {diff.max():.2e}"


def test_deterministic(pipe):
    image = rendered_image(64, 64, seed=5)
    assert torch.equal(run(pipe, image), run(pipe, image))


def _expected_layers(pipe, height: int, width: int, layers: int) -> set[str]:
    """Self-attention layers of levels with >= H*W/layers tokens, derived from the UNet config."""
    cfg = pipe.unet.config
    n_levels = len(cfg.block_out_channels)
    names = set()
    for level in range(n_levels):
        tokens = (height // 8 >> level) * (width // 8 >> level)
        if tokens * layers < height * width:
            continue
        if cfg.down_block_types[level].startswith("CrossAttn"):
            names |= {f"down_blocks.{level}.attentions.{a}.transformer_blocks.0.attn1"
                      for a in range(cfg.layers_per_block)}
        up = n_levels - 1 - level
        if cfg.up_block_types[up].startswith("CrossAttn"):
            names |= {f"up_blocks.{up}.attentions.{a}.transformer_blocks.0.attn1"
                      for a in range(cfg.layers_per_block + 1)}
    deepest = (height // 8 >> (n_levels - 1)) * (width // 8 >> (n_levels - 1))
    if deepest * layers >= height * width:
        names.add("mid_block.attentions.0.transformer_blocks.0.attn1")
    return names


@pytest.mark.parametrize("layers,ratio", [(256, 0.9), (64, 0.5), (4096, 0.25)])
def test_tac_swaps_exactly_the_expected_layers_and_steps(pipe, layers, ratio):
    run(pipe, rendered_image(64, 64), tac_layers=layers, tac_ratio=ratio)
    expected_layers = _expected_layers(pipe, 64, 64, layers)
    steps = int(K * ratio)
    assert pipe.tac.swaps == {(name, i): 1 for name in expected_layers for i in range(steps)}
    assert 0 < len(expected_layers) < len(self_attention_layers(pipe.unet)) or layers == 4096


def test_tac_by_block_names(pipe):
    run(pipe, rendered_image(64, 64), tac_layers=None, tac_blocks=["up_blocks.3.*"], tac_ratio=0.7)
    assert pipe.tac.swapped_layers() == {f"up_blocks.3.attentions.{a}.transformer_blocks.0.attn1" for a in range(3)}
    assert pipe.tac.swapped_steps() == {0, 1, 2}


def test_tac_that_selects_nothing_equals_no_tac(pipe):
    image = rendered_image(64, 64, seed=2)
    no_tac = run(pipe, image, use_tac=False)
    assert not pipe.tac.swaps
    assert torch.allclose(run(pipe, image, tac_ratio=0.0), no_tac, atol=1e-5)
    assert torch.allclose(run(pipe, image, tac_layers=1), no_tac, atol=1e-5)  # n >= H*W never holds
    assert not pipe.tac.swaps
    assert (run(pipe, image) - no_tac).abs().mean() > 1e-2


@pytest.mark.parametrize("order", ["reference", "standard"])
def test_no_tac_equals_plain_inversion_plus_cfg(pipe, order):
    """use_tac=False == DDIM inversion + CFG generation written with diffusers' own schedulers and processors."""
    image = rendered_image(64, 64, seed=3)
    got = run(pipe, image, use_tac=False, inversion_order=order)

    unet, vae = pipe.unet, pipe.vae
    saved = unet.attn_processors
    unet.set_attn_processor(AttnProcessor2_0())
    try:
        with torch.no_grad():
            x = torch.from_numpy(image).permute(2, 0, 1)[None].float() / 127.5 - 1
            z = vae.encode(x).latent_dist.mean * vae.config.scaling_factor
            empty, neg = pipe.encode_prompts(["", "cg render"])
            sched = DDIMScheduler(**RIG_SCHEDULER_CONFIG)
            sched.set_timesteps(STEPS)
            used = sched.timesteps[K:]
            if order == "standard":
                inv = DDIMInverseScheduler(**{k: v for k, v in RIG_SCHEDULER_CONFIG.items() if k != "timestep_spacing"})
                inv.set_timesteps(STEPS)
                for t in inv.timesteps[:K]:
                    z = inv.step(unet(z, t, encoder_hidden_states=empty[None]).sample, t, z).prev_sample
            else:
                s = RIGSchedule.create(STEPS, 0.5)
                for t in used:
                    z = ddim_move(z, unet(z, t, encoder_hidden_states=empty[None]).sample, *s.inversion_alphas(int(t)))
            text = torch.stack([neg, empty])  # target prompt "" is the conditional
            for t in used:
                eps_u, eps_c = unet(torch.cat([z, z]), t, encoder_hidden_states=text).sample.chunk(2)
                z = sched.step(eps_u + 7.5 * (eps_c - eps_u), t, z).prev_sample
            expected = (vae.decode(z / vae.config.scaling_factor).sample / 2 + 0.5).clamp(0, 1)
    finally:
        unet.set_attn_processor(saved)
    diff = (got - expected).abs()
    assert diff.mean() < 1e-5 and diff.max() < 1e-3, f"mean {diff.mean():.2e} max {diff.max():.2e}"


def test_inversion_orders_differ(pipe):
    image = rendered_image(64, 64, seed=4)
    assert (run(pipe, image) - run(pipe, image, inversion_order="standard")).abs().mean() > 1e-3
    with pytest.raises(ValueError, match="inversion_order"):
        run(pipe, image, inversion_order="descending")


def test_mask_semantics(pipe):
    plain = rendered_image(64, 64, seed=6)  # no exactly black/white pixel: the mask is all foreground
    assert torch.allclose(run(pipe, plain, mask=True), run(pipe, plain), atol=1e-5)
    framed = rendered_image(64, 64, seed=6, background=True)
    masked = run(pipe, framed, mask=True)
    assert (masked - run(pipe, framed)).abs().mean() > 1e-3
    fg = torch.ones(1, 64, 64, dtype=torch.bool)
    fg[:, :, :16] = False
    fg[:, :16] = False
    assert torch.allclose(run(pipe, framed, mask=fg), masked, atol=1e-6), "explicit mask == derived mask"
    with pytest.raises(ValueError, match="mask must be"):
        run(pipe, framed, mask=torch.ones(1, 32, 32, dtype=torch.bool))


def test_sizes_not_divisible_by_8_are_rejected(pipe):
    with pytest.raises(ValueError, match=r"64x60 \(width x height\) is not divisible by 8"):
        run(pipe, rendered_image(60, 64))
    with pytest.raises(ValueError, match="same size"):
        run(pipe, [rendered_image(64, 64), rendered_image(64, 56)])


def test_non_square_and_output_types(pipe):
    image = rendered_image(48, 72)  # latent 6x9: odd sizes inside the UNet
    pt = run(pipe, image)
    assert pt.shape == (1, 3, 48, 72)
    np_out = pipe(image, output_type="np", **FAST).images
    assert np_out.shape == (1, 48, 72, 3) and np.allclose(np_out[0], pt[0].permute(1, 2, 0).numpy())
    pil = pipe(image, **FAST).images[0]
    assert pil.size == (72, 48)
    assert np.array_equal(np.asarray(pil), (pt[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8))
    latent = pipe(image, output_type="latent", **FAST).images
    assert latent.shape == (1, 4, 6, 9)


def test_inputs_and_params(pipe):
    image = rendered_image(64, 64, seed=7)
    base = run(pipe, image)
    as_tensor = torch.from_numpy(image).permute(2, 0, 1).float() / 255
    assert torch.equal(run(pipe, as_tensor), base)
    params = RIGParams(strength=0.5, num_inference_steps=STEPS, negative_prompt="cg render")
    assert torch.equal(pipe(image, output_type="pt", **asdict(params)).images, base)
    no_cfg = run(pipe, image, guidance_scale=1.0)  # no unconditional rows at all
    assert torch.isfinite(no_cfg).all() and (no_cfg - base).abs().mean() > 1e-3
    with pytest.raises(ValueError, match="2 prompts for 1 images"):
        run(pipe, image, target_prompt=["a", "b"])
