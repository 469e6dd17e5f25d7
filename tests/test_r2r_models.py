"""Model loading with DKI artifacts: negative embedding, LoRA, finetuned UNet; identity; clear errors."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from r2r.models import resolve as model_files
from r2r.models import ModelSpec, load_pipeline, model_identity, read_embedding_file
from r2r.rig.pipeline import R2RPipeline

FAST = {"num_inference_steps": 10, "strength": 0.5, "output_type": "pt"}  # k = 5 steps


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # see conftest.py


@pytest.fixture(scope="module")
def image() -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.integers(1, 255, (64, 64, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def base_output(tiny_model, image) -> torch.Tensor:
    return load_pipeline(ModelSpec(str(tiny_model)))(image, **FAST).images


def _embedding(path, token="<rendered>", shape=(1, 32), seed=0):
    save_file({token: torch.randn(*shape, generator=torch.Generator().manual_seed(seed))}, str(path))
    return path


def test_negative_embedding_becomes_the_negative_prompt(tiny_model, image, base_output, tmp_path):
    emb = _embedding(tmp_path / "neg.safetensors", shape=(3, 32))  # multi-vector: expands to 3 tokens
    pipe = load_pipeline(ModelSpec(str(tiny_model), negative_embedding=str(emb)))
    assert pipe.negative_token == "<rendered>"
    assert {"<rendered>", "<rendered>_1", "<rendered>_2"} <= set(pipe.tokenizer.get_vocab())
    with_neg = pipe(image, **FAST).images
    assert (with_neg - base_output).abs().mean() > 1e-3
    assert torch.equal(pipe(image, negative_prompt="<rendered>", **FAST).images, with_neg)
    # ablation "no negative embedding": an empty negative prompt gives the base model's output
    assert torch.allclose(pipe(image, negative_prompt="", **FAST).images, base_output, atol=1e-6)
    token, tensor = read_embedding_file(emb)
    assert token == "<rendered>" and tensor.shape == (3, 32)


def test_negative_embedding_token_override(tiny_model, tmp_path):
    emb = _embedding(tmp_path / "neg.safetensors")
    pipe = load_pipeline(ModelSpec(str(tiny_model), negative_embedding=str(emb), negative_token="<cg>"))
    assert pipe.negative_token == "<cg>" and "<cg>" in pipe.tokenizer.get_vocab()


def test_negative_embedding_errors_name_the_file(tiny_model, tmp_path):
    wide = _embedding(tmp_path / "wide.safetensors", shape=(1, 768))
    with pytest.raises(ValueError, match=r"wide\.safetensors: embedding width 768 does not match .* width 32"):
        load_pipeline(ModelSpec(str(tiny_model), negative_embedding=str(wide)))
    two = tmp_path / "two.safetensors"
    save_file({"<a>": torch.zeros(32), "<b>": torch.zeros(32)}, str(two))
    with pytest.raises(ValueError, match=r"two\.safetensors: expected one entry"):
        read_embedding_file(two)
    pickled = tmp_path / "neg.bin"
    pickled.write_bytes(b"not read")
    with pytest.raises(ValueError, match="pickled"):
        read_embedding_file(pickled)
    with pytest.raises(FileNotFoundError, match="missing.safetensors"):
        read_embedding_file(tmp_path / "missing.safetensors")


def test_lora_is_loaded_and_fused(tiny_model, image, base_output, tmp_path):
    from diffusers import StableDiffusionPipeline, UNet2DConditionModel
    from diffusers.utils import convert_state_dict_to_diffusers
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict

    unet = UNet2DConditionModel.from_pretrained(str(tiny_model), subfolder="unet")
    unet.add_adapter(LoraConfig(r=4, lora_alpha=4, target_modules=["to_q", "to_k", "to_v", "to_out.0"]))
    torch.manual_seed(0)
    for name, p in unet.named_parameters():
        if "lora_B" in name:
            p.data.normal_(0, 0.2)
    layers = convert_state_dict_to_diffusers(get_peft_model_state_dict(unet))
    StableDiffusionPipeline.save_lora_weights(str(tmp_path / "lora"), unet_lora_layers=layers, safe_serialization=True)
    lora_file = tmp_path / "lora" / "pytorch_lora_weights.safetensors"
    assert lora_file.is_file()
    out_dir = load_pipeline(ModelSpec(str(tiny_model), lora=str(tmp_path / "lora")))(image, **FAST).images
    out_file = load_pipeline(ModelSpec(str(tiny_model), lora=str(lora_file)))(image, **FAST).images
    assert torch.allclose(out_dir, out_file, atol=1e-6)
    assert (out_dir - base_output).abs().mean() > 1e-3
    zero = load_pipeline(ModelSpec(str(tiny_model), lora=str(lora_file), lora_scale=0.0))(image, **FAST).images
    assert torch.allclose(zero, base_output, atol=1e-5)


def test_finetuned_unet_folder(tiny_model, image, base_output, tmp_path):
    from diffusers import UNet2DConditionModel

    unet = UNet2DConditionModel.from_pretrained(str(tiny_model), subfolder="unet")
    unet.save_pretrained(tmp_path / "same")
    with torch.no_grad():
        unet.conv_out.weight.mul_(1.5)
    unet.save_pretrained(tmp_path / "tuned")
    same = load_pipeline(ModelSpec(str(tiny_model), unet=str(tmp_path / "same")))(image, **FAST).images
    tuned = load_pipeline(ModelSpec(str(tiny_model), unet=str(tmp_path / "tuned")))(image, **FAST).images
    assert torch.equal(same, base_output)
    assert (tuned - base_output).abs().mean() > 1e-3
    with pytest.raises(FileNotFoundError, match="not a diffusers UNet folder"):
        load_pipeline(ModelSpec(str(tiny_model), unet=str(tmp_path)))


def test_from_pretrained_on_an_sd_folder(tiny_model, image, base_output):
    pipe = R2RPipeline.from_pretrained(str(tiny_model))
    pipe.set_progress_bar_config(disable=True)
    assert torch.equal(pipe(image, **FAST).images, base_output)
    assert pipe.scheduler.config.steps_offset == 1 and pipe.scheduler.config.set_alpha_to_one is False


def test_model_identity_and_errors(tiny_model, tmp_path):
    emb = _embedding(tmp_path / "neg.safetensors")
    ident = model_identity(ModelSpec(str(tiny_model), negative_embedding=str(emb)))
    assert ident["model_path"] == str(tiny_model.resolve())
    assert "unet/diffusion_pytorch_model.safetensors" in ident["weights"]
    assert len(ident["config_sha256"]) == 64 and len(ident["negative_embedding_sha256"]) == 64
    assert model_identity(ModelSpec(str(tiny_model))) ["config_sha256"] == ident["config_sha256"]
    with pytest.raises(FileNotFoundError, match="no model_index.json"):
        load_pipeline(ModelSpec(str(tmp_path)))
    with pytest.raises(ValueError, match="dtype must be one of"):
        load_pipeline(ModelSpec(str(tiny_model), dtype="float64"))
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="CUDA is not available"):
            load_pipeline(ModelSpec(str(tiny_model), device="cuda"))


def test_a_hub_model_is_recorded_with_the_commit_it_was_loaded_at(tiny_model, tmp_path, monkeypatch):
    """A base model named by Hub id, loaded offline from the huggingface_hub cache: the identity pins the snapshot's
    commit (a branch moves; the translated dataset's provenance must not)."""
    from huggingface_hub import constants

    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = tmp_path / "hub" / "models--someone--tiny-sd"
    shutil.copytree(tiny_model, repo / "snapshots" / commit)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setattr(model_files, "_MODEL_COMMITS", {})
    spec = ModelSpec("someone/tiny-sd")
    ident = model_identity(spec)  # before loading, as translate-dataset computes its fingerprint
    assert ident["hub_id"] == "someone/tiny-sd" and ident["hub_commit"] == commit and "model_path" not in ident
    load_pipeline(spec)
    assert model_identity(spec) == ident


def test_bfloat16_runs_close_to_float32(tiny_model, image, base_output):
    out = load_pipeline(ModelSpec(str(tiny_model), dtype="bfloat16"))(image, **FAST).images
    assert out.dtype == torch.float32 and torch.isfinite(out).all()
    assert (out - base_output).abs().mean() < 0.05
