"""The GPU check's runner (scripts/gpu_check.sh installs what is missing, then runs this): the project's three GPU
benchmarks in turn under one time budget, each step a subprocess with its own log and a timeout, one JSON file with
everything measured, and a short table printed last.

Why a runner: GPU time comes in short slots (about 15 minutes, start-up included), so the whole check must be one
command that ends inside ~8 minutes whatever happens, keeps what finished when a later step runs out of time, and
says what it skipped. It measures nothing itself and must not: every figure comes from the benchmarks' JSON lines.

Steps (in this order; `--only` picks some):
  translate          benchmarks/bench_translate.py: published pattern (fp32, batch 1), ours exact (fp32, batch 1),
                     ours bf16 batch 8 (SDPA); 768x1024, 50 steps, strength 0.3, guidance 7.5, SD-1.5 random weights
  train              benchmarks/bench_train.py: textual inversion and LoRA, 512x512, batch 8, bf16, vs the example
                     scripts' pattern
  translate_dataset  benchmarks/bench_translate_dataset.py --sd15, 768x1024, 32 images, batch 8, bf16
  translate_compile  ours bf16 batch 8 + torch.compile (its deviation from the exact output saved by `translate`)
  evaluate           benchmarks/bench_evaluate.py --device cuda: `r2r evaluate` end to end (fresh processes; real
                     features computed, then from the statistics cache) against its networks alone on the same
                     images, 768x1024, 64 pairs and 64 real photos, 8 decoding workers: does decoding keep the GPU
                     busy (end to end / networks alone)
`--tiny` runs the same steps on the CPU with a tiny model and small sizes (a smoke test of this very script).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STEPS = ("translate", "train", "translate_dataset", "translate_compile", "evaluate")
RESERVE_S = 10  # kept back for the summary


@dataclass
class Step:
    name: str
    argv: list[str]
    min_s: int  # not started with less than this left (a start that cannot finish only wastes the slot)
    env: dict[str, str] = field(default_factory=dict)


def plan(tiny: bool, work: Path) -> list[Step]:
    """The commands of every step (GPU figures, or the CPU smoke sizes with --tiny)."""
    py = [sys.executable]
    exact = str(work / "exact.safetensors")
    tr = str(work / "translate.json")
    trc = str(work / "translate_compile.json")
    if tiny:
        one = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}  # tiny tensors: threads only spin on a shared CPU
        # the smallest sizes that still run every code path (a step costs its process start-up above all)
        size = ["--tiny", "--device", "cpu", "--width", "32", "--height", "32", "--steps", "7", "--runs", "1",
                "--batch-size", "2"]
        return [
            Step("translate", py + ["benchmarks/bench_translate.py", *size, "--save-exact", exact,
                                    "--json-out", tr], 10, one),
            Step("train", py + ["benchmarks/bench_train.py", "--tiny", "--device", "cpu", "--batch-size", "2",
                                "--resolution", "32", "--images", "2", "--workers", "0", "--warmup", "1", "--steps",
                                "1"], 10, one),
            Step("translate_dataset", py + ["benchmarks/bench_translate_dataset.py", "--device", "cpu", "--width", "64",
                                            "--height", "64", "--images", "2", "--batch-size", "2", "--steps", "7",
                                            "--dtype", "bfloat16", "--repeats", "1", "--num-workers", "1"], 10, one),
            # the eager backend runs torch.compile's capture without a C++ toolchain: the plumbing, not the speed
            Step("translate_compile", py + ["benchmarks/bench_translate.py", *size, "--skip-reference", "--skip-fp32",
                                            "--exact-from", exact, "--compile", "--compile-backend", "eager",
                                            "--json-out", trc], 10, one),
            Step("evaluate", py + ["benchmarks/bench_evaluate.py", "--device", "cpu", "--size", "64x64", "--pairs",
                                   "2", "--real", "2", "--batch-size", "2", "--rounds", "1", "--workers", "1"], 10,
                 one),
        ]
    size = ["--device", "cuda", "--width", "768", "--height", "1024", "--steps", "50", "--strength", "0.3",
            "--guidance", "7.5", "--batch-size", "8", "--dtype", "bfloat16", "--runs", "2"]
    return [
        Step("translate", py + ["benchmarks/bench_translate.py", *size, "--save-exact", exact, "--json-out", tr], 90),
        Step("train", py + ["benchmarks/bench_train.py", "--device", "cuda", "--batch-size", "8", "--precision", "bf16",
                            "--resolution", "512", "--images", "32", "--warmup", "3", "--steps", "10"], 90),
        Step("translate_dataset", py + ["benchmarks/bench_translate_dataset.py", "--sd15", "--device", "cuda",
                                        "--width", "768", "--height", "1024", "--images", "32", "--batch-size", "8",
                                        "--dtype", "bfloat16", "--repeats", "1"], 90),
        Step("translate_compile", py + ["benchmarks/bench_translate.py", *size, "--skip-reference", "--skip-fp32",
                                        "--exact-from", exact, "--compile", "--json-out", trc], 120),
        Step("evaluate", py + ["benchmarks/bench_evaluate.py", "--device", "cuda", "--pairs", "64", "--real", "64",
                               "--batch-size", "16", "--rounds", "1", "--workers", "8"], 90),
    ]


def last_json_line(text: str) -> dict | None:
    for line in reversed(text.splitlines()):
        line = line.strip()
        if line.startswith("{") and line.endswith("}"):
            try:
                return json.loads(line)
            except json.JSONDecodeError:
                continue
    return None


def run_step(step: Step, out: Path, work: Path, timeout: float) -> dict:
    """Run one benchmark with a timeout; its stdout+stderr go to OUT/<name>.log. Returns what it reported."""
    log = out / f"{step.name}.log"
    t0 = time.perf_counter()
    captured: list[str] = []
    with open(log, "w") as fh:
        fh.write("$ " + " ".join(step.argv) + "\n")
        fh.flush()
        proc = subprocess.Popen(step.argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                start_new_session=True, env={**os.environ, **step.env})

        def copy() -> None:  # on a thread, so that a step printing nothing cannot hold up the timeout
            for line in proc.stdout:
                captured.append(line)
                fh.write(line)
                fh.flush()

        reader = threading.Thread(target=copy, daemon=True)
        reader.start()
        try:
            proc.wait(timeout=timeout)
            timed_out = False
        except subprocess.TimeoutExpired:
            timed_out = True
            os.killpg(proc.pid, signal.SIGKILL)  # the step's own process group (its DataLoader workers too)
            proc.wait()
        reader.join(timeout=10)
    seconds = round(time.perf_counter() - t0, 1)
    text = "".join(captured)
    report = last_json_line(text)
    partial = work / f"{step.name}.json"  # bench_translate rewrites this after every setting it finishes
    if report is None and partial.exists():
        report = json.loads(partial.read_text())
    status = "timeout" if timed_out else ("ok" if proc.returncode == 0 else f"failed (exit {proc.returncode})")
    tail = [ln.rstrip() for ln in captured[-8:]]
    return {"status": status, "seconds": seconds, "log": log.name, "report": report,
            **({"tail": tail} if status != "ok" else {})}


def environment() -> dict:
    env: dict = {"date_utc": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M"),
                 "python": platform.python_version(), "machine": platform.machine()}
    try:
        import torch

        env["torch"] = torch.__version__
        env["cuda"] = torch.version.cuda
        env["device"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"
    except Exception as e:  # noqa: BLE001 - reported, the steps then fail with their own errors
        env["torch_error"] = repr(e)
    from importlib import metadata

    for name in ("diffusers", "transformers", "huggingface_hub", "accelerate", "peft", "datasets", "webdataset"):
        try:
            env[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            env[name] = None
    env["unmet_requirements"] = unmet_requirements()
    try:
        env["commit"] = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                                       text=True, timeout=10).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        env["commit"] = None
    return env


def unmet_requirements() -> list[str]:
    """Requirements of the carried wheels (in /tmp/site) that the GPU image does not meet: a clue when a step fails."""
    from importlib import metadata

    try:
        from packaging.requirements import Requirement
    except ImportError:
        return []
    site = Path("/tmp/site")
    if not site.is_dir():
        return []
    unmet = []
    for dist in metadata.distributions(path=[str(site)]):
        for spec in dist.requires or []:
            req = Requirement(spec)
            if req.marker is not None and not req.marker.evaluate({"extra": ""}):
                continue
            try:
                have = metadata.version(req.name)
            except metadata.PackageNotFoundError:
                unmet.append(f"{dist.metadata['Name']} needs {req}: not installed")
                continue
            if req.specifier and not req.specifier.contains(have, prereleases=True):
                unmet.append(f"{dist.metadata['Name']} needs {req}: {have} installed")
    return unmet


def table(summary: dict) -> str:
    """The short human summary: one line per measured setting, with the issue's targets."""
    rows: list[tuple[str, str, str]] = []
    steps = summary["steps"]

    translate = (steps.get("translate") or {}).get("report") or {}
    reference = translate.get("results", {}).get("reference_fp32_b1", {}).get("s_per_image")

    def tr_rows(rep: dict | None) -> None:
        if not rep:
            return
        res = rep.get("results", {})
        base = reference  # the compiled setting runs in its own process; the reference ran in `translate`
        for name, r in res.items():
            if "s_per_image" not in r:  # warmed up (compiled), then out of time
                rows.append((f"translate {name}", "not timed", f"warm-up {r.get('warmup_s')} s"))
                continue
            speed = f"{base / r['s_per_image']:.2f}x published" if base else ""
            dev = f"  dev {r['vs_exact_mean_abs']:.1e}/{r['vs_exact_max_abs']:.1e}" if "vs_exact_mean_abs" in r else ""
            rows.append((f"translate {name}", f"{r['s_per_image']:.3f} s/image", speed + dev))

    tr_rows((steps.get("translate") or {}).get("report"))
    tr_rows((steps.get("translate_compile") or {}).get("report"))
    train = (steps.get("train") or {}).get("report") or {}
    for method, label in (("negative", "textual inversion"), ("positive", "LoRA")):
        if method in train:
            r = train[method]
            rows.append((f"train {label} baseline", f"{r['baseline']['samples_per_s']:.1f} samples/s", ""))
            rows.append((f"train {label} ours", f"{r['ours']['samples_per_s']:.1f} samples/s",
                         f"{r['speedup']:.2f}x baseline"))
    tds = (steps.get("translate_dataset") or {}).get("report") or {}
    if tds:
        rows.append(("translate-dataset pipeline alone", f"{tds['ceiling_img_s']:.3f} images/s", ""))
        rows.append(("translate-dataset end to end", f"{tds['end_to_end_img_s']:.3f} images/s",
                     f"{tds['ratio']:.2f} of the pipeline alone"))
    ev = (steps.get("evaluate") or {}).get("report") or {}
    if ev.get("networks_alone_warm_pairs_per_s"):
        rows.append(("evaluate networks alone", f"{ev['networks_alone_warm_pairs_per_s']:.2f} pairs/s",
                     f"{ev['networks_alone_cold_pairs_per_s']:.2f} with the real set"))
        rows.append(("evaluate end to end, cached real", f"{ev['new_warm_pairs_per_s']:.2f} pairs/s",
                     f"{ev['warm_fraction_of_networks']:.2f} of the networks alone"))
        rows.append(("evaluate end to end, real computed", f"{ev['new_cold_pairs_per_s']:.2f} pairs/s",
                     f"{ev['cold_fraction_of_networks']:.2f} of the networks alone"))
    width = max([len(r[0]) for r in rows] + [10])
    lines = [f"GPU check on {summary['environment'].get('device')} ({summary['environment']['date_utc']} UTC), "
             f"budget {summary['budget_s']} s, used {summary['elapsed_s']} s"]
    lines += [f"  {a:<{width}}  {b:>20}  {c}" for a, b, c in rows]
    for name in STEPS:
        s = steps.get(name)
        if s is None:
            continue
        if s["status"] != "ok":
            lines.append(f"  step {name}: {s['status']}" + (f" (log: {s['log']})" if "log" in s else ""))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default=os.environ.get("OUT") or "gpu-check-out", help="folder for the JSON and logs")
    p.add_argument("--budget", type=float, default=480, help="seconds for the whole check; steps that would not fit "
                                                             "are skipped")
    p.add_argument("--tiny", action="store_true", help="CPU smoke test: tiny model, small sizes")
    p.add_argument("--only", help=f"comma-separated steps to run (of {', '.join(STEPS)})")
    args = p.parse_args(argv)
    started = time.monotonic()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    only = set(args.only.split(",")) if args.only else set(STEPS)
    unknown = only - set(STEPS)
    if unknown:
        p.error(f"unknown step(s) {sorted(unknown)}; steps: {', '.join(STEPS)}")

    summary: dict = {"check": "gpu_check", "tiny": args.tiny, "budget_s": args.budget, "environment": environment(),
                     "steps": {}}
    env = summary["environment"]
    print(f"GPU check: {env.get('device')}, torch {env.get('torch')}, diffusers {env.get('diffusers')}, "
          f"transformers {env.get('transformers')}, huggingface_hub {env.get('huggingface_hub')}", flush=True)
    for u in env["unmet_requirements"]:
        print(f"  warning: {u}", flush=True)
    if not args.tiny and env.get("device") == "cpu":
        print("gpu_check: no CUDA device; on a CPU machine run it with --tiny", file=sys.stderr)
        return 2
    result_file = out / "gpu_check.json"
    with tempfile.TemporaryDirectory(prefix="gpu-check-") as tmp:
        work = Path(tmp)
        for step in plan(args.tiny, work):
            if step.name not in only:
                continue
            left = args.budget - (time.monotonic() - started) - RESERVE_S
            if left < step.min_s:
                summary["steps"][step.name] = {"status": f"skipped: {left:.0f} s left of the budget, needs at least "
                                                         f"{step.min_s} s (rerun with --only {step.name})"}
                print(f"== {step.name}: skipped ({left:.0f} s left, needs {step.min_s} s)", flush=True)
                continue
            print(f"== {step.name} (at most {left:.0f} s): {' '.join(step.argv[1:])}", flush=True)
            summary["steps"][step.name] = res = run_step(step, out, work, left)
            print(f"   {res['status']} in {res['seconds']} s", flush=True)
            summary["elapsed_s"] = round(time.monotonic() - started, 1)
            result_file.write_text(json.dumps(summary, indent=1))  # after every step: a killed check keeps the rest
    summary["elapsed_s"] = round(time.monotonic() - started, 1)
    result_file.write_text(json.dumps(summary, indent=1))
    print()
    print(table(summary))
    print(f"\nJSON: {result_file}")
    broken = [n for n, s in summary["steps"].items() if not (s["status"] == "ok" or s["status"].startswith("skipped"))]
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main())
