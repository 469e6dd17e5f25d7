"""scripts/gpu_check.sh works before it ever meets a GPU: the whole check runs on the CPU with --tiny (every step,
its JSON and the table), a short budget skips steps and says so, and a step that hangs is stopped at its time
with what it reported kept."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def gpu_check(tmp_path: Path, *args: str, timeout: float, python: str = sys.executable) -> subprocess.CompletedProcess:
    env = {**os.environ, "OUT": str(tmp_path / "out"), "PYTHON": python}
    return subprocess.run(["bash", str(ROOT / "scripts" / "gpu_check.sh"), *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)


@pytest.mark.slow
def test_tiny_check_runs_every_step(tmp_path, warm):
    """Every step but the compiled one, which costs 50 s on 2 CPU cores (torch.compile traces the UNet three times:
    the inversion's rows, generation with TAC, generation after it) and has a test of its own below. One check, as on
    the GPU: each step is a process of its own, here served by the suite's warm interpreter (tests/conftest.py
    `warm`: the steps' imports are most of their time on a CPU), so one invocation saves the runner's start-up.
    The evaluate step is `r2r evaluate` end to end (real features computed, then cached) against its networks alone."""
    proc = gpu_check(tmp_path, "--tiny", "--budget", "1200", "--only", "translate,train,translate_dataset,evaluate",
                     timeout=1500, python=warm.python)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    summary = json.loads((tmp_path / "out" / "gpu_check.json").read_text())
    steps = summary["steps"]
    assert list(steps) == ["translate", "train", "translate_dataset", "evaluate"]
    assert all(s["status"] == "ok" for s in steps.values()), steps
    translate = steps["translate"]["report"]["results"]
    assert set(translate) == {"reference_fp32_b1", "ours_fp32_b1", "ours_bfloat16_b2"}
    assert translate["ours_bfloat16_b2"]["vs_exact_max_abs"] >= 0
    train = steps["train"]["report"]
    assert train["negative"]["ours"]["samples_per_s"] > 0 and train["positive"]["speedup"] > 0
    assert steps["translate_dataset"]["report"]["end_to_end_img_s"] > 0
    report = steps["evaluate"]["report"]
    assert report["new_warm_pairs_per_s"] > 0 and report["networks_alone_warm_pairs_per_s"] > 0
    assert report["pairs"] == 2 and "old_pairs_per_s" not in report
    for name in steps:
        assert (tmp_path / "out" / f"{name}.log").stat().st_size > 0
    assert len(list((tmp_path / "out").iterdir())) <= 8  # the device tool brings back at most 8 files
    table = proc.stdout[proc.stdout.index("GPU check on cpu"):]
    for row in ("translate ours_fp32_b1", "x published", "train textual inversion ours", "train LoRA ours",
                "translate-dataset end to end", "evaluate networks alone", "evaluate end to end, cached real",
                "of the networks alone"):
        assert row in table, table


@pytest.mark.skipif(os.environ.get("R2R_TEST_COMPILE") != "1",
                    reason="torch.compile's tracing takes 50-80 s of CPU on 2 cores (the whole suite: ~4.5 minutes); "
                           "R2R_TEST_COMPILE=1 runs it (run it before a GPU session)")
def test_tiny_check_compiled_step(tmp_path):
    proc = gpu_check(tmp_path, "--tiny", "--budget", "1200", "--only", "translate,translate_compile", timeout=1500)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    steps = json.loads((tmp_path / "out" / "gpu_check.json").read_text())["steps"]
    assert list(steps) == ["translate", "translate_compile"] and all(s["status"] == "ok" for s in steps.values())
    compiled = steps["translate_compile"]["report"]["results"]["ours_bfloat16_b2_compile"]
    assert compiled["compile"] == "eager/default" and "vs_exact_mean_abs" in compiled


def test_short_budget_skips_and_says_so(tmp_path, warm):
    proc = gpu_check(tmp_path, "--tiny", "--budget", "12", timeout=300, python=warm.python)
    assert proc.returncode == 0, proc.stderr[-2000:]
    steps = json.loads((tmp_path / "out" / "gpu_check.json").read_text())["steps"]
    assert set(steps) == {"translate", "train", "translate_dataset", "translate_compile", "evaluate"}
    assert all(s["status"].startswith("skipped:") and "--only" in s["status"] for s in steps.values()), steps
    assert "step translate: skipped" in proc.stdout


def test_unknown_step_and_no_gpu_are_refused(tmp_path, warm):
    proc = gpu_check(tmp_path, "--tiny", "--only", "translate,nope", timeout=300, python=warm.python)
    assert proc.returncode == 2 and "unknown step" in proc.stderr
    proc = gpu_check(tmp_path, timeout=300, python=warm.python)  # no --tiny on a machine without CUDA
    assert proc.returncode == 2 and "--tiny" in proc.stderr


def test_a_hanging_step_is_stopped_and_keeps_its_report(tmp_path):
    spec = importlib.util.spec_from_file_location("gpu_check", ROOT / "scripts" / "gpu_check.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["gpu_check"] = module  # dataclasses look their module up there
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules["gpu_check"]
    code = "import json, time; print(json.dumps({'partial': 1}), flush=True); time.sleep(60)"
    step = module.Step("translate", [sys.executable, "-c", code], 0)
    t0 = time.monotonic()
    res = module.run_step(step, tmp_path, tmp_path, timeout=3)
    assert time.monotonic() - t0 < 30
    assert res["status"] == "timeout" and res["report"] == {"partial": 1}
    assert "partial" in (tmp_path / "translate.log").read_text()
    failing = module.Step("train", [sys.executable, "-c", "raise SystemExit('boom')"], 0)
    res = module.run_step(failing, tmp_path, tmp_path, timeout=30)
    assert res["status"] == "failed (exit 1)" and res["report"] is None and "boom" in "\n".join(res["tail"])
