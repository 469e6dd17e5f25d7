"""`r2r translate-dataset`: a built split in, a built translated dataset out, by synfashion's own build core.

Tiny random-weight SD-1.5-architecture model, 48x64 images, a few steps: the real code path, offline on CPU.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import datasets
import pyarrow.parquet as pq
import pytest

from r2r.cli import main
from synfashion.build import BuildConfig, build_dataset
from synfashion.manifest import Manifest
from synfashion.verify import verify_dataset
from tests.conftest import image_bytes, small_release
from tests.translate_world import _args, _tree

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def model(tiny_model):
    return tiny_model  # conftest.py: `r2r tiny-model`'s output, made once per test process


@pytest.fixture(scope="module")
def source(translate_source):
    return translate_source  # conftest.py: a small built SynFashion folder with a sidecar column


@pytest.fixture(scope="module")
def translated(translated_dataset):
    return translated_dataset  # conftest.py: translate_world.args(model, source, OUT) run once per test process


def test_writes_a_built_dataset_that_verifies(translated):
    report = verify_dataset(translated)
    assert report.ok, report.problems
    assert report.checked["parquet rows"] == report.checked["pairs rows"] == report.checked["webdataset samples"] == 4
    assert not (translated / ".synfashion-build").exists()
    manifest = Manifest.read(translated)
    assert manifest.kind == "translated" and manifest.counts["total"] == 4
    assert manifest.source["kind"] == "folder" and manifest.source["fingerprint"]
    assert manifest.source["path"] == os.path.relpath(translated.parent.parent / "src" / "synfashion-hf", translated) \
        or manifest.source["path"].endswith("synfashion-hf")
    prov = manifest.provenance
    assert prov["params"]["strength"] == 0.3 and prov["dtype"] == "float32" and "torch" in prov["versions"]
    assert "/" not in prov["model"]["spec"]["model"]  # a folder's name, never an absolute path


def test_rows_keep_the_source_row_and_join_back_byte_exactly(translated, source):
    src = {s["key"]: s for s in Manifest.read(source).samples}
    src_bytes = {}
    for p in (source / "data" / "renders").glob("test-*.parquet"):
        for row in pq.read_table(p, columns=["key", "image"]).to_pylist():
            src_bytes[row["key"]] = row["image"]["bytes"]
    ds = datasets.load_dataset(str(translated), split="test").cast_column("image", datasets.Image(decode=False))
    assert len(ds) == 4
    for row in ds:
        origin = src[row["source_key"]]
        assert row["key"] == row["source_key"] and row["source_sha256"] == origin["sha256"]
        assert hashlib.sha256(src_bytes[row["source_key"]]).hexdigest() == row["source_sha256"]
        for col in ("project", "texture", "source_path", "shade"):
            assert row[col] == origin.get(col), col
        assert ds.features["view"].int2str(row["view"]) == origin["view"]  # a ClassLabel, as category
        assert row["image"]["bytes"].startswith(b"\x89PNG") and row["format"] == "PNG"
        assert (row["width"], row["height"]) == (origin["width"], origin["height"])
    pairs = datasets.load_dataset(str(translated), "pairs", split="test")
    pairs = pairs.cast_column("rendered_image", datasets.Image(decode=False)).cast_column(
        "translated_image", datasets.Image(decode=False))
    for row in pairs:
        assert row["rendered_image"]["bytes"] == src_bytes[row["source_key"]]
        assert hashlib.sha256(row["translated_image"]["bytes"]).hexdigest() == row["translated_sha256"]
    streamed = list(datasets.load_dataset(str(translated), "pairs", split="test", streaming=True))
    assert sorted(r["key"] for r in streamed) == sorted(pairs["key"])


def test_webdataset_library_reads_the_tars(translated):
    import webdataset as wds

    urls = sorted(str(p) for p in (translated / "webdataset" / "test").glob("*.tar"))
    samples = list(wds.WebDataset(urls, shardshuffle=False))
    assert len(samples) == 4 and all("png" in s and "json" in s for s in samples)
    meta = json.loads(samples[0]["json"])
    assert meta["source_key"] == samples[0]["__key__"] and meta["format"] == "PNG"


def test_card_says_derivative_and_licence(translated):
    from cards.common import validate_dataset_card

    text = (translated / "README.md").read_text()
    card = validate_dataset_card(text).data.to_dict()
    assert card["license"] == "cc-by-nc-nd-4.0" and card["source_datasets"] == ["SynFashion"]
    assert "derivative of SynFashion" in text and "NoDerivatives" in text and "not share it publicly" in text
    assert "strength" in text and "rendered_image" in text


def test_verify_catches_a_flipped_byte(translated, tmp_path):
    out = tmp_path / "copy"
    shutil.copytree(translated, out)
    shard = next((out / "data" / "pairs").glob("*.parquet"))
    data = bytearray(shard.read_bytes())
    data[len(data) // 2] ^= 0xFF
    shard.write_bytes(bytes(data))
    assert any(shard.name in p for p in verify_dataset(out).problems)


def test_rerun_reuses_and_other_settings_are_refused_with_the_differences(model, source, translated, tmp_path,
                                                                          capsys):
    out = tmp_path / "again"
    shutil.copytree(translated, out)
    before = _tree(out)
    assert main(_args(model, source, out)) == 0
    assert _tree(out) == before
    capsys.readouterr()
    assert main(_args(model, source, out, "--guidance", "3.0")) == 2
    err = capsys.readouterr().err
    assert "guidance_scale: 7.5 -> 3.0" in err and "--overwrite" in err
    assert _tree(out) == before


def test_non_finite_output_is_an_error_naming_the_image_and_nothing_is_written(model, source, tmp_path, capsys):
    from safetensors.torch import load_file, save_file

    broken = tmp_path / "nan-model"
    shutil.copytree(model, broken)
    weights = broken / "unet" / "diffusion_pytorch_model.safetensors"
    state = load_file(weights)
    name = next(k for k in state if k.endswith("conv_out.bias"))
    state[name][:] = float("nan")
    save_file(state, weights)
    out = tmp_path / "nan"
    assert main(_args(model, source, out, "--model", str(broken))) == 2
    err = capsys.readouterr().err
    assert "not finite" in err and "__" in err  # names the sample keys
    assert not (out / "manifest.json").exists() and not list(out.rglob("*.png")) and not list(out.rglob("*.tar"))
    units = out / ".synfashion-build" / "staged" / "units"
    assert not units.exists() or not list(units.glob("*.json"))


def _odd_source(tmp_path: Path) -> Path:
    """A one-garment test split whose front view is 44x64 (not divisible by 8)."""
    from synfashion.splits import SplitConfig

    release = small_release(tmp_path / "rel", categories=("Hat",), projects=1, textures=1)
    next((release / "Hat").glob("*_front.jpg")).write_bytes(image_bytes(size=(44, 64), seed=5))
    src = tmp_path / "src"
    only_test = SplitConfig(fractions={"train": 0.0, "validation": 0.0, "test": 1.0})
    build_dataset(release, src, BuildConfig(split=only_test), progress=False)
    return src


def test_sizes_not_divisible_by_8_are_rejected_by_name(tmp_path, capsys):
    src, out = _odd_source(tmp_path), tmp_path / "o"
    assert main(_args(tmp_path / "no-model-needed", src, out)) == 2  # refused before any model is loaded
    err = capsys.readouterr().err
    assert "not divisible by 8" in err and "_front" in err and "--pad" in err
    assert not out.exists()


def test_pad_keeps_the_source_size_and_resize_sets_one(model, tmp_path):
    src = _odd_source(tmp_path)
    out = tmp_path / "padded"
    assert main(_args(model, src, out, "--pad")) == 0
    sizes = {r["key"]: r["image"].size for r in datasets.load_dataset(str(out), split="test")}
    assert sizes[next(k for k in sizes if k.endswith("front"))] == (44, 64)
    assert verify_dataset(out).ok
    resized = tmp_path / "resized"
    assert main(_args(model, src, resized, "--resize", "32x48")) == 0
    assert {r["image"].size for r in datasets.load_dataset(str(resized), split="test")} == {(32, 48)}


def test_source_can_be_a_webdataset_folder(model, source, translated, tmp_path):
    tars = tmp_path / "tars"
    tars.mkdir()
    for p in (source / "webdataset" / "test").glob("*.tar"):
        shutil.copy(p, tars / p.name)
    out = tmp_path / "from-tars"
    assert main(_args(model, tars, out)) == 0
    a = datasets.load_dataset(str(out), split="test").cast_column("image", datasets.Image(decode=False))
    b = datasets.load_dataset(str(translated), split="test").cast_column("image", datasets.Image(decode=False))
    assert {r["key"]: r["image"]["bytes"] for r in a} == {r["key"]: r["image"]["bytes"] for r in b}
    assert Manifest.read(out).source["kind"] == "webdataset"


# Runs in a client process (HF_ENDPOINT is read at import): the pushed variant loaded by repo id, both configs.


def test_a_folder_of_other_files_is_refused(model, source, tmp_path, capsys):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    assert main(_args(model, source, out)) == 2
    assert "holds no r2r translate-dataset output" in " ".join(capsys.readouterr().err.split())
    assert os.listdir(out) == ["notes.txt"]


def test_evaluate_reads_the_translated_dataset_and_finds_its_source(model, translated, source, tmp_path):
    """translate-dataset -> r2r evaluate with no --source: the manifest's (relative) source path pairs each row with
    the render it was made from; the renders its --limit left out are counted as not selected, not as problems."""
    out = tmp_path / "eval.json"
    code = main(["evaluate", "--translated", str(translated), "--real", str(source), "--real-split", "train",
                 "--out", str(out), "--random-weights", "--kid-subsets", "3", "--batch-size", "2",
                 "--num-workers", "0", "--device", "cpu", "--no-progress"])
    result = json.loads(out.read_text())
    rows = datasets.load_dataset("parquet", data_files=str(translated / "data/renders/test-*.parquet"),
                                 split="train").select_columns(["key", "source_key"])
    n_test = sum(1 for s in json.loads((source / "manifest.json").read_text())["samples"] if s["split"] == "test")
    problems = result["problems"]
    assert result["n"] == 4 and not problems["unpaired"] and not problems["unreadable"]
    assert {im["name"]: im["source_key"] for im in result["images"]} == dict(zip(rows["key"], rows["source_key"]))
    assert problems["untranslated"] == [] and result["not_selected"] == n_test - 4 > 0
    assert code == 0
    assert all(0.0 <= im["lpips"] and -1.0 <= im["ssim"] <= 1.0 for im in result["images"])
    # its JSON goes into the card: the same command again with --eval-json rewrites only the card (and the manifest's
    # record of it); the shards stay byte for byte, and the folder still verifies
    copy = tmp_path / "synfashion-r2r"
    shutil.copytree(translated, copy)
    before = _tree(copy)
    assert main(_args(model, source, copy, "--eval-json", str(out))) == 0
    after = _tree(copy)
    assert {k for k in before if before[k] != after.get(k)} == {"README.md", "manifest.json"}
    card = (copy / "README.md").read_text()
    assert f"| KID x 1000 (to real, lower is better) | {result['kid_x1000']:.4f}" in card
    assert "Weights were random" in card and "4 images." in card
    assert verify_dataset(copy).ok


def test_an_eval_json_of_another_dataset_is_refused(model, source, translated, tmp_path, capsys):
    """--eval-json puts numbers in the card only when the evaluation scored this very dataset (its fingerprint):
    a card once showed another method's LPIPS 0.0000 / SSIM 1.0000."""
    other = {"format": "r2r-evaluate/1", "method": "identity", "n": 4, "lpips": 0.0, "ssim": 1.0,
             "inputs": {"translated": "elsewhere", "split": "test", "translated_fingerprint": "0" * 64},
             "protocol": {"kid": {}, "lpips": {}, "ssim": {}}, "images": []}
    path = tmp_path / "other.json"
    path.write_text(json.dumps(other))
    copy = tmp_path / "synfashion-r2r"
    shutil.copytree(translated, copy)
    before = _tree(copy)
    capsys.readouterr()
    assert main(_args(model, source, copy, "--eval-json", str(path))) == 2
    assert "scored another dataset" in capsys.readouterr().err
    assert _tree(copy) == before
