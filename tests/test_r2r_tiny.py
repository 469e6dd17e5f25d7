"""`r2r tiny-model`: a random-weight SD-1.5-architecture folder that loads like real weights."""

from __future__ import annotations

import hashlib
import json

import pytest
import torch
from diffusers import StableDiffusionPipeline

from r2r.tiny import TinyModelConfig, save_tiny_model


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # see conftest.py


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    return save_tiny_model(tmp_path_factory.mktemp("tiny") / "model")


def _sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_folder_layout_and_loading(tiny_model):
    index = json.loads((tiny_model / "model_index.json").read_text())
    assert index["_class_name"] == "StableDiffusionPipeline"
    for sub, files in {
        "unet": ["config.json", "diffusion_pytorch_model.safetensors"],
        "vae": ["config.json", "diffusion_pytorch_model.safetensors"],
        "text_encoder": ["config.json", "model.safetensors"],
        "tokenizer": ["vocab.json", "merges.txt", "tokenizer_config.json", "special_tokens_map.json"],
        "scheduler": ["scheduler_config.json"],
    }.items():
        for f in files:
            assert (tiny_model / sub / f).is_file(), f"{sub}/{f} missing"
    assert not list(tiny_model.rglob("*.bin")), "safetensors only"
    pipe = StableDiffusionPipeline.from_pretrained(str(tiny_model))
    assert pipe.safety_checker is None
    assert 2 ** (len(pipe.vae.config.block_out_channels) - 1) == 8
    assert pipe.text_encoder.config.vocab_size == len(pipe.tokenizer)
    assert pipe.unet.config.cross_attention_dim == pipe.text_encoder.config.hidden_size


def test_tokenizer_is_clip_bpe(tiny_model):
    pipe = StableDiffusionPipeline.from_pretrained(str(tiny_model))
    tok = pipe.tokenizer
    ids = tok(["the Photo, of fabric!"], padding="max_length", max_length=77).input_ids[0]
    assert len(ids) == 77 and ids[0] == tok.bos_token_id
    pieces = tok.convert_ids_to_tokens(ids[1:5])
    assert pieces[:2] == ["the</w>", "photo</w>"], pieces  # lower-cased, merged by the generated BPE merges
    assert tok.pad_token_id == tok.eos_token_id and ids[-1] == tok.eos_token_id


def test_seeded_build_is_deterministic(tiny_model, tmp_path):
    again = save_tiny_model(tmp_path / "again")
    other = save_tiny_model(tmp_path / "other", TinyModelConfig(seed=1))
    for f in ("unet/diffusion_pytorch_model.safetensors", "vae/diffusion_pytorch_model.safetensors",
              "text_encoder/model.safetensors", "tokenizer/vocab.json", "tokenizer/merges.txt"):
        assert _sha(tiny_model / f) == _sha(again / f), f
    assert _sha(tiny_model / "unet/diffusion_pytorch_model.safetensors") != _sha(
        other / "unet/diffusion_pytorch_model.safetensors")
    with pytest.raises(FileExistsError, match="overwrite"):
        save_tiny_model(again)
    save_tiny_model(again, overwrite=True)


def test_self_attention_at_three_resolutions(tiny_model):
    pipe = StableDiffusionPipeline.from_pretrained(str(tiny_model))
    seen: dict[str, int] = {}

    class Record:
        def __init__(self, name, inner):
            self.name, self.inner = name, inner

        def __call__(self, attn, hidden_states, encoder_hidden_states=None, **kw):
            if encoder_hidden_states is None:
                seen[self.name] = hidden_states.shape[1]
            return self.inner(attn, hidden_states, encoder_hidden_states=encoder_hidden_states, **kw)

    pipe.unet.set_attn_processor({n: Record(n, p) for n, p in pipe.unet.attn_processors.items()})
    with torch.no_grad():
        pipe.unet(torch.randn(1, 4, 8, 8), 10, encoder_hidden_states=torch.randn(1, 77, 32))
    assert sorted(set(seen.values()), reverse=True) == [64, 16, 4, 1]  # /1, /2, /4 and the mid block
    assert sum(1 for v in seen.values() if v == 64) == 5  # 2 down + 3 up, as in SD-1.5


def test_tiny_model_overwrite_removes_only_its_own_files(tmp_path):
    import shutil

    from synfashion.fs.ownership import OWNER_FILE, OwnershipError

    from r2r.tiny import TinyModelConfig, save_tiny_model

    cfg = TinyModelConfig(unet_channels=(16, 32), unet_layers_per_block=1)
    out = save_tiny_model(tmp_path / "m", cfg)
    (out / "notes.txt").write_text("mine")
    (out / "unet" / "mine.bin").write_bytes(b"mine too")
    save_tiny_model(out, cfg, overwrite=True)  # its own folder: its files replaced, the user's left where they are
    assert (out / "notes.txt").read_text() == "mine" and (out / "unet" / "mine.bin").read_bytes() == b"mine too"
    assert (out / "unet" / "diffusion_pytorch_model.safetensors").is_file()
    # a model folder that this command did not write (here: the same files without its mark) is never replaced
    model = tmp_path / "real-model"
    shutil.copytree(out, model)
    (model / OWNER_FILE).unlink()
    other = tmp_path / "photos"
    other.mkdir()
    (other / "a.jpg").write_bytes(b"a photo")
    for folder in (model, other):
        before = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*"))
        with pytest.raises(OwnershipError, match="holds no r2r tiny-model output"):
            save_tiny_model(folder, cfg, overwrite=True)
        assert sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*")) == before
    assert (other / "a.jpg").read_bytes() == b"a photo"
