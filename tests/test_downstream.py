"""`r2r downstream` on CPU: a tiny ResNet trained on the generated sample, tested on an independently generated one.

The "real photos" are a second sample release (another seed: other geometry, fabrics and views) in the release's
own layout, a sub-folder per category, plus images whose category cannot be matched. 48x64 inputs, a ResNet of 80k
parameters, 5 epochs: seconds per variant.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import torch
from PIL import Image
from safetensors import safe_open

from r2r.cli import main
from r2r.downstream import DownstreamConfig, DownstreamError, TrainSource, run_downstream
from r2r.downstream import trainer as trainer_module
from r2r.downstream.data import open_real, transforms
from r2r.downstream.metrics import scores
from synfashion.taxonomy import CATEGORIES

ROOT = Path(__file__).resolve().parents[1]
CHANCE = 1 / len(CATEGORIES)
TINY = dict(arch="resnet-tiny", size=(48, 64), epochs=5, batch_size=32, lr=3e-3, num_workers=0, device="cpu",
            progress=False)

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def real_photos(tmp_path_factory) -> Path:
    """A second sample (seed 8, not the training build's 7) as an image folder, a sub-folder per category named as
    in the release ("Down jacket"), plus two images no category can be read from."""
    from synfashion.sample import SampleConfig, generate_sample

    root = tmp_path_factory.mktemp("real") / "photos"
    generate_sample(root, SampleConfig(width=96, height=128, seed=8), workers=1, progress=False)
    # the sample's metadata.jsonl stays: it has no category column, so the sub-folders give the categories
    some = next((root / "Hat").glob("*.jpg"))
    (root / "Scarves").mkdir()
    shutil.copy(some, root / "Scarves" / "scarf-01.jpg")
    shutil.copy(some, root / "loose.jpg")
    return root


def _config(out: Path, train: dict[str, Path], real: Path | None, **kw) -> DownstreamConfig:
    settings = {**TINY, **kw}
    return DownstreamConfig(train=tuple(TrainSource(n, str(p)) for n, p in train.items()), out=str(out),
                            test_real=str(real) if real else None, **settings)


@pytest.fixture(scope="module")
def two_variants(built_dataset, real_photos, tmp_path_factory):
    """Two variants trained from the same build: same data, same seed, so they must agree exactly."""
    out = tmp_path_factory.mktemp("ds") / "out"
    results = run_downstream(_config(out, {"a": built_dataset, "b": built_dataset}, real_photos))
    return out, results


def test_trained_on_renders_it_scores_well_above_chance_on_the_other_sample(two_variants):
    _, results = two_variants
    real = results["variants"]["a"]["scores"]["real"]
    assert real["images"] == 320  # 20 categories x 2 projects x 2 textures x 4 views; the 2 unmatched not scored
    assert real["top1"] >= 3 * CHANCE, real["top1"]
    assert real["macro_f1"] >= 2 * CHANCE, real["macro_f1"]
    history = results["variants"]["a"]["history"]
    assert len(history) == 5 and history[-1]["loss"] < history[0]["loss"]
    assert history[-1]["train_accuracy"] > history[0]["train_accuracy"]


def test_same_seed_same_data_gives_the_same_result(two_variants):
    _, results = two_variants
    a, b = results["variants"]["a"], results["variants"]["b"]
    assert a["scores"]["real"] == b["scores"]["real"] and a["scores"]["a:test"] == b["scores"]["b:test"]
    assert [h["loss"] for h in a["history"]] == [h["loss"] for h in b["history"]]


def test_unmatched_images_are_named_not_dropped(two_variants):
    out, results = two_variants
    unmatched = {u["file"]: u["reason"] for u in results["test_sets"]["real"]["unmatched"]}
    assert set(unmatched) == {"Scarves/scarf-01.jpg", "loose.jpg"}
    assert "'Scarves' is not a SynFashion category" in unmatched["Scarves/scarf-01.jpg"]
    assert "not inside a category folder" in unmatched["loose.jpg"]
    assert "Scarves/scarf-01.jpg" in (out / "results.md").read_text()
    assert results["test_sets"]["real"]["per_category"]["down-jacket"] == 16  # "Down jacket" matched


def test_outputs_results_figures_and_loadable_safetensors_models(two_variants, built_dataset):
    from transformers import AutoModelForImageClassification

    out, results = two_variants
    assert json.loads((out / "results.json").read_text()) == json.loads(json.dumps(results))
    a = results["variants"]["a"]
    assert a["seed"] == 0 and a["epochs"] == 5 and a["train_images"] == 264 and a["steps"] == 5 * (264 // 32)
    assert sum(a["train_per_category"].values()) == 264
    assert set(a["scores"]) == {"real", "a:test", "b:test"}
    real = a["scores"]["real"]
    assert sum(map(sum, real["confusion"])) == 320 and len(real["per_category_accuracy"]) == 20
    assert results["settings"]["resize"] == "contain" and results["settings"]["size"] == [48, 64]
    for png in ("accuracy.png", "confusion/a.png", "confusion/b.png"):
        with Image.open(out / png) as img:
            assert img.format == "PNG" and img.width > 300
    md = (out / "results.md").read_text()
    assert "| a | 264 |" in md and f"{real['top1']:.3f} / {real['macro_f1']:.3f}" in md
    # the exported model loads as a transformers classifier with the SynFashion labels and predicts as scored
    model = AutoModelForImageClassification.from_pretrained(out / "models" / "a").eval()
    assert model.config.id2label[3] == CATEGORIES[3]
    with safe_open(str(out / "checkpoints" / "a" / "checkpoint.safetensors"), "pt") as f:
        assert any(k.startswith("optimizer.") for k in f.keys())
        state = json.loads(f.metadata()["r2r_downstream"])["state"]
    assert state["epoch"] == 5 and state["scores"]["real"] == real


def test_a_rerun_reuses_finished_variants_and_other_settings_are_refused(two_variants, built_dataset,
                                                                        real_photos, monkeypatch, capsys):
    out, results = two_variants
    before = (out / "checkpoints" / "a" / "checkpoint.safetensors").stat().st_mtime_ns

    def no_training(*args, **kwargs):
        raise AssertionError("a finished variant was trained again")

    monkeypatch.setattr(trainer_module.VariantTrainer, "fit", no_training)
    again = run_downstream(_config(out, {"a": built_dataset, "b": built_dataset}, real_photos))
    assert again["variants"]["a"]["scores"] == results["variants"]["a"]["scores"]
    assert (out / "checkpoints" / "a" / "checkpoint.safetensors").stat().st_mtime_ns == before
    with pytest.raises(DownstreamError, match=r"other settings \(as recorded -> now: epochs: 5 -> 6\).*--overwrite"):
        run_downstream(_config(out, {"a": built_dataset, "b": built_dataset}, real_photos, epochs=6))


def test_overwrite_removes_only_the_runs_files(two_variants, built_dataset, real_photos, tmp_path):
    out = tmp_path / "copy"
    shutil.copytree(two_variants[0], out)
    (out / "my-notes.txt").write_text("mine")
    (out / "models" / "mine.txt").write_text("mine too")
    with pytest.raises(ValueError, match="models/mine.txt"):  # a foreign file among the outputs: refused by name
        run_downstream(_config(out, {"a": built_dataset}, real_photos, epochs=1, overwrite=True))
    (out / "models" / "mine.txt").unlink()
    results = run_downstream(_config(out, {"a": built_dataset}, real_photos, epochs=1, overwrite=True))
    assert list(results["variants"]) == ["a"] and results["variants"]["a"]["epochs"] == 1
    assert (out / "my-notes.txt").read_text() == "mine"
    assert not (out / "models" / "b").exists() and not (out / "checkpoints" / "b").exists()
    assert not (out / "confusion" / "b.png").exists()


def test_an_interrupted_run_continues_to_the_same_result(two_variants, built_dataset, real_photos, tmp_path,
                                                        monkeypatch):
    out = tmp_path / "resumed"
    cfg = _config(out, {"a": built_dataset}, real_photos)
    saved = []
    original = trainer_module.VariantTrainer._save

    def save_then_die(self, state, model, optimizer):
        original(self, state, model, optimizer)
        saved.append(state.epoch)
        if state.epoch == 2:
            raise KeyboardInterrupt  # killed right after the second epoch's checkpoint

    monkeypatch.setattr(trainer_module.VariantTrainer, "_save", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        run_downstream(cfg)
    assert saved == [1, 2] and not (out / "results.json").exists()
    monkeypatch.setattr(trainer_module.VariantTrainer, "_save", original)
    results = run_downstream(cfg)
    reference = two_variants[1]["variants"]["a"]
    assert [h["loss"] for h in results["variants"]["a"]["history"]] == [h["loss"] for h in reference["history"]]
    assert results["variants"]["a"]["scores"]["real"] == reference["scores"]["real"]
    assert results["variants"]["a"]["scores"]["a:test"] == reference["scores"]["a:test"]


def test_a_trained_model_folder_is_a_pretrained_starting_point(two_variants, built_dataset, tmp_path):
    """--model with a local transformers folder (here the exported classifier): loaded, not built from a config."""
    folder = two_variants[0] / "models" / "a"
    results = run_downstream(_config(tmp_path / "o", {"a": built_dataset}, None, arch=None, model=str(folder),
                                     epochs=1, lr=None))
    settings = results["settings"]
    assert settings["model_description"] == f"{folder} (pretrained)" and settings["lr"] == 1e-4
    assert settings["parameters"] == two_variants[1]["settings"]["parameters"]
    first_epoch = results["variants"]["a"]["history"][0]["train_accuracy"]
    assert first_epoch > two_variants[1]["variants"]["a"]["history"][0]["train_accuracy"]  # it starts trained


def test_a_model_folder_with_only_pickled_weights_is_refused(tmp_path, built_dataset, capsys):
    folder = tmp_path / "pickled"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    torch.save({"w": torch.zeros(1)}, folder / "pytorch_model.bin")
    rc = main(["downstream", "--train", f"a={built_dataset}", "--out", str(tmp_path / "o"), "--model", str(folder),
               "--device", "cpu", "--no-progress", "--test-split", "test"])
    err = capsys.readouterr().err
    assert rc == 2 and "only pickled weights" in err and err.count("\n") == 1
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("arch", ["resnet-tiny", "resnet18", "convnext-tiny", "vit-tiny"])
def test_architectures_build_and_classify_a_portrait_batch(arch):
    from r2r.downstream.models import build_model

    cfg = _config(Path("."), {"a": Path(".")}, None, arch=arch)
    built = build_model(cfg)
    built.model.eval()
    pixels = built.normalization.apply(torch.full((2, 3, 64, 48), 255, dtype=torch.uint8))
    with torch.no_grad():
        assert built.logits(built.model, pixels).shape == (2, 20)
    assert built.model.config.id2label[19] == "trench-coat"
    again = build_model(cfg).model.state_dict()
    assert all(torch.equal(v, again[k]) for k, v in built.model.state_dict().items())  # the seed fixes the init


# -------------------------------------------------------------------------------------------- real photo folders
def test_metadata_categories_and_unmatched_rows(tmp_path):
    root = tmp_path / "meta"
    root.mkdir()
    for name in ("x1.jpg", "x2.jpg", "x3.jpg", "x4.jpg", "extra.jpg"):
        Image.new("RGB", (30, 40), "gray").save(root / name)
    rows = [{"file_name": "x1.jpg", "category": "Down Jacket"}, {"file_name": "x2.jpg", "category": 9},
            {"file_name": "x3.jpg", "category": "scarf"}, {"file_name": "x4.jpg", "category": None},
            {"file_name": "gone.jpg", "category": "hat"}]
    (root / "metadata.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    data = open_real(root, transforms(_config(tmp_path / "o", {"a": tmp_path}, None))[1], 0)
    assert [CATEGORIES[y] for y in data.labels] == ["down-jacket", "hat"]
    reasons = {u.file: u.reason for u in data.unmatched}
    assert set(reasons) == {"x3.jpg", "x4.jpg", "extra.jpg", "gone.jpg"}
    assert "'scarf'" in reasons["x3.jpg"] and "no category" in reasons["x4.jpg"]
    assert "not listed" in reasons["extra.jpg"] and "no such image" in reasons["gone.jpg"]
    sample = data.dataset[(0, 0)]
    assert sample["label"] == CATEGORIES.index("down-jacket") and sample["image"].shape == (3, 64, 48)


def test_portrait_images_are_scaled_whole_and_others_padded_white(tmp_path):
    root = tmp_path / "p"
    (root / "Hat").mkdir(parents=True)
    Image.new("RGB", (96, 128), (200, 0, 0)).save(root / "Hat" / "portrait.png")
    Image.new("RGB", (128, 128), (200, 0, 0)).save(root / "Hat" / "square.png")
    data = open_real(root, transforms(_config(tmp_path / "o", {"a": tmp_path}, None))[1], 0)
    portrait, square = (data.dataset[(i, 0)]["image"] for i in range(2))
    assert (portrait[0] == 200).all()  # 3:4 into 48x64: the whole image, nothing padded, nothing cut
    assert (square[:, :8] == 255).all() and (square[:, -8:] == 255).all() and (square[0, 32] == 200).all()


# -------------------------------------------------------------------------------------------- pieces
def test_scores_match_the_definitions():
    y = [0, 0, 1, 1, 2, 2]
    p = [0, 1, 1, 1, 3, 2]
    s = scores(y, p)
    assert s.top1 == pytest.approx(4 / 6)
    # F1 per label present in truth or predictions (sklearn's macro): 0: 2/3, 1: 4/5, 2: 2/3, 3: 0
    assert s.macro_f1 == pytest.approx((2 / 3 + 4 / 5 + 2 / 3 + 0) / 4)
    assert s.per_category_accuracy[CATEGORIES[0]] == 0.5 and s.per_category_accuracy[CATEGORIES[5]] is None
    assert s.confusion[2][3] == 1


def test_learning_rate_schedule_warms_up_then_decays_to_zero():
    lrs = [trainer_module.lr_at(s, 100, 1.0) for s in range(100)]
    assert lrs[0] == pytest.approx(0.2) and lrs[4] == pytest.approx(1.0) and max(lrs) == pytest.approx(1.0)
    assert all(b <= a for a, b in zip(lrs[4:], lrs[5:])) and lrs[-1] < 0.01


def test_ranks_split_training_and_scoring_without_overlap(built_dataset, real_photos, tmp_path):
    """Two processes' loaders: the same number of training steps each, disjoint images; every test image once."""
    from r2r.downstream.data import open_train

    cfg = _config(tmp_path / "o", {"a": built_dataset}, real_photos, batch_size=16)
    train_tf, eval_tf = transforms(cfg)
    train = open_train(cfg.train[0], train_tf, 0)
    real = open_real(real_photos, eval_tf, 0)

    class Slot:
        def __init__(self, rank):
            self.process_index, self.num_processes = rank, 2

    def keys(loader):
        return [k for batch in loader for k in batch["key"]]

    train_keys = [keys(trainer_module.loader_for(train, cfg, Slot(r), train=True)) for r in (0, 1)]
    assert len(train_keys[0]) == len(train_keys[1]) == (264 // 2 // 16) * 16
    assert not set(train_keys[0]) & set(train_keys[1])
    test_keys = [keys(trainer_module.loader_for(real, cfg, Slot(r), train=False)) for r in (0, 1)]
    assert sorted(test_keys[0] + test_keys[1]) == sorted(keys(trainer_module.loader_for(
        real, cfg, type("One", (), {"process_index": 0, "num_processes": 1})(), train=False)))
    assert len(set(test_keys[0] + test_keys[1])) == 320


# -------------------------------------------------------------------------------------------- the command
def test_cli_errors_are_one_line(tmp_path, capsys, real_photos):
    cases = [
        (["--train", "no-equals-sign"], "expected NAME=SOURCE"),
        (["--train", "bad name=./x"], "the name must be letters"),
        (["--train", f"a={tmp_path / 'nowhere'}"], "no such folder"),
        (["--train", f"a={real_photos}", "--train", f"a={real_photos}"], "a is given twice"),
        (["--train", f"a={real_photos}", "--size", "48by64"], "expected WIDTHxHEIGHT"),
        (["--train", f"a={real_photos}", "--arch", "resnet18", "--epochs", "0"], "--epochs must be >= 1"),
    ]
    for extra, expected in cases:
        rc = main(["downstream", "--out", str(tmp_path / "o"), "--device", "cpu", *extra])
        err = capsys.readouterr().err
        assert rc == 2 and expected in err and err.count("\n") == 1, (extra, err)
    assert not (tmp_path / "o").exists()


def test_an_image_folder_is_not_a_training_dataset(tmp_path, capsys, real_photos):
    rc = main(["downstream", "--train", f"a={real_photos}", "--out", str(tmp_path / "o"), "--arch", "resnet-tiny",
               "--device", "cpu", "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 2 and "--train a:" in err and "synfashion build" in err
    assert not (tmp_path / "o").exists()


def test_arch_names_of_the_cli_are_the_models():
    from r2r.downstream.config import ARCH_NAMES
    from r2r.downstream.models import ARCHS

    assert tuple(ARCHS) == ARCH_NAMES


@pytest.mark.slow
def test_two_processes_through_torchrun(built_dataset, real_photos, tmp_path, warm):
    """DDP on two CPU processes (gloo): every test image is scored exactly once, rank 0 alone writes the results.
    torchrun and its ranks are processes of the suite's warm interpreter (tests/conftest.py `warm`)."""
    out = tmp_path / "ddp"
    cmd = [warm.python, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "r2r.cli",
           "downstream", "--train", f"a={built_dataset}", "--test-real", str(real_photos), "--out", str(out),
           "--arch", "resnet-tiny", "--size", "48x64", "--epochs", "1", "--batch-size", "16", "--num-workers", "0",
           "--device", "cpu", "--no-progress"]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads((out / "results.json").read_text())
    assert results["settings"]["processes"] == 2 and results["settings"]["global_batch_size"] == 32
    a = results["variants"]["a"]
    assert a["history"][0]["samples"] == 2 * (264 // 2 // 16) * 16  # both ranks' samples, counted once each
    assert a["scores"]["real"]["images"] == 320 and a["scores"]["a:test"]["images"] == 48
    assert done.stdout.count("trained on") == 1  # the table, printed by rank 0 only
