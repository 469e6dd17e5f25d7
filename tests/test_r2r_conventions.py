"""R2RPipeline follows diffusers' image-to-image calling conventions (issue 16): `image` (alias `images`),
`check_inputs` before any work, `callback_on_step_end`, `VaeImageProcessor`, `num_images_per_prompt`, an example
docstring, and `generator` documented as unused."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from diffusers.callbacks import PipelineCallback
from diffusers.image_processor import VaeImageProcessor

from r2r.models import ModelSpec, load_pipeline
from r2r.rig.pipeline import R2RPipeline

FAST = {"num_inference_steps": 8, "strength": 0.5, "negative_prompt": "cg render", "output_type": "pt"}  # k = 4

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # see conftest.py


def image(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(1, 255, (32, 32, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def pipe(tiny_model) -> R2RPipeline:
    return load_pipeline(ModelSpec(str(tiny_model)))


def test_image_and_its_alias_images(pipe):
    base = pipe(image(), **FAST).images
    assert torch.equal(pipe(image=image(), **FAST).images, base)
    assert torch.equal(pipe(images=image(), **FAST).images, base)
    with pytest.raises(ValueError, match="not both"):
        pipe(image=image(), images=image(), **FAST)


def test_check_inputs_fails_before_any_work(pipe, monkeypatch):
    def no_work(*a, **k):
        raise AssertionError("the model ran before the arguments were checked")

    monkeypatch.setattr(pipe, "encode_images", no_work)
    monkeypatch.setattr(pipe, "encode_prompts", no_work)
    bad = [({"strength": 0.0}, "strength"), ({"num_inference_steps": 0}, "num_inference_steps"),
           ({"num_inference_steps": 3, "strength": 0.3}, "leaves no step"), ({"tac_ratio": 1.5}, "tac_ratio"),
           ({"tac_layers": 0}, "tac_layers"), ({"inversion_order": "up"}, "inversion_order"),
           ({"output_type": "jpeg"}, "output_type"), ({"num_images_per_prompt": 2}, "identical copies"),
           ({"vae_batch_size": 0}, "vae_batch_size"), ({"guidance_scale": float("nan")}, "guidance_scale"),
           ({"callback_on_step_end_tensor_inputs": ["latents", "eps"]}, r"has to be in .*\['eps'\]")]
    for kw, match in bad:
        with pytest.raises(ValueError, match=match):
            pipe(image(), **{**FAST, **kw})
    with pytest.raises(ValueError, match="`image` is required"):
        pipe(**FAST)


def test_callback_on_step_end_sees_every_step_and_can_replace_latents(pipe):
    seen = []

    def watch(p, i, t, tensors):
        assert p is pipe and set(tensors) == {"latents", "noise_pred"}
        assert tensors["latents"].shape == tensors["noise_pred"].shape == (1, 4, 4, 4)
        seen.append((i, t))
        return {}

    base = pipe(image(), **FAST).images
    out = pipe(image(), callback_on_step_end=watch, callback_on_step_end_tensor_inputs=["latents", "noise_pred"],
               **FAST).images
    assert torch.equal(out, base), "a callback that returns nothing changes nothing"
    assert [i for i, _ in seen] == [0, 1, 2, 3] and [t for _, t in seen] == sorted((t for _, t in seen), reverse=True)
    assert pipe.num_timesteps == 4 and pipe.guidance_scale == 7.5

    zeroed = pipe(image(), callback_on_step_end=lambda p, i, t, d: {"latents": d["latents"] * 0} if i == 3 else {},
                  **FAST).images
    assert (zeroed - base).abs().mean() > 1e-3, "returned latents replace the pipeline's"
    assert torch.equal(zeroed, pipe.decode_latents(torch.zeros(1, 4, 4, 4)))


def test_callback_embeddings_and_interrupt(pipe):
    base = pipe(image(), **FAST).images
    got = {}

    def swap_negative(p, i, t, d):
        got[i] = d["negative_prompt_embeds"].shape
        return {"negative_prompt_embeds": d["prompt_embeds"]} if i == 0 else {}

    changed = pipe(image(), callback_on_step_end=swap_negative,
                   callback_on_step_end_tensor_inputs=["prompt_embeds", "negative_prompt_embeds"], **FAST).images
    assert got[0] == (1, 77, pipe.text_encoder.config.hidden_size)
    assert (changed - base).abs().mean() > 1e-4, "a returned embedding is used for the next steps"

    steps = []

    def stop_after_two(p, i, t, d):
        steps.append(i)
        if i == 1:
            p._interrupt = True
        return {}

    pipe(image(), callback_on_step_end=stop_after_two, **FAST)
    assert steps == [0, 1] and pipe.interrupt


def test_pipeline_callback_objects(pipe):
    class Count(PipelineCallback):
        tensor_inputs = ["latents"]

        def callback_fn(self, pipeline, step_index, timestep, callback_kwargs):
            self.calls = getattr(self, "calls", 0) + 1
            return callback_kwargs

    cb = Count()
    assert torch.equal(pipe(image(), callback_on_step_end=cb, **FAST).images, pipe(image(), **FAST).images)
    assert cb.calls == 4


def test_image_processor_generator_and_docs(pipe):
    assert isinstance(pipe.image_processor, VaeImageProcessor) and not pipe.image_processor.config.do_resize
    a = pipe(image(), generator=torch.Generator().manual_seed(1), **FAST).images
    b = pipe(image(), generator=[torch.Generator().manual_seed(2)], **FAST).images
    assert torch.equal(a, b), "generator is documented as unused: RIG draws no random numbers"
    doc = R2RPipeline.__call__.__doc__
    assert "generator: unused" in doc and ">>> real = pipe(image=render" in doc
    pil = pipe(image(), **{**FAST, "output_type": "pil"}).images[0]
    assert np.array_equal(np.asarray(pil), (a[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8))
