"""DKI training end to end on CPU: a tiny SD-1.5-architecture model and the generated SynFashion sample.

Negative textual inversion (through the CLI), positive LoRA and full finetuning: the loss on a fixed batch goes
down, the artifacts load with diffusers' own loaders and change the output, only the new embedding rows change,
resume continues exactly, a run killed mid-save leaves the previous checkpoint usable.
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from cards.common import validate_model_card
from r2r.dki import (
    DataConfig,
    NegativeConfig,
    NegativeTrainer,
    PositiveConfig,
    PositiveTrainer,
    RunConfig,
    TrainConfig,
    latest_checkpoint,
    list_checkpoints,
)
from r2r.commands import dki as dki_cli
from r2r.dki.checkpoint import TMP_PREFIX, checkpoint_dir

RES = 64


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # see conftest.py


@pytest.fixture(scope="module")
def model(tiny_dki_model):
    return tiny_dki_model  # conftest.py: made once per test process


@pytest.fixture(scope="module")
def renders(tmp_path_factory):
    """A SynFashion build of a small generated sample (3 categories x 2 projects x 1 texture x 4 views)."""
    from synfashion.build import BuildConfig, build_dataset
    from synfashion.sample import SampleConfig, generate_sample
    from synfashion.splits import SplitConfig

    root = tmp_path_factory.mktemp("sample")
    cfg = SampleConfig(width=96, height=128, projects_per_category=2, textures_per_project=1,
                       categories=("pants", "t-shirt", "lingerie-and-swimwear"))
    generate_sample(root / "release", cfg, workers=1, progress=False)
    # all in train: with 6 projects, which categories a hash split leaves in train is luck, and the tests train on pants
    everything_train = BuildConfig(split=SplitConfig(fractions={"train": 1.0}))
    build_dataset(root / "release", root / "built", everything_train, workers=1, progress=False)
    return root / "built"


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    """'Real photos': an image folder with captions in metadata.jsonl."""
    root = tmp_path_factory.mktemp("photos")
    rng = np.random.default_rng(1)
    rows = []
    for i in range(6):
        yy, xx = np.mgrid[0:80, 0:72]
        base = np.stack([(xx * 3 + i * 20) % 256, (yy * 3) % 256, ((xx + yy) * 2) % 256], -1)
        img = np.clip(base + rng.normal(0, 20, base.shape), 0, 255).astype(np.uint8)
        Image.fromarray(img).save(root / f"p{i}.jpg", quality=95)
        rows.append({"file_name": f"p{i}.jpg", "text": f"a photo of fabric {i % 2}"})
    (root / "metadata.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    return root


def _train(**kw) -> TrainConfig:
    base = dict(steps=4, lr=5e-2, batch_size=2, checkpoint_every=2, progress=False, log_every=1)
    base.update(kw)
    return TrainConfig(**base)


def _negative_run(model, renders, out, *, train: TrainConfig | None = None, resume=None, **method) -> RunConfig:
    data = DataConfig(source=str(renders), split="train", categories=("pants",), resolution=RES, num_workers=0)
    return RunConfig(model=str(model), out=str(out), data=data, train=train or _train(),
                     method=NegativeConfig(num_vectors=2, **method), resume=resume)


def _pipe(model):
    from diffusers import StableDiffusionPipeline

    pipe = StableDiffusionPipeline.from_pretrained(str(model), safety_checker=None, requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def _generate(pipe, negative_prompt: str) -> np.ndarray:
    return pipe("a photo of a garment", negative_prompt=negative_prompt, num_inference_steps=2, height=RES,
                width=RES, output_type="np", generator=torch.Generator().manual_seed(0)).images


def test_negative_cli_trains_only_the_new_rows_and_loads(model, renders, tmp_path):
    out = tmp_path / "neg"
    parser = argparse.ArgumentParser()
    dki_cli.register(parser.add_subparsers())
    args = parser.parse_args([
        "train-negative", "--model", str(model), "--renders", str(renders), "--out", str(out), "--category", "pants",
        "--num-vectors", "2", "--steps", "4", "--lr", "5e-2", "--batch-size", "2", "--resolution", str(RES),
        "--checkpoint-every", "2", "--num-workers", "0", "--no-progress", "--log-every", "1",
    ])
    trainer = NegativeTrainer(dki_cli.negative_run(args))
    result = trainer.fit()

    assert result.steps == 4 and len(result.losses) == 4
    assert result.eval_loss_after < result.eval_loss_before - 1e-3  # fixed batch: same images, noise, timesteps
    # only the two new rows were trained: every other text-encoder / UNet tensor equals the base model's
    base = _pipe(model)
    trained_te = trainer.components.text_encoder.state_dict()
    for name, value in base.text_encoder.state_dict().items():
        key = name.replace("token_embedding.weight", "token_embedding.base.weight")
        got = trained_te[key]
        assert torch.equal(got[: value.shape[0]], value), name
    for name, value in base.unet.state_dict().items():
        assert torch.equal(trainer.components.unet.state_dict()[name].float(), value), name
    # the artifact: {token: [K, D]} as diffusers writes it
    emb = load_file(str(out / "learned_embeds.safetensors"))
    assert list(emb) == ["<rendered>"] and emb["<rendered>"].shape == (2, 32)
    assert torch.equal(emb["<rendered>"], trainer.learned_vectors())
    # loads with diffusers' loader, and as the negative prompt it changes the output
    plain = _generate(base, "")
    base.load_textual_inversion(str(out))
    assert {"<rendered>", "<rendered>_1"} <= set(base.tokenizer.get_vocab())
    assert np.abs(_generate(base, "<rendered>") - plain).max() > 1e-3
    # card, curve, run record
    card = (out / "README.md").read_text()
    data = validate_model_card(card).data.to_dict()
    assert data["license"] == "cc-by-nc-nd-4.0" and "textual_inversion" in data["tags"]
    assert "CC BY-NC-ND 4.0" in card and "![loss curve](loss_curve.png)" in card
    assert Image.open(out / "loss_curve.png").size == (800, 400)
    record = json.loads((out / "training_run.json").read_text())
    split = record["data"]["filters"].get("split")
    manifest = json.loads((renders / "manifest.json").read_text())
    pants = [m for m in manifest["samples"] if m["category"] == "pants" and split in (None, m["split"])]
    assert record["data"]["num_images"] == len(pants) > 0 and record["data"]["filters"]["categories"] == ["pants"]


def test_negative_embedding_loads_into_the_translation_pipeline(model, renders, tmp_path):
    """`r2r translate-images --negative-embedding` takes the file as it is (r2r.models)."""
    models = pytest.importorskip("r2r.models")
    out = tmp_path / "neg"
    NegativeTrainer(_negative_run(model, renders, out, train=_train(steps=1, checkpoint_every=0))).fit()
    spec = models.ModelSpec(str(model), negative_embedding=str(out / "learned_embeds.safetensors"))
    pipe = models.load_pipeline(spec)
    assert pipe.negative_token == "<rendered>"


def test_positive_lora_loads_and_changes_the_unet(model, photos, tmp_path):
    out = tmp_path / "lora"
    data = DataConfig(source=str(photos), resolution=RES, num_workers=0, flip=0.5)  # both flips cached
    run = RunConfig(model=str(model), out=str(out), data=data, train=_train(lr=1e-2),
                    method=PositiveConfig(lora_rank=4))
    trainer = PositiveTrainer(run)
    result = trainer.fit()
    assert result.eval_loss_after < result.eval_loss_before - 1e-3
    assert trainer.batches.mean.shape[1] == 2  # cached latents of both orientations
    assert set(trainer.captions.index) == {"a photo of fabric 0", "a photo of fabric 1"}  # encoded once each
    assert (out / "pytorch_lora_weights.safetensors").is_file()

    pipe = _pipe(model)
    x = torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(0))
    states = torch.randn(1, 77, 32, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        before = pipe.unet(x, 500, states).sample
        pipe.load_lora_weights(str(out))
        after = pipe.unet(x, 500, states).sample
    assert (after - before).abs().max() > 1e-4
    data = validate_model_card((out / "README.md").read_text()).data.to_dict()
    assert "lora" in data["tags"] and data["license"] == "other"  # real photos: not SynFashion-derived
    models = pytest.importorskip("r2r.models")  # what `r2r translate-images --lora OUT` does
    models.load_pipeline(models.ModelSpec(str(model), lora=str(out)))


def test_positive_full_with_ema_saves_a_pipeline(model, photos, tmp_path):
    from diffusers import StableDiffusionPipeline

    out = tmp_path / "full"
    data = DataConfig(source=str(photos), resolution=RES, num_workers=0, captions="none")
    run = RunConfig(model=str(model), out=str(out), data=data, train=_train(steps=2, lr=1e-3),
                    method=PositiveConfig(full=True, ema=True, ema_decay=0.5))
    trainer = PositiveTrainer(run)
    trainer.fit()
    saved = StableDiffusionPipeline.from_pretrained(str(out), safety_checker=None, requires_safety_checker=False)
    base = _pipe(model)
    ema = trainer.ema.shadow_params
    name, param = next((n, p) for n, p in saved.unet.named_parameters() if n.endswith("conv_in.weight"))
    index = [n for n, _ in trainer.trained_unet().named_parameters()].index(name)
    assert torch.allclose(param, ema[index].cpu())  # the EMA weights were exported
    assert not torch.equal(param, dict(base.unet.named_parameters())[name])
    assert validate_model_card((out / "README.md").read_text()).data.to_dict()["base_model"] == "model"


def _optimizer_state(trainer) -> dict[str, torch.Tensor]:
    state = trainer.optimizer.state_dict()["state"]
    return {f"{i}.{k}": v.clone() for i, s in state.items() for k, v in s.items() if torch.is_tensor(v)}


def test_resume_continues_exactly(model, renders, tmp_path):
    straight = NegativeTrainer(_negative_run(model, renders, tmp_path / "a"))
    straight.fit()

    first = NegativeTrainer(_negative_run(model, renders, tmp_path / "b", train=_train(steps=2)))
    first.fit()
    saved_opt = _optimizer_state(first)
    resumed = NegativeTrainer(_negative_run(model, renders, tmp_path / "b", resume="latest")).setup()
    assert resumed.state.step == 2 and resumed.resumed_from.name == "checkpoint-00000002"
    got = _optimizer_state(resumed)
    assert got.keys() == saved_opt.keys() and all(torch.equal(got[k], saved_opt[k]) for k in got)
    assert torch.equal(resumed.learned_vectors(), first.learned_vectors())
    resumed.fit()
    assert resumed.state.losses == pytest.approx(straight.state.losses, abs=1e-6)
    assert torch.allclose(resumed.learned_vectors(), straight.learned_vectors(), atol=1e-6)
    a, b = _optimizer_state(straight), _optimizer_state(resumed)
    assert all(torch.allclose(a[k], b[k], atol=1e-7) for k in a)


def test_kill_mid_save_keeps_the_previous_checkpoint(model, renders, tmp_path, monkeypatch):
    out = tmp_path / "run"
    trainer = NegativeTrainer(_negative_run(model, renders, out, train=_train(steps=3, checkpoint_every=1)))
    trainer.setup()
    real_save = trainer.accelerator.save_state

    def dying_save(output_dir, **kw):
        real_save(output_dir, **kw)  # weights and optimizer state are on disk, trainer_state.json is not
        if trainer.state.step == 2:
            raise KeyboardInterrupt("killed while saving")

    monkeypatch.setattr(trainer.accelerator, "save_state", dying_save)
    with pytest.raises(KeyboardInterrupt):
        trainer.fit()
    assert [s for s, _ in list_checkpoints(out)] == [1]
    assert (checkpoint_dir(out) / f"{TMP_PREFIX}00000002").is_dir()  # the half-written one is ignored
    assert latest_checkpoint(out).name == "checkpoint-00000001"

    resumed = NegativeTrainer(_negative_run(model, renders, out, train=_train(steps=3, checkpoint_every=1),
                                            resume="latest"))
    result = resumed.fit()
    assert resumed.resumed_from.name == "checkpoint-00000001" and result.steps == 3
    assert not list(checkpoint_dir(out).glob(f"{TMP_PREFIX}*"))
    assert [s for s, _ in list_checkpoints(out)] == [2, 3]  # keep_checkpoints=2


@pytest.fixture
def fresh_accelerate_state():
    """accelerate keeps one precision per process; reset it around a bf16 run (as accelerate's own tests do)."""
    from accelerate.state import AcceleratorState

    AcceleratorState._reset_state(True)
    yield
    AcceleratorState._reset_state(True)


def test_bf16_keeps_trainable_weights_float32_and_resumes(model, photos, tmp_path, fresh_accelerate_state):
    def run(steps, resume=None):
        return RunConfig(model=str(model), out=str(tmp_path / "bf16"),
                         data=DataConfig(source=str(photos), resolution=RES, num_workers=0),
                         train=_train(steps=steps, lr=1e-2, mixed_precision="bf16", checkpoint_every=1),
                         method=PositiveConfig(lora_rank=2), resume=resume)

    first = PositiveTrainer(run(2))
    first.fit()
    assert first.weight_dtype == torch.bfloat16 and first.batches.mean.dtype == torch.bfloat16
    assert {p.dtype for p in first.params} == {torch.float32}  # LoRA weights train in float32
    assert first.trained_unet().conv_in.weight.dtype == torch.bfloat16  # frozen base in the compute dtype
    resumed = PositiveTrainer(run(3, resume="latest"))
    result = resumed.fit()
    assert resumed.resumed_from.name == "checkpoint-00000002" and result.steps == 3
    assert result.losses[:2] == first.state.losses and np.isfinite(result.losses).all()
