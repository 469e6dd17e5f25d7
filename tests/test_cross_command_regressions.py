"""Regressions found by a review of the evaluation commands and model identity: each test names the case it holds."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from r2r.cli import main

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.usefixtures("one_torch_thread")


# ----------------------------------------------------------------------------- 1. Hub model identity vs cache state
def test_hub_model_identity_does_not_depend_on_what_the_cache_held(tmp_path, monkeypatch):
    """translate-dataset, translate-images and ablate compute the model identity before loading the model. Its Hub
    commit is asked once (online: the Hub; offline: the cache, where an uncached id is an error, never an identity
    without a commit), so a first run on a cold cache and its rerun on the warm one record the same model."""
    from huggingface_hub import constants

    from r2r.models import resolve as model_files
    from r2r.config import ModelSpec
    from r2r.translate.dataset import public_identity

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setattr(model_files, "_MODEL_COMMITS", {})
    spec = ModelSpec("someone/tiny-sd")
    with pytest.raises(model_files.ModelFileError, match="not in the local Hugging Face cache"):
        public_identity(spec)
    commit = "0123456789abcdef0123456789abcdef01234567"
    snap = tmp_path / "hub" / "models--someone--tiny-sd" / "snapshots" / commit
    snap.mkdir(parents=True)
    (snap / "model_index.json").write_text(json.dumps({"_diffusers_version": "0.42.1"}))
    (snap.parent.parent / "refs").mkdir()
    (snap.parent.parent / "refs" / "main").write_text(commit)
    warm = public_identity(spec)
    assert warm["hub_commit"] == commit and set(warm) == {"spec", "hub_id", "hub_commit"}


def _png_file(path: Path, seed: int = 0, size=(48, 48)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.random.default_rng(seed).integers(1, 255, (*size[::-1], 3), dtype=np.uint8)).save(path)


@pytest.mark.slow
def test_translate_images_rerun_with_a_hub_model_resumes(tmp_path, tiny_model):
    """End to end against the Hub test server: the same translate-images command twice, online, fresh HF_HOME.
    The second run should skip the finished image (exit 0); it is refused as 'other settings'."""
    from synfashion.testing.hub_server import DEFAULT_USER, running_hub

    model = tiny_model
    files = {p.relative_to(model).as_posix(): p.read_bytes() for p in model.rglob("*") if p.is_file()}
    _png_file(tmp_path / "in" / "a.png")
    repo = f"{DEFAULT_USER}/tiny-sd"
    with running_hub() as hub:
        hub.create_repo(repo, repo_type="model", private=False)
        hub.commit_files(repo, files, repo_type="model")
        env = {**hub.client_env(home=tmp_path / "hf_home"), "OMP_NUM_THREADS": "1"}  # tiny tensors: one thread
        cmd = [sys.executable, "-m", "r2r.cli", "translate-images", "--model", repo, "--input", str(tmp_path / "in"),
               "--output", str(tmp_path / "out"), "--steps", "4", "--strength", "0.5", "--no-progress"]
        runs = [subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300) for _ in range(2)]
    assert runs[0].returncode == 0, runs[0].stderr[-3000:]
    assert runs[1].returncode == 0, runs[1].stderr[-3000:]


# ----------------------------------------------------------------------------- 2. study-page: a method named "source"
def test_a_method_named_source_is_not_shown_the_source_picture(evaluated, tmp_path):
    """study.py keys picture links by (label, key) and the source picture by ("source", key): a method labelled
    "source" (e.g. the untouched renders as a baseline) gets the rendered source shown as its candidate."""
    doc = json.loads(evaluated["ours"].read_text())
    doc["method"] = "source"
    renamed = tmp_path / "source.json"
    renamed.write_text(json.dumps(doc))
    assert main(["study-page", str(renamed), str(evaluated["cut"]), "--out", str(tmp_path / "s"),
                 "--image-format", "png"]) == 0
    text = (tmp_path / "s" / "index.html").read_text()
    block = text[text.index('id="study-data">') + len('id="study-data">'):]
    data = json.loads(block[: block.index("</script>")])
    for t in data["trials"]:
        mine = t["left"] if t["left"]["method"] == "source" else t["right"]
        assert mine["image"] != t["source"], t


# ----------------------------------------------------------------------------- 3. report + study-page in one folder
def test_a_study_page_beside_a_report_keeps_the_reports_pictures(evaluated, tmp_path, capsys):
    """Both pages keep pictures in OUT/report_files/ and each prune()s every hashed file it did not use itself.
    Since issue 20 (second round) a folder has one owner (synfashion/fs/ownership.py): study-page refuses the
    report's folder outright, so it can delete none of its pictures."""
    out = tmp_path / "pages"
    assert main(["report", str(evaluated["ours"]), str(evaluated["cut"]), "--out", str(out)]) == 0
    text = (out / "report.html").read_text()
    links = sorted(set(re.findall(r'src="([^"]+)"', text)))
    assert links and all((out / link).is_file() for link in links)
    assert main(["study-page", str(evaluated["ours"]), str(evaluated["cut"]), "--out", str(out), "--overwrite"]) == 2
    assert "holds a finished report page (r2r report)" in " ".join(capsys.readouterr().err.split())
    missing = [link for link in links if not (out / link).is_file()]
    assert missing == [], f"study-page deleted {len(missing)} of the report's {len(links)} pictures"


# ----------------------------------------------------------------------------- 4. report shows a rebuilt dataset
def test_report_refuses_or_flags_images_of_another_build_than_the_one_scored(evaluated, tmp_path, capsys):
    """evaluate records inputs.translated_fingerprint, but eval_results only checks that a name still pairs with
    the same source key: a translated dataset rebuilt in place (same keys, other pixels) is shown under the old
    scores without a word."""
    from test_evaluate import _png, _records, write_translated_dataset

    world = tmp_path / "w"
    shutil.copytree(evaluated["root"], world)
    doc = json.loads((world / "eval" / "ours.json").read_text())
    doc["inputs"]["translated"] = str(world / "ours")
    doc["inputs"]["translated_fingerprint"] = "0" * 64  # the build it scored (the fixture writes no fingerprint)
    (world / "eval" / "ours.json").write_text(json.dumps(doc))
    shutil.rmtree(world / "ours")
    write_translated_dataset(world / "ours", world / "source",
                             {rec.key: _png(i + 50, scale=0.3) for i, (rec, _) in enumerate(_records()[:3])})
    manifest = json.loads((world / "ours" / "manifest.json").read_text())
    manifest["fingerprint"] = "1" * 64  # the rebuild
    (world / "ours" / "manifest.json").write_text(json.dumps(manifest))
    code = main(["report", str(world / "eval" / "ours.json"), "--out", str(tmp_path / "r")])
    captured = capsys.readouterr()
    page = (tmp_path / "r" / "report.html").read_text() if code == 0 else ""
    warnings = re.findall(r'<p class="warn">(.*?)</p>', page)
    said = any(w in text for text in [*warnings, captured.err] for w in ("fingerprint", "rebuilt", "another build"))
    assert code == 2 or said, "the report showed another build's pictures under the old scores, silently"


# ----------------------------------------------------------------------------- 5. ablate sweep names
def test_sweep_variants_have_distinct_folders_and_settings():
    from r2r.evaluation.ablate import AblateConfig, Sweep, plan_variants
    from r2r.evaluation.run import MetricSettings as EvalSettings
    from r2r.config import ModelSpec

    base = dict(source="s", out=Path("o"), evaluation=EvalSettings(real="r"), model=ModelSpec("m"), variants=())
    run, _ = plan_variants(AblateConfig(sweeps=(Sweep.parse("gamma=0.3,0.3000001"),), **base))
    assert len({v.slug for v in run}) == len(run), [v.slug for v in run]  # both write OUT/gamma-0.3/


def test_one_parameter_swept_under_two_names_is_refused():
    from r2r.evaluation.ablate import AblateConfig, Sweep
    from r2r.evaluation.run import MetricSettings as EvalSettings
    from r2r.config import ModelSpec

    base = dict(source="s", out=Path("o"), evaluation=EvalSettings(real="r"), model=ModelSpec("m"), variants=())
    with pytest.raises(ValueError):  # gamma and tac-ratio are one parameter: two identical variants
        AblateConfig(sweeps=(Sweep.parse("gamma=0.5"), Sweep.parse("tac-ratio=0.5")), **base)


# ----------------------------------------------------------------------------- 6. from_json only when translated is gone
def test_report_finds_a_relative_source_when_the_translated_path_was_absolute(evaluated, tmp_path, monkeypatch):
    """eval_results.Evaluation.open falls back to inputs.from_json only when `translated` does not exist: an evaluate
    run given an absolute --translated and a relative --source cannot be reported from another folder."""
    world = tmp_path / "world"
    shutil.copytree(evaluated["root"], world, ignore=shutil.ignore_patterns("eval"))
    monkeypatch.chdir(world)
    assert main(["evaluate", "--translated", str(world / "cut"), "--source", "source", "--real", "real", "--out",
                 "eval/rel.json", "--method", "rel", "--random-weights", "--kid-subsets", "2", "--device", "cpu",
                 "--no-progress", "--num-workers", "0"]) in (0, 1)
    monkeypatch.chdir(tmp_path)
    assert main(["report", str(world / "eval" / "rel.json"), "--out", str(tmp_path / "r")]) == 0


def test_an_output_path_that_is_a_folder_is_one_line(evaluated, tmp_path, capsys):
    (tmp_path / "out.md").mkdir()
    assert main(["evaluate-table", str(evaluated["ours"]), "--markdown", str(tmp_path / "out.md")]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "out.md" in err
