"""`r2r push-model`: DKI training folders as Hub model repos, against the Hub-compatible test server.

In-process pushes (the `client` fixture flips huggingface_hub's import-time constants, as in test_hub.py): one private
commit of exactly the recorded outputs (never .r2r-dki/, checkpoints only when asked, stale ones deleted by a later
push), the licence guard (SynFashion-trained weights warn as CC BY-NC-ND derivatives), refused folders. In
subprocesses (HF_ENDPOINT is read at import): the CLI with token hygiene, stock diffusers' `load_textual_inversion` /
`load_lora_weights` on the repo ids, `r2r translate-images` / `translate-dataset` with repo ids (identity records
repo and commit), and the same again offline from the cache.
"""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from rich.console import Console
from safetensors.torch import load_file, save_file

from conftest import small_release
from r2r.dki import (
    DataConfig,
    DKIError,
    NegativeConfig,
    NegativeTrainer,
    PositiveConfig,
    PositiveTrainer,
    RunConfig,
    TrainConfig,
)
from r2r.dki.publish import collect, push_model
from synfashion.hub import HubRepoTypeError, LicenseGuardError
from synfashion.testing.hub_server import DEFAULT_TOKEN, DEFAULT_USER, running_hub

ROOT = Path(__file__).resolve().parents[1]
RES = 48
NEG, POS = f"{DEFAULT_USER}/dki-negative", f"{DEFAULT_USER}/dki-lora"

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tiny_dki_model):
    """A tiny model, a small SynFashion build, a negative embedding trained on it (2 checkpoints) and a LoRA."""
    from synfashion.build import BuildConfig, build_dataset
    from synfashion.splits import SplitConfig

    root = tmp_path_factory.mktemp("dki-hub")
    model = tiny_dki_model
    release = small_release(root / "release", categories=("Hoodie",), projects=2, textures=1)
    source = root / "built"
    build_dataset(release, source, BuildConfig(split=SplitConfig(fractions={"train": 1.0})), workers=1,
                  progress=False)
    neg = root / "neg"
    NegativeTrainer(RunConfig(
        model=str(model), out=str(neg), data=DataConfig(source=str(source), resolution=RES, num_workers=0),
        train=TrainConfig(steps=2, batch_size=2, lr=5e-2, checkpoint_every=1, progress=False),
        method=NegativeConfig(num_vectors=2))).fit()
    photos = root / "photos"
    photos.mkdir()
    rng = np.random.default_rng(0)
    for i in range(3):
        Image.fromarray(rng.integers(0, 255, (56, 56, 3), dtype=np.uint8)).save(photos / f"p{i}.png")
    pos = root / "pos"
    PositiveTrainer(RunConfig(
        model=str(model), out=str(pos), data=DataConfig(source=str(photos), resolution=RES, num_workers=0),
        train=TrainConfig(steps=1, batch_size=2, lr=1e-2, checkpoint_every=0, progress=False),
        method=PositiveConfig(lora_rank=2))).fit()
    return types.SimpleNamespace(model=model, source=source, neg=neg, pos=pos)


@pytest.fixture
def client(monkeypatch, tmp_path):
    from huggingface_hub import constants
    from huggingface_hub.utils import _http

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "HF_HUB_DISABLE_XET", True)
    monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(tmp_path / "no-saved-login"))
    monkeypatch.setattr(_http, "time", types.SimpleNamespace(sleep=lambda s: None))
    for var in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture
def hub(client):
    with running_hub() as server:
        yield server


def push(hub, folder, repo, **kw):
    out = io.StringIO()
    kw.setdefault("token", DEFAULT_TOKEN)
    result = push_model(folder, repo, endpoint=hub.endpoint, console=Console(file=out, width=400), progress=False,
                        **kw)
    return result, out.getvalue()


def test_push_publishes_the_recorded_outputs_in_one_private_commit(hub, trained):
    result, out = push(hub, trained.neg, NEG)
    assert result.created and result.private and hub.is_private(NEG, repo_type="model")
    files = hub.files(NEG, repo_type="model")
    assert set(files) == {".gitattributes", "README.md", "learned_embeds.safetensors", "loss_curve.png",
                          "training_run.json"}
    for name in set(files) - {".gitattributes"}:
        assert hub.read(NEG, name, repo_type="model") == (trained.neg / name).read_bytes(), name
    assert len(hub.commits(NEG, repo_type="model")) == 2  # the repo's initial commit + one for the folder
    assert "not published: .r2r-dki/, checkpoints/ (2 checkpoint(s)" in out
    assert 'load_textual_inversion("synfashion-tester/dki-negative")' in out
    # what is published names no local path: paths relative to the run, or names (issue 20)
    layout = [str(trained.model), str(trained.source), str(trained.neg), str(trained.neg.parent)]
    for name in ("training_run.json", "README.md"):
        text = hub.read(NEG, name, repo_type="model").decode()
        assert not any(p in text for p in layout), (name, text)
    record = json.loads(hub.read(NEG, "training_run.json", repo_type="model"))
    assert record["config"]["out"] == "." and record["config"]["model"] == trained.model.name
    assert record["config"]["data"]["source"] == trained.source.name

    again, out = push(hub, trained.neg, NEG)
    assert not again.changed and "up to date" in out

    with_ckpt, _ = push(hub, trained.neg, NEG, include_checkpoints=True)
    added = set(with_ckpt.added)
    assert {"checkpoints/checkpoint-00000001/model.safetensors", "checkpoints/checkpoint-00000002/trainer_state.json",
            "checkpoints/checkpoint-00000002/optimizer.bin"} <= added
    assert not any(p.startswith(".r2r-dki") for p in hub.files(NEG, repo_type="model"))
    without, _ = push(hub, trained.neg, NEG)  # a later push without them removes them, in one commit
    assert set(without.deleted) == added and not without.added
    assert set(hub.files(NEG, repo_type="model")) == set(files)


def test_public_pushes_warn_by_the_card_license(hub, trained):
    with pytest.raises(LicenseGuardError, match="trained on SynFashion renders"):
        push(hub, trained.neg, NEG, private=False)
    assert hub.head(NEG, repo_type="model") is None  # nothing was created
    result, out = push(hub, trained.neg, NEG, private=False, allow_public=True)
    assert not hub.is_private(NEG, repo_type="model") and not result.private
    assert "PUBLIC" in out and "CC BY-NC-ND 4.0" in out and "cc-by-nc-nd-4.0" in out and "NoDerivatives" in out
    with pytest.raises(LicenseGuardError, match="already exists and is PUBLIC"):
        push(hub, trained.neg, NEG)  # a default (private) push into a public repo publishes: refused

    _, out = push(hub, trained.pos, POS, private=False, allow_public=True)  # trained on the user's own photos
    assert "trained on your own images" in out and "license is other" in out and "SynFashion" not in out


def test_a_repo_id_taken_by_a_dataset(hub, trained):
    hub.create_repo(NEG, repo_type="dataset")
    with pytest.raises(HubRepoTypeError, match="as a dataset repo, not a model"):
        push(hub, trained.neg, NEG)


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def _rerecord(folder: Path, name: str) -> None:
    """Make the run record vouch for `name` as it is now (as if the run had written it so)."""
    import hashlib

    path = folder / ".r2r-dki" / "run.json"
    record = json.loads(path.read_text())
    data = (folder / name).read_bytes()
    record["outputs"][name] = {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    path.write_text(json.dumps(record))


def test_folders_that_are_refused_before_anything_is_sent(trained, tmp_path):
    assert set(collect(trained.pos).files) == {"README.md", "pytorch_lora_weights.safetensors", "loss_curve.png",
                                               "training_run.json"}
    with pytest.raises(DKIError, match="no training run record"):
        collect(tmp_path)
    changed = _copy(trained.neg, tmp_path / "changed")
    (changed / "loss_curve.png").write_bytes(b"not the curve")
    with pytest.raises(DKIError, match=r"loss_curve.png changed since training"):
        collect(changed)
    unfinished = _copy(trained.neg, tmp_path / "unfinished")
    record = json.loads((unfinished / ".r2r-dki" / "run.json").read_text())
    record["outputs"]["learned_embeds.safetensors"] = {"pending": True}
    (unfinished / ".r2r-dki" / "run.json").write_text(json.dumps(record))
    with pytest.raises(DKIError, match="still writing learned_embeds.safetensors"):
        collect(unfinished)
    unlicensed = _copy(trained.neg, tmp_path / "unlicensed")
    card = (unlicensed / "README.md").read_text()
    (unlicensed / "README.md").write_text(card.replace("license: cc-by-nc-nd-4.0\n", ""))
    _rerecord(unlicensed, "README.md")
    with pytest.raises(DKIError, match="no `license:`"):
        collect(unlicensed)
    broken = _copy(trained.neg, tmp_path / "nan")
    emb = load_file(str(broken / "learned_embeds.safetensors"))
    emb = {k: v * float("nan") for k, v in emb.items()}
    save_file(emb, str(broken / "learned_embeds.safetensors"))
    _rerecord(broken, "learned_embeds.safetensors")
    with pytest.raises(DKIError, match="non-finite"):
        collect(broken)


ONLINE = r"""
import json, sys
import torch
from diffusers import StableDiffusionPipeline
from r2r.cli import main

model, neg, pos, images, source, work = sys.argv[1:7]
out = {}
pipe = StableDiffusionPipeline.from_pretrained(model, safety_checker=None, requires_safety_checker=False)
pipe.load_textual_inversion(neg)  # stock diffusers, by repo id: learned_embeds.safetensors
out["tokens"] = sorted(t for t in pipe.tokenizer.get_vocab() if t.startswith("<rendered>"))
x = torch.randn(1, 4, 6, 6, generator=torch.Generator().manual_seed(0))
states = torch.randn(1, 77, 32, generator=torch.Generator().manual_seed(1))
with torch.no_grad():
    before = pipe.unet(x, 500, states).sample
    pipe.load_lora_weights(pos)  # stock diffusers, by repo id: pytorch_lora_weights.safetensors
    after = pipe.unet(x, 500, states).sample
out["lora_changes_unet"] = float((after - before).abs().max())
fast = ["--steps", "4", "--strength", "0.3", "--no-progress"]  # one denoising step: the loading is tested
out["images_rc"] = main(["translate-images", "--model", model, "--input", images, "--output", work + "/images",
                         "--negative-embedding", neg, "--lora", pos, *fast])
out["dataset_rc"] = main(["translate-dataset", source, work + "/dataset", "--model", model, "--split", "train",
                          "--limit", "2", "--negative-embedding", neg, "--lora", pos, "--num-workers", "0", *fast])
out["missing_rc"] = main(["translate-images", "--model", model, "--input", images, "--output", work + "/missing",
                          "--lora", "synfashion-tester/no-such-lora", *fast])
print(json.dumps(out))
"""

@pytest.mark.slow
def test_cli_push_then_stock_diffusers_and_r2r_load_the_repo_ids(trained, client, tmp_path, monkeypatch):
    images = tmp_path / "rendered"
    images.mkdir()
    Image.fromarray(np.random.default_rng(5).integers(1, 255, (48, 48, 3), dtype=np.uint8)).save(images / "a.png")
    home = tmp_path / "hf_home"
    with running_hub() as hub:
        env = {**hub.client_env(token=DEFAULT_TOKEN, home=home), "OMP_NUM_THREADS": "1"}  # tiny tensors
        proc = subprocess.run([sys.executable, "-m", "r2r.cli", "push-model", str(trained.neg), NEG], cwd=ROOT,
                              env=env, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert DEFAULT_TOKEN not in proc.stdout + proc.stderr and "pushed" in proc.stderr
        push(hub, trained.pos, POS)
        neg_commit = hub.head(NEG, repo_type="model")
        pos_commit = hub.head(POS, repo_type="model")
        proc = subprocess.run([sys.executable, "-c", ONLINE, str(trained.model), NEG, POS, str(images),
                               str(trained.source), str(tmp_path)], cwd=ROOT, env=env, capture_output=True,
                              text=True, timeout=420)
        assert proc.returncode == 0, proc.stderr[-4000:]
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    assert got["tokens"] == ["<rendered>", "<rendered>_1"] and got["lora_changes_unet"] > 1e-5
    assert got["images_rc"] == 0 and got["dataset_rc"] == 0
    assert got["missing_rc"] == 2 and "no model repo synfashion-tester/no-such-lora" in proc.stderr

    record = json.loads((tmp_path / "images" / "r2r_run.json").read_text())["settings"]["model"]
    assert record["negative_embedding_hub"] == {"repo_id": NEG, "commit": neg_commit,
                                                "file": "learned_embeds.safetensors"}
    assert record["lora_hub"]["repo_id"] == POS and record["lora_hub"]["commit"] == pos_commit
    assert record["negative_embedding_sha256"] == hashlib.sha256(
        (trained.neg / "learned_embeds.safetensors").read_bytes()).hexdigest()
    manifest = json.loads((tmp_path / "dataset" / "manifest.json").read_text())
    model = manifest["provenance"]["model"]
    assert model["spec"]["negative_embedding"] == NEG and model["negative_embedding_hub"]["commit"] == neg_commit
    assert model["lora_hub"]["file"] == "pytorch_lora_weights.safetensors"

    # the server is gone: offline (as conftest runs this process), the same ids load from that cache
    from huggingface_hub import constants

    from r2r.models import resolve as model_files
    from r2r.models import ModelSpec, load_pipeline, model_identity

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(home / "hub"))
    monkeypatch.setattr(model_files, "_FETCHED", {})
    spec = ModelSpec(str(trained.model), negative_embedding=NEG, lora=POS)
    pipe = load_pipeline(spec)
    assert pipe.negative_token == "<rendered>"
    offline = model_identity(spec)
    assert offline["negative_embedding_hub"]["commit"] == neg_commit and offline["lora_hub"]["commit"] == pos_commit
    with pytest.raises(model_files.ModelFileError, match="not in the local Hugging Face cache while offline"):
        load_pipeline(ModelSpec(str(trained.model), lora=f"{DEFAULT_USER}/never-downloaded"))
