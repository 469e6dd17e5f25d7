"""`r2r downstream` takes what `r2r translate-dataset` writes as a training variant, beside the rendered build.

A tiny random-weight SD model translates a few 48x64 renders (the real code path, not a useful translation); the
point is the data path: the translated split is read by category like the rendered one, each translated row keeps
its source row's label, and both variants are scored on the same test sets, the translated one's own included.
"""

from __future__ import annotations

import json

import pytest

from r2r.cli import main
from r2r.downstream.config import DownstreamConfig, TrainSource
from r2r.downstream.data import open_split, transforms
from synfashion.build import BuildConfig, build_dataset
from synfashion.manifest import Manifest
from tests.conftest import small_release

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def rendered_and_translated(tmp_path_factory, tiny_model):
    root = tmp_path_factory.mktemp("dst")
    release = small_release(root / "release", categories=("Hoodie", "Dress", "Hat"), projects=3, textures=1)
    rendered = root / "synfashion-hf"
    build_dataset(release, rendered, BuildConfig(shard_size=40_000), progress=False)
    translated = root / "synfashion-r2r"
    assert main(["translate-dataset", str(rendered), str(translated), "--model", str(tiny_model), "--split", "train",
                 "--split", "test", "--limit", "6", "--batch-size", "3", "--steps", "4", "--strength", "0.5",
                 "--no-progress", "--num-workers", "0"]) == 0
    return rendered, translated


def test_translated_rows_keep_their_source_rows_labels(rendered_and_translated):
    rendered, translated = rendered_and_translated
    assert Manifest.read(translated).kind == "translated"
    source = {s["key"]: s["category"] for s in Manifest.read(rendered).samples}
    cfg = DownstreamConfig(train=(TrainSource("x", "."),), out=".", arch="resnet-tiny", size=(48, 64))
    data = open_split(TrainSource("translated", str(translated)), "train", transforms(cfg)[0], 0)
    assert len(data) == 6
    for i in range(len(data)):
        sample = data.dataset[(i, 0)]
        assert sample["category"] == source[sample["source_key"]] and sample["label"] == data.labels[i]
        assert sample["image"].shape == (3, 64, 48)


def test_rendered_and_translated_variants_are_scored_on_the_same_sets(rendered_and_translated, tmp_path, capsys):
    rendered, translated = rendered_and_translated
    out = tmp_path / "out"
    assert main(["downstream", "--train", f"rendered={rendered}", "--train", f"translated={translated}",
                 "--out", str(out), "--arch", "resnet-tiny", "--size", "48x64", "--epochs", "1", "--batch-size", "8",
                 "--num-workers", "0", "--device", "cpu", "--no-progress"]) == 0
    results = json.loads((out / "results.json").read_text())
    assert set(results["test_sets"]) == {"rendered:test", "translated:test"}
    assert results["test_sets"]["translated:test"]["images"] <= 6
    for name in ("rendered", "translated"):
        assert set(results["variants"][name]["scores"]) == {"rendered:test", "translated:test"}
    assert results["variants"]["translated"]["train_images"] == 6
    assert results["variants"]["rendered"]["train_images"] > 6
    assert "translated" in capsys.readouterr().out  # the table
