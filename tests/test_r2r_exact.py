"""Exact mode: R2RPipeline (float32, CPU, defaults) == the plain REFERENCE_RIG.md implementation, to rounding.

The reference (tests/r2r_reference.py) evaluates the published pattern: CFG in inversion with empty prompts, the
4-row [s, z, s, z] batch, a simple Q/K-swap processor. Ours skips the wasted work; the math must not change.
The tiny model has self-attention at three resolutions, and 128x96 images with layers=256 swap at two of them
(192 and 48 tokens >= 128*96/256 = 48; 12 and the mid block's 1 do not), layers=64 at one.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from r2r_reference import load_reference_pipe, reference_rig
from safetensors.torch import save_file

from r2r.models import ModelSpec, load_pipeline
from r2r.rig.tac import self_attention_layers

MEAN_TOL = 1e-4  # per-pixel mean absolute difference in [0, 1] (REFERENCE_RIG.md: rounding noise ~1e-4)
MAX_TOL = 5e-3


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # see conftest.py


def rendered_image(height: int, width: int, seed: int = 0) -> np.ndarray:
    """A textured uint8 RGB image without exactly black or white pixels."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width]
    stripes = 127 + 90 * np.sin(xx / 2.5 + seed) * np.cos(yy / 4.0)
    img = np.stack([stripes, stripes[:, ::-1], rng.integers(20, 235, (height, width))], -1)
    return np.clip(img, 1, 254).astype(np.uint8)


@pytest.fixture(scope="module")
def pipes(tmp_path_factory, tiny_model):
    root = tmp_path_factory.mktemp("exact")
    model = tiny_model
    emb = root / "negative.safetensors"
    save_file({"<rendered>": torch.randn(2, 32, generator=torch.Generator().manual_seed(3))}, str(emb))
    ref = load_reference_pipe(model, emb)
    ours = load_pipeline(ModelSpec(str(model), negative_embedding=str(emb), dtype="float32", device="cpu"))
    return ref, ours


@pytest.fixture(scope="module")
def runs(pipes):
    """Our output for `rendered_image(96, 128)` with the given keyword arguments, with the TAC layers and steps it
    swapped, computed once per module (the pipeline is deterministic: tests/test_r2r_pipeline.py)."""
    _, ours = pipes
    done: dict[tuple, tuple] = {}

    def run(**kw):
        key = tuple(sorted(kw.items()))
        if key not in done:
            images = ours(rendered_image(96, 128), output_type="pt", **kw).images
            done[key] = (images, ours.tac.swapped_layers(), ours.tac.swapped_steps())
        return done[key]

    return run


CASES = {
    "defaults": ({}, {}),
    "layers64": ({"layers": 64}, {"tac_layers": 64}),
    "prompts": (  # non-empty source prompt: CFG in inversion for both
        {"source_prompt": "a rendered garment", "target_prompt": "a real photo of the garment"},
        {"source_prompt": "a rendered garment", "target_prompt": "a real photo of the garment"},
    ),
    "no_tac": ({"use_tac": False}, {"use_tac": False}),
}


@pytest.mark.parametrize("case", list(CASES))
def test_exact_mode_matches_reference(pipes, runs, case):
    ref_pipe, _ = pipes
    ref_kw, our_kw = CASES[case]
    image = rendered_image(96, 128)
    expected = reference_rig(ref_pipe, image, negative_prompt="<rendered>", **ref_kw)
    got = runs(**our_kw)[0][0]
    assert got.shape == expected.shape == (3, 96, 128)
    inside = ((expected > 0.01) & (expected < 0.99)).float().mean()
    assert inside > 0.9, "outputs saturate: the comparison would be vacuous"
    diff = (got - expected).abs()
    assert diff.mean() < MEAN_TOL and diff.max() < MAX_TOL, f"mean {diff.mean():.2e} max {diff.max():.2e}"


def test_threshold_swaps_some_but_not_all_layers(pipes, runs):
    _, ours = pipes
    layers = self_attention_layers(ours.unet)
    _, at256, _ = runs()
    _, at64, steps64 = runs(tac_layers=64)
    assert at64 < at256 < set(layers)
    blocks = {n.split(".attentions")[0] for n in at256}
    assert blocks == {"down_blocks.0", "down_blocks.1", "up_blocks.2", "up_blocks.3"}
    assert {n.split(".attentions")[0] for n in at64} == {"down_blocks.0", "up_blocks.3"}
    assert steps64 == set(range(13))


def test_tac_and_negative_embedding_matter(runs):
    """Guards against a vacuous parity: TAC and the negative token visibly change the output."""
    base = runs()[0]
    assert (base - runs(use_tac=False)[0]).abs().mean() > 1e-2
    assert (base - runs(negative_prompt="")[0]).abs().mean() > 1e-3
