"""`r2r evaluate` and `r2r evaluate-table` end to end on tiny folders written with the project's own writers: both
kinds of translated input (a translated dataset whose manifest names its sources, a folder of another method's
outputs), pairing by name / CSV, unpaired and unreadable files named, identical images scoring LPIPS 0 and SSIM 1,
resized outputs, the JSON's protocol, and the table. CPU, random weights, a few small images."""

from __future__ import annotations

import hashlib
import io
import json
import shutil
from pathlib import Path

import datasets
import numpy as np
import pytest
from PIL import Image

from r2r.cli import main
from r2r.evaluation.inputs import plan_pairs
from r2r.evaluation.table import csv_text, load_results, markdown
from synfashion.schema import RenderRecord, make_key, renders_features, renders_row
from synfashion.testing.fixtures import write_renders_folder

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # see conftest.py

W, H = 40, 48
FAST = ["--random-weights", "--batch-size", "3", "--no-progress", "--kid-subsets", "5",
        "--device", "cpu"]


@pytest.fixture(autouse=True)
def _offline(monkeypatch, tmp_path_factory):
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path_factory.getbasetemp() / "hf-cache")


def _png(seed: int, size=(W, H), scale=1.0) -> bytes:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size[1], 0:size[0]]
    arr = np.stack([x * 5 + seed * 7, y * 4, (x * y) % 97 + rng.integers(0, 60, x.shape)], -1) % 256
    buf = io.BytesIO()
    Image.fromarray(np.clip(arr * scale, 0, 255).astype(np.uint8)).save(buf, "PNG")
    return buf.getvalue()


SOURCES = [  # (category, project, texture, view)
    ("hoodie", "hoodie-p01", "t1", "front"), ("hoodie", "hoodie-p01", "t1", "back"),
    ("coat", "coat-p02", "t5", "front"), ("coat", "coat-p03", "t6", "random1"),
]


def _records(split="test"):
    out = []
    for n, (cat, project, texture, view) in enumerate(SOURCES):
        data = _png(n)
        rec = RenderRecord(
            key=make_key(cat, project, texture, view), category=cat, project=project, texture=texture, view=view,
            source_path=f"{cat.title()}/{project}_{texture}_{view}.png", width=W, height=H, mode="RGB",
            format="PNG", orientation=1, sha256=hashlib.sha256(data).hexdigest(), num_bytes=len(data), split=split,
        )
        out.append((rec, data))
    return out


def write_source(out: Path) -> Path:
    """A built SynFashion folder (renders Parquet + manifest) holding SOURCES in the test split."""
    items = _records()
    return write_renders_folder(out, [renders_row(rec, data) for rec, data in items],
                                [rec.metadata() for rec, _ in items])


def write_translated_dataset(out: Path, source: Path, images: dict[str, bytes], sha_override: dict | None = None):
    """The translated-dataset contract: renders features + source_key/source_sha256 columns, a manifest whose
    samples carry both and whose `source` names the rendered folder."""
    features = renders_features()
    features["source_key"] = datasets.Value("string")
    features["source_sha256"] = datasets.Value("string")
    rows, samples = [], []
    for rec, src_data in _records():
        if rec.key not in images:
            continue
        data = images[rec.key]
        t = RenderRecord(**{**rec.metadata(), "sha256": hashlib.sha256(data).hexdigest(), "num_bytes": len(data),
                            "source_path": f"{rec.category}/{rec.key}.png"})
        src_sha = (sha_override or {}).get(rec.key, rec.sha256)
        rows.append({**renders_row(t, data), "source_key": rec.key, "source_sha256": src_sha})
        samples.append({**t.metadata(), "source_key": rec.key, "source_sha256": src_sha})
    return write_renders_folder(out, rows, samples, features=features, kind="translated",
                                source={"kind": "folder", "path": str(source)})


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("eval")
    source = write_source(root / "source")
    real = root / "real"
    real.mkdir()
    for i in range(3):
        (real / f"photo{i}.png").write_bytes(_png(100 + i, size=(36, 44)))
    (real / "broken.jpg").write_bytes(b"\xff\xd8\xff not a jpeg")
    return {"root": root, "source": source, "real": real, "records": _records()}


def _run(args: list[str], workers: int = 0) -> int:
    return main(["evaluate", *args, *FAST, "--num-workers", str(workers)])


# ------------------------------------------------------------------------------------------------ a folder of outputs
@pytest.fixture(scope="module")
def folder_run(world):
    """A method's outputs: identical copies of the sources named <category>/<key>.png, one named by the source's
    file stem, plus a stray file, an undecodable one and one source left untranslated."""
    out = world["root"] / "cut"
    recs = world["records"]
    (out / "hoodie").mkdir(parents=True)
    (out / "hoodie" / f"{recs[0][0].key}.png").write_bytes(recs[0][1])
    (out / f"{recs[1][0].key}.png").write_bytes(recs[1][1])
    (out / "Coat").mkdir()
    (out / "Coat" / "coat-p02_t5_front.png").write_bytes(recs[2][1])  # the source file's relative path
    (out / "stray.png").write_bytes(_png(50))
    (out / "hoodie" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    (out / "report.png").write_bytes(_png(51))  # `r2r report` output: ignored, listed
    csv_path = world["root"] / "pairs.csv"
    csv_path.write_text(f"translated,source_key\nhoodie/broken.png,{recs[3][0].key}\n")
    json_path = world["root"] / "eval" / "cut.json"
    return out, json_path, csv_path


def test_folder_of_outputs_end_to_end(world, folder_run, capsys):
    out, json_path, csv_path = folder_run
    code = _run(["--translated", str(out), "--source", str(world["source"]), "--real", str(world["real"]),
                 "--out", str(json_path), "--method", "CUT", "--pairs", str(csv_path),
                 "--features-out", str(json_path.with_suffix(".safetensors"))])
    err = " ".join(capsys.readouterr().err.split())  # rich wraps long lines
    assert code == 1  # problems were found (and named), the JSON is still written
    result = json.loads(json_path.read_text())
    # identical translated and source images: LPIPS 0 and SSIM 1
    assert result["n"] == 3 and result["lpips"] == 0.0 and result["ssim"] == pytest.approx(1.0, abs=1e-12)
    assert {im["name"] for im in result["images"]} == {
        f"hoodie/{world['records'][0][0].key}.png", f"{world['records'][1][0].key}.png", "Coat/coat-p02_t5_front.png"}
    assert result["method"] == "CUT" and result["kid"] is not None and result["kid_x1000"] == result["kid"] * 1000
    assert result["n_real"] == 3 and result["kid_subset_size"] == 3
    assert set(result["per_category"]) == {"hoodie", "coat"}
    assert result["per_category"]["hoodie"]["n"] == 2
    # nothing dropped silently: every problem is named in the JSON and on the console
    problems = result["problems"]
    assert [p["name"] for p in problems["unpaired"]] == ["stray.png"]
    assert [p["name"] for p in problems["unreadable"]] == ["hoodie/broken.png"]
    assert " at 0x" not in problems["unreadable"][0]["reason"]  # the same bad file gives the same JSON every run
    assert problems["untranslated"] == []  # broken.png was paired (by the CSV) with the fourth source
    assert [p["key"] for p in problems["real_unreadable"]] == ["broken"]
    assert problems["ignored"] == ["report.png"]
    for name in ("stray.png", "hoodie/broken.png", "broken.jpg"):
        assert name in err
    # the protocol says how, and loudly that the weights were random
    p = result["protocol"]
    assert p["random_weights"] is True and "RANDOM WEIGHTS" in p["warning"] and "RANDOM WEIGHTS" in err
    assert p["kid"]["weights"]["sha256"] == "random" and p["lpips"]["weights"]["heads"]["sha256"] == "random"
    assert p["kid"]["subsets"] == 5 and p["kid"]["seed"] == 2020 and p["ssim"]["sigma"] == 1.5
    assert p["translated_resize"]["count"] == 0
    # the features KID used, rows in the JSON's image order
    from safetensors import safe_open

    with safe_open(str(json_path.with_suffix(".safetensors")), "pt") as f:
        assert f.get_tensor("translated").shape == (3, 2048) and f.get_tensor("real").shape == (3, 2048)
        assert json.loads(f.metadata()["translated_names"]) == [im["name"] for im in result["images"]]


def test_out_is_not_overwritten_without_asking(world, folder_run, capsys):
    out, json_path, _ = folder_run
    if not json_path.exists():
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text("{}")
    before = json_path.read_bytes()
    code = _run(["--translated", str(out), "--source", str(world["source"]), "--real", str(world["real"]),
                 "--out", str(json_path)])
    assert code == 2 and "--overwrite" in " ".join(capsys.readouterr().err.split()) and json_path.read_bytes() == before


def test_pairing_by_name_and_its_failures(world, tmp_path):
    recs = world["records"]
    out = tmp_path / "outs"
    out.mkdir()
    (out / f"{recs[0][0].key}.jpg").write_bytes(b"x")
    (out / "dup").mkdir()
    (out / "dup" / f"{recs[0][0].key}.png").write_bytes(b"x")  # second file for the same source
    (out / "coat-p03_t6_random1.webp").write_bytes(b"x")  # the source file's stem
    plan = plan_pairs(out, str(world["source"]), "test")
    # files are taken in name order: the first file for a source is paired, a second one is named as unpaired
    assert [(p.name, p.source_key) for p in plan.pairs] == [
        ("coat-p03_t6_random1.webp", recs[3][0].key), (f"dup/{recs[0][0].key}.png", recs[0][0].key)]
    assert plan.unpaired == [{"name": f"{recs[0][0].key}.jpg",
                              "reason": f"source {recs[0][0].key!r} is already paired with 'dup/{recs[0][0].key}.png'"}]
    assert plan.untranslated == sorted([recs[1][0].key, recs[2][0].key])
    bad_csv = tmp_path / "bad.csv"
    bad_csv.write_text("translated,source_key\n../escape.png,x\n")
    with pytest.raises(ValueError, match=r"bad.csv:2: translated path '../escape.png'"):
        plan_pairs(out, str(world["source"]), "test", bad_csv)


def test_folder_without_source_or_pairs_is_one_clear_error(world, tmp_path, capsys):
    out = tmp_path / "outs"
    out.mkdir()
    (out / "unrelated.png").write_bytes(_png(9))
    assert _run(["--translated", str(out), "--real", str(world["real"]), "--out", str(tmp_path / "a.json")]) == 2
    assert "pass --source" in " ".join(capsys.readouterr().err.split())
    assert _run(["--translated", str(out), "--source", str(world["source"]), "--real", str(world["real"]),
                 "--out", str(tmp_path / "a.json")]) == 2
    err = " ".join(capsys.readouterr().err.split())  # rich wraps long lines
    assert "could be paired" in err and "unrelated.png" in err and not (tmp_path / "a.json").exists()


# ------------------------------------------------------------------------------------------------ a translated dataset
def test_translated_dataset_end_to_end_with_resize_and_sha_check(world, tmp_path, capsys):
    recs = world["records"]
    images = {rec.key: _png(i, size=(2 * W, 2 * H), scale=0.9) for i, (rec, _) in enumerate(recs[:3])}
    moved = tmp_path / "moved-source"
    shutil.copytree(world["source"], moved)
    ds = write_translated_dataset(tmp_path / "ours", tmp_path / "gone", images,
                                  sha_override={recs[2][0].key: "0" * 64})
    json_path = tmp_path / "ours.json"
    # the manifest's source folder does not exist: a clear error, and --source overrides it
    assert _run(["--translated", str(ds), "--real", str(world["real"]), "--out", str(json_path)]) == 2
    assert "pass --source" in " ".join(capsys.readouterr().err.split())
    code = _run(["--translated", str(ds), "--source", str(moved), "--real", str(world["real"]), "--out",
                 str(json_path)], workers=1)  # decoding in a worker process: the pair and real datasets pickle
    assert code == 1
    result = json.loads(json_path.read_text())
    assert result["inputs"]["translated_kind"] == "translated-dataset" and result["n"] == 2
    assert [p["name"] for p in result["problems"]["unpaired"]] == [recs[2][0].key]
    assert "changed since translation" in result["problems"]["unpaired"][0]["reason"]
    assert result["problems"]["untranslated"] == sorted([recs[2][0].key, recs[3][0].key])
    # 80x96 outputs of 40x48 sources: resized to the source's size for LPIPS/SSIM, and recorded
    assert result["protocol"]["translated_resize"]["count"] == 2
    assert 0 < result["lpips"] and 0 < result["ssim"] < 1


def test_a_source_subset_and_real_features_computed_once(world, tmp_path):
    """What `r2r ablate` relies on: `source_keys` scores a subset of the split without calling the rest
    untranslated, and real features computed once give the numbers evaluate computes itself."""
    from dataclasses import replace

    from r2r.evaluation.run import EvalJob, evaluate, networks_for, real_features

    recs = world["records"]
    images = {rec.key: _png(i, scale=0.8) for i, (rec, _) in enumerate(recs[:2])}
    ds = write_translated_dataset(tmp_path / "two", world["source"], images)
    job = EvalJob(translated=ds, real=str(world["real"]), out=tmp_path / "alone.json", random_weights=True,
                  kid_subsets=5, device="cpu", batch_size=3, num_workers=0)
    alone = evaluate(job, progress=False)
    assert alone["problems"]["untranslated"] == sorted([recs[2][0].key, recs[3][0].key])  # the whole split counts
    subset_job = replace(job, out=tmp_path / "subset.json", source_keys=tuple(images))
    nets = networks_for(subset_job)
    real = real_features(subset_job, nets, progress=False)
    subset = evaluate(subset_job, progress=False, networks=nets, real=real)
    assert subset["problems"]["untranslated"] == [] and subset["inputs"]["source_subset"]["n"] == 2
    assert alone["inputs"]["source_subset"] is None
    for key in ("n", "n_real", "kid", "kid_std", "lpips", "ssim"):
        assert subset[key] == alone[key], key
    assert [u["name"] for u in subset["problems"]["real_unreadable"]] == \
        [u["name"] for u in alone["problems"]["real_unreadable"]]
    other_real = tmp_path / "other-real"
    shutil.copytree(world["real"], other_real)
    with pytest.raises(ValueError, match="precomputed real features were made from"):
        evaluate(replace(subset_job, out=tmp_path / "o.json", real=str(other_real)), progress=False, networks=nets,
                 real=real)
    with pytest.raises(ValueError, match="not in split 'test'"):
        evaluate(replace(job, out=tmp_path / "x.json", source_keys=("nope",)), progress=False, networks=nets)


# ------------------------------------------------------------------------------------------------ the table
def test_evaluate_table_marks_different_protocols(world, folder_run, tmp_path, capsys):
    _, json_path, _ = folder_run
    if not json_path.exists():
        pytest.skip("needs test_folder_of_outputs_end_to_end's result")
    base = json.loads(json_path.read_text())
    other = json.loads(json.dumps(base))
    other["method"], other["kid_x1000"], other["kid_std_x1000"] = "UNSB", 54.72, 1.362
    other["protocol"]["kid"]["subsets"] = 7
    (tmp_path / "unsb.json").write_text(json.dumps(other))
    results = load_results([json_path, tmp_path / "unsb.json"])
    md = markdown(results)
    assert "| Method | KID×1000 (std) ↓ | LPIPS (std) ↓ | SSIM (std) ↑ | n |" in md
    assert "| UNSB [random weights] * | 54.720 (1.362) |" in md
    assert "protocol differs from CUT in: KID settings" in md
    rows = csv_text(results, per_category=True).splitlines()
    assert rows[0].startswith("method,category,n,kid_x1000") and len(rows) == 1 + 2 * 3
    assert main(["evaluate-table", str(json_path), str(tmp_path / "unsb.json"), "--csv", str(tmp_path / "t.csv"),
                 "--markdown", str(tmp_path / "t.md")]) == 0
    shown = capsys.readouterr().out
    assert "UNSB" in shown and "[random weights]" in shown
    assert (tmp_path / "t.md").read_text() == md
    (tmp_path / "junk.json").write_text("{}")
    assert main(["evaluate-table", str(tmp_path / "junk.json")]) == 2
    # a user's method name is one literal cell: a pipe does not split the row, markup is not markup
    other["method"] = "a|b <img src=x>"
    (tmp_path / "odd.json").write_text(json.dumps(other))
    row = next(line for line in markdown(load_results([tmp_path / "odd.json"])).splitlines() if "a\\|b" in line)
    assert row.startswith("| a\\|b &lt;img src=x&gt;") and row.replace("\\|", "").count("|") == 6


def test_unreachable_real_or_source_is_one_clear_error(world, folder_run, tmp_path, capsys):
    out, _, csv_path = folder_run
    assert _run(["--translated", str(out), "--source", str(world["source"]), "--real", "nobody/no-photos",
                 "--out", str(tmp_path / "a.json"), "--pairs", str(csv_path)]) == 2
    assert "--real nobody/no-photos: cannot load it as a Hub dataset" in " ".join(capsys.readouterr().err.split())
    assert _run(["--translated", str(out), "--source", "nobody/no-renders", "--real", str(world["real"]),
                 "--out", str(tmp_path / "a.json")]) == 2
    assert "source nobody/no-renders" in capsys.readouterr().err and not (tmp_path / "a.json").exists()
