"""`r2r ablate`: every variant a verified translated dataset of the same source rows, scored on the same real
photos, one table; artifacts not given leave their variant out by name; a rerun reuses everything; other settings
are refused. Tiny random-weight model, a random negative embedding and LoRA in the real layouts, 48x64 images,
3 denoising steps, random metric weights: the real code paths, offline on CPU."""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
from pathlib import Path

import datasets
import pyarrow.parquet as pq
import pytest
import torch

from r2r.evaluation.ablate import AblateConfig, Sweep, plan_variants
from r2r.evaluation.run import MetricSettings as EvalSettings
from r2r.cli import main
from r2r.config import ModelSpec, RIGParams
from r2r.tiny import save_random_lora
from synfashion.build import BuildConfig, build_dataset
from synfashion.manifest import Manifest
from synfashion.verify import verify_dataset
from tests.conftest import image_bytes, small_release

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # see conftest.py

FAST = ["--steps", "10", "--strength", "0.3", "--no-progress", "--num-workers", "0", "--random-weights",
        "--kid-subsets", "5", "--eval-device", "cpu", "--eval-batch-size", "4"]
VARIANTS = ["full", "no-negative", "no-positive", "no-tac", "standard-inversion", "gamma=0.5"]


@pytest.fixture(scope="module", autouse=True)
def _offline(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HF_DATASETS_OFFLINE", "1")
        mp.setenv("HF_HUB_OFFLINE", "1")
        mp.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path_factory.getbasetemp() / "hf-cache")
        yield




@pytest.fixture(scope="module")
def world(tmp_path_factory, tiny_dki_model):
    """Tiny model, negative embedding (textual-inversion layout {token: [1, 32]}), LoRA folder, a built source
    (2 categories, 48x64 JPEGs) and a folder of real photos."""
    from safetensors.torch import save_file

    root = tmp_path_factory.mktemp("ablate")
    model = tiny_dki_model  # the smaller tiny model: every variant loads it and fuses the LoRA again
    neg = root / "neg.safetensors"
    save_file({"<rendered>": torch.randn(1, 32, generator=torch.Generator().manual_seed(1)) * 4}, str(neg))
    lora = save_random_lora(model, root / "pos")
    release = small_release(root / "release", categories=("Hoodie", "Dress"))
    source = root / "synfashion-hf"
    build_dataset(release, source, BuildConfig(shard_size=40_000), progress=False)
    real = root / "real-photos"
    real.mkdir()
    for i in range(3):
        (real / f"photo{i}.jpg").write_bytes(image_bytes(size=(40, 56), seed=100 + i))
    return {"root": root, "model": model, "neg": neg, "lora": lora, "source": source, "real": real}


def _args(world, out, *extra, neg=True, lora=True, limit="3"):
    return ["ablate", str(world["source"]), str(out), "--model", str(world["model"]), "--real", str(world["real"]),
            "--split", "test", "--limit", limit, "--batch-size", "3", *FAST,
            *(["--negative-embedding", str(world["neg"])] if neg else []),
            *(["--lora", str(world["lora"])] if lora else []), *extra]


def _files(root: Path) -> dict[str, tuple[int, str]]:
    return {p.relative_to(root).as_posix(): (p.stat().st_mtime_ns, hashlib.sha256(p.read_bytes()).hexdigest())
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def ablation(world):
    out = world["root"] / "ablation"
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr), \
            _counting_real_features() as real_calls:  # rich prints to sys.stdout/err
        code = main(_args(world, out, "--sweep", "gamma=0.5,0.9"))
    assert code == 0, stderr.getvalue()[-3000:]
    return {"out": out, "stdout": stdout.getvalue(), "stderr": " ".join(stderr.getvalue().split()),
            "real_calls": real_calls}


@contextlib.contextmanager
def _counting_real_features():
    """Counts how often the real photos' Inception features are computed (r2r.evaluation.run.real_features)."""
    import r2r.evaluation.run

    calls: list[str] = []
    original = r2r.evaluation.run.real_features

    def counted(job, *args, **kwargs):
        calls.append(str(job.out))
        return original(job, *args, **kwargs)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(r2r.evaluation.run, "real_features", counted)
        yield calls


def _images(folder: Path) -> dict[str, bytes]:
    out = {}
    for p in sorted((folder / "data" / "renders").glob("*.parquet")):
        for row in pq.read_table(p, columns=["source_key", "image"]).to_pylist():
            out[row["source_key"]] = row["image"]["bytes"]
    return out


def test_every_variant_is_a_verified_dataset_of_the_same_source_rows(ablation):
    out = ablation["out"]
    record = json.loads((out / "ablation.json").read_text())
    assert record["status"] == "complete"
    assert [v["name"] for v in record["variants"]] == VARIANTS
    selection = record["selection"]
    assert selection["n"] == 3 and selection["split"] == "test" and selection["limit"] == 3
    keys = set(selection["keys"])
    for v in record["variants"]:
        folder = out / v["dataset"]
        report = verify_dataset(folder)
        assert report.ok, (v["name"], report.problems)
        manifest = Manifest.read(folder)
        assert {s["source_key"] for s in manifest.samples} == keys, v["name"]
        assert manifest.fingerprint == v["fingerprint"]
        result = json.loads((out / v["eval"]).read_text())
        assert result["method"] == v["name"] and result["n"] == 3
        assert {im["source_key"] for im in result["images"]} == keys
        assert result["inputs"]["translated_fingerprint"] == manifest.fingerprint
        assert result["inputs"]["source_subset"]["sha256"] == selection["keys_sha256"]
        # the subset is what was asked for: the rest of the split is not "untranslated"
        assert result["problems"]["untranslated"] == [] and result["problems"]["unpaired"] == []
    diffs = {v["name"]: v["settings_diff"] for v in record["variants"]}
    assert diffs["full"] == []
    assert diffs["no-tac"] == ["params.use_tac: True -> False"]
    assert diffs["standard-inversion"] == ["params.inversion_order: 'reference' -> 'standard'"]
    assert diffs["gamma=0.5"] == ["params.tac_ratio: 0.9 -> 0.5"]
    assert diffs["no-negative"] == ["model.negative_embedding: 'neg.safetensors' -> None"]
    assert diffs["no-positive"] == ["model.lora: 'pos' -> None"]
    # a sweep value equal to the full method's is left out, by name and reason
    assert record["left_out"] == [{"name": "gamma=0.9", "reason": "gamma 0.9 is the full method's own setting "
                                                                   "(the 'full' row)"}]
    assert "left out gamma=0.9" in ablation["stderr"]
    assert len(ablation["real_calls"]) == 1  # the real photos' features: once for all six variants


def test_variants_really_differ_where_they_must(ablation):
    out = ablation["out"]
    images = {name: _images(out / name.replace("=", "-")) for name in VARIANTS}
    for name in VARIANTS[1:]:
        assert images[name] != images["full"], f"{name} made the same images as full"
    prov = {name: Manifest.read(out / name.replace("=", "-")).provenance for name in VARIANTS}
    assert prov["full"]["model"]["spec"]["negative_embedding"] == "neg.safetensors"
    assert "negative_embedding_sha256" in prov["full"]["model"]
    lora_file = out.parent / "pos" / "pytorch_lora_weights.safetensors"  # a LoRA folder is identified by its file
    assert prov["full"]["model"]["lora_sha256"] == hashlib.sha256(lora_file.read_bytes()).hexdigest()
    assert prov["no-negative"]["model"]["spec"]["negative_embedding"] is None
    assert "negative_embedding_sha256" not in prov["no-negative"]["model"]
    assert "lora_sha256" in prov["no-negative"]["model"]
    assert prov["no-positive"]["model"]["spec"]["lora"] is None and "lora_sha256" not in prov["no-positive"]["model"]
    assert prov["no-tac"]["params"]["use_tac"] is False and prov["full"]["params"]["use_tac"] is True
    assert prov["standard-inversion"]["params"]["inversion_order"] == "standard"
    assert prov["gamma=0.5"]["params"]["tac_ratio"] == 0.5


def test_the_table_on_the_console_in_markdown_and_csv(ablation):
    out = ablation["out"]
    md = (out / "ablation.md").read_text()
    rows = [line for line in md.splitlines() if line.startswith("| ")][1:]
    assert [r.split("|")[1].strip().split(" [")[0] for r in rows] == VARIANTS
    assert "## Variants" in md and "same 3 source images" in md and "left out: **gamma=0.9**" in md
    assert "`params.use_tac: True -> False`" in md and "[random weights]" in md
    assert "protocol differs" not in md  # every row scored alike: same source, subset, real set, weights
    csv_rows = (out / "ablation.csv").read_text().splitlines()
    assert csv_rows[0].startswith("method,category,n,kid_x1000") and [r.split(",")[0] for r in csv_rows[1:]] == VARIANTS
    for name in VARIANTS:
        assert name in ablation["stdout"]
    assert "KID" in ablation["stdout"] and "RANDOM WEIGHTS" in ablation["stderr"]


def test_rerun_reuses_every_variant_and_prints_the_same_table(world, ablation, capsys):
    out = ablation["out"]
    before = _files(out)
    with _counting_real_features() as real_calls:
        assert main(_args(world, out, "--sweep", "gamma=0.5,0.9")) == 0
    assert real_calls == []  # nothing to score
    captured = capsys.readouterr()
    err = " ".join(captured.err.split())
    assert captured.out == ablation["stdout"]
    assert err.count("0 translated now, 3 from earlier runs") == len(VARIANTS)
    assert err.count(": reused (same dataset, same protocol)") == len(VARIANTS)
    after = _files(out)
    for name in VARIANTS:  # no shard, no eval JSON rewritten
        slug = name.replace("=", "-")
        for rel in [r for r in before if r.startswith((f"{slug}/data/", f"{slug}/webdataset/", f"eval/{slug}.json"))]:
            assert after[rel] == before[rel], rel
    assert after["ablation.md"][1] == before["ablation.md"][1]
    record = json.loads((out / "ablation.json").read_text())
    assert set(record["last_run"]) == set(VARIANTS)
    assert all(r == {"translated": 0, "reused": 3, "eval": "reused"} for r in record["last_run"].values())


def test_an_eval_of_another_build_is_recomputed_saying_why_and_a_lost_one_is_made(world, ablation, capsys):
    out = ablation["out"]
    stale = out / "eval" / "no-tac.json"
    doc = json.loads(stale.read_text())
    doc["inputs"]["translated_fingerprint"] = "0" * 64
    stale.write_text(json.dumps(doc))
    (out / "eval" / "full.json").unlink()  # as if the run had been killed before scoring it
    with _counting_real_features() as real_calls:
        assert main(_args(world, out, "--sweep", "gamma=0.5,0.9")) == 0
    assert len(real_calls) == 1  # two variants scored, the real features computed once
    captured = capsys.readouterr()
    err = " ".join(captured.err.split())
    assert "no-tac.json: recomputed (the translated dataset is not the one it scored)" in err
    assert err.count(": reused (same dataset, same protocol)") == len(VARIANTS) - 2
    assert captured.out == ablation["stdout"]  # the same numbers: same images, same protocol, same real features
    assert json.loads(stale.read_text())["inputs"]["translated_fingerprint"] == \
        Manifest.read(out / "no-tac").fingerprint
    # the real photos' features were not computed again: the statistics cache (keyed by their bytes) had them
    assert json.loads(stale.read_text())["inputs"]["real_features"]["inception"]["from"] == "cache"
    last = json.loads((out / "ablation.json").read_text())["last_run"]
    assert last["full"]["eval"] == "computed" and last["no-tac"]["eval"].startswith("recomputed")


def test_other_settings_into_the_same_out_are_refused_naming_them(world, ablation, capsys):
    out = ablation["out"]
    before = _files(out)
    assert main(_args(world, out, "--sweep", "gamma=0.5,0.9", "--guidance", "3.0", "--kid-subsets", "7")) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "params.guidance_scale: 7.5 -> 3.0" in err and "evaluation.kid_subsets: 5 -> 7" in err
    assert "--overwrite" in err
    assert _files(out) == before


def test_a_missing_artifact_leaves_its_variant_out_and_overwrite_keeps_foreign_files(world, tmp_path, capsys):
    out = tmp_path / "no-artifacts"
    args = _args(world, out, "--variants", "full,no-negative,no-positive", neg=False, lora=False, limit="1")
    assert main(args) == 0
    err = " ".join(capsys.readouterr().err.split())
    assert "left out no-negative: no --negative-embedding given" in err
    assert "left out no-positive: no --lora or --unet given" in err
    record = json.loads((out / "ablation.json").read_text())
    assert [v["name"] for v in record["variants"]] == ["full"]
    assert [x["name"] for x in record["left_out"]] == ["no-negative", "no-positive"]
    assert not (out / "no-negative").exists() and not (out / "no-positive").exists()
    assert "left out: **no-negative**: no --negative-embedding given" in (out / "ablation.md").read_text()

    # other settings with --overwrite: replaced, but a file of the user's in OUT or in a variant folder stays
    (out / "notes.txt").write_text("mine")
    (out / "full" / "notes.txt").write_text("mine too")
    old_fingerprint = Manifest.read(out / "full").fingerprint
    assert main([*args, "--guidance", "3.0", "--overwrite"]) == 0
    assert (out / "notes.txt").read_text() == "mine" and (out / "full" / "notes.txt").read_text() == "mine too"
    assert Manifest.read(out / "full").fingerprint != old_fingerprint
    assert all("notes.txt" in p for p in verify_dataset(out / "full").problems)  # only the user's file is extra
    assert json.loads((out / "eval" / "full.json").read_text())["inputs"]["translated_fingerprint"] == \
        Manifest.read(out / "full").fingerprint
    assert json.loads((out / "ablation.json").read_text())["settings"]["params"]["guidance_scale"] == 3.0


def test_a_folder_that_is_not_an_ablation_is_refused_and_left_alone(world, tmp_path, capsys):
    out = tmp_path / "someone-elses"
    out.mkdir()
    (out / "photo.jpg").write_bytes(b"x")
    assert main(_args(world, out, "--overwrite")) == 2
    assert "holds no r2r ablate output" in " ".join(capsys.readouterr().err.split())
    assert [p.name for p in out.iterdir()] == ["photo.jpg"]


def test_bad_real_photos_are_refused_before_any_translation(world, tmp_path, capsys):
    out = tmp_path / "bad-real"
    args = _args(world, out)
    args[args.index("--real") + 1] = str(tmp_path / "no-such-photos")
    assert main(args) == 2
    assert "--real" in capsys.readouterr().err and not out.exists()


def test_every_variant_left_out_is_an_error_before_any_work(world, tmp_path, capsys):
    out = tmp_path / "nothing"
    assert main(_args(world, out, "--variants", "no-negative", "--no-tac", "--sweep", "gamma=0.3",
                      neg=False)) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "left out no-negative" in err and "left out gamma=0.3: the full method runs without TAC" in err
    assert "every requested variant was left out" in err and not out.exists()


def test_plan_variants_and_bad_options():
    base = dict(source="s", out=Path("o"), evaluation=EvalSettings(real="r"))
    cfg = AblateConfig(model=ModelSpec("m", unet="ft-unet", negative_embedding="n.safetensors",
                                       negative_token="<cg>"),
                       params=RIGParams(negative_prompt="<cg>, blurry", inversion_order="standard"),
                       sweeps=(Sweep.parse("layer-threshold=64,none"), Sweep.parse("steps=20")), **base)
    run, left = plan_variants(cfg)
    by = {v.name: v for v in run}
    assert list(by) == ["full", "no-negative", "no-positive", "no-tac", "layer-threshold=64", "layer-threshold=none",
                        "steps=20"]
    assert left == [{"name": "standard-inversion", "reason": "the full method already uses --inversion-order "
                                                             "standard"}]
    assert by["no-negative"].params.negative_prompt == ", blurry"  # the token goes with its embedding
    assert by["no-negative"].model.negative_embedding is None and by["no-negative"].model.negative_token is None
    assert by["no-positive"].model.unet is None and by["no-positive"].model.negative_embedding == "n.safetensors"
    assert by["layer-threshold=none"].params.tac_layers is None and by["steps=20"].slug == "steps-20"
    for bad, message in (("gamma=1.5", "not a number in [0, 1]"), ("alpha=1", "expected NAME=V1,V2"),
                         ("gamma=", "no values"), ("steps=2,2", "listed twice")):
        with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
            Sweep.parse(bad)
    with pytest.raises(ValueError, match="unknown variant"):
        AblateConfig(model=ModelSpec("m"), variants=("full", "no-dki"), **base)
    with pytest.raises(ValueError, match="must include parquet"):
        AblateConfig(model=ModelSpec("m"), formats=("webdataset",), **base)


def test_help_names_the_command():
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "r2r.cli", "ablate", "--help"], capture_output=True, text=True,
                          cwd=Path(__file__).resolve().parents[1], env={**os.environ, "COLUMNS": "200"}, timeout=120)
    assert done.returncode == 0
    for flag in ("--variants", "--sweep", "--real", "--random-weights", "--eval-device", "--overwrite"):
        assert flag in done.stdout
    assert "(default: all)" in done.stdout
