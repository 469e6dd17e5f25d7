"""Throughput of `r2r evaluate` end to end against its networks alone and against an older commit, and of its metrics
against the library versions that run here, on the same images.

End to end (the figure that counts): `r2r evaluate --random-weights` as a user runs it, a fresh process each time
(interpreter start, imports, networks built, pairing, decoding in worker processes, Inception, LPIPS, SSIM, KID, FD,
the JSON), on a built source folder of --pairs 768x1024 PNG renders, a folder of as many translated PNGs and a
folder of --real real PNGs, written to a temp dir once. Timed per round, interleaved so that the shared machine's
load falls on every side alike:
- old: the same command run from another checkout (--old, e.g. a `git worktree` of an earlier commit) with
  PYTHONPATH pointing at it: the figure before this tree's changes;
- new, cold: this tree with an empty statistics cache (the real set's features computed, then cached);
- new, warm: this tree again, the real set's features read from the cache (every evaluation after the first one
  against the same photos: another method, an ablation variant, a rerun);
- networks alone, for each tree: in a fresh process with that tree's r2r, the metric networks as its evaluate
  builds them, on the same images decoded beforehand, in the same batches after one warm-up batch: Inception on the
  translated images (and the real ones), LPIPS and SSIM on the pairs. What the arithmetic costs with no decoding,
  no process start, no pairing, no JSON: each end-to-end figure's ceiling.
Each figure is the best of --rounds (the least disturbed by other jobs; wall and CPU seconds, the CPU seconds
counting the decoding workers); medians are printed too. Ratios printed: new warm / networks alone (pairs only),
new cold / networks alone (pairs + real), the same for old (old always computes the real set), new / old end to
end, and new / old networks alone.

Per metric (--metrics): SSIM against torchmetrics' structural_similarity_index_measure (reduction="none") and KID
from features against torchmetrics' KernelInceptionDistance.compute on the same [n, 2048] features; Inception
features and LPIPS ours alone (torch-fidelity, lpips and torchmetrics' LPIPS import torchvision, which does not load
here; benchmarks/parity_metrics.py runs them in a throwaway venv). torchmetrics is not a project dependency; without
it those comparisons are skipped and say so.

    PYTHONPATH=$PWD .venv/bin/python benchmarks/bench_evaluate.py --old /tmp/basewt [--pairs 16] [--real 16]
        [--rounds 2] [--workers 2] [--device cuda] [--metrics] [--size 768x1024]

Prints figures and one JSON line.
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

W, H = 768, 1024


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn, device, repeats: int) -> float:
    """Median seconds of `fn()` over `repeats` runs after one warm-up."""
    fn()
    _sync(device)
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def images(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    base = torch.rand(n, 3, H // 16, W // 16, generator=g)
    x = torch.nn.functional.interpolate(base, size=(H, W), mode="bilinear", align_corners=False)
    x = (x + 0.05 * torch.rand(x.shape, generator=g)).clamp(0, 1)
    y = (x * 0.9 + 0.05 + 0.02 * torch.randn(x.shape, generator=g)).clamp(0, 1)
    return x, y


def bench_metrics(args, device) -> dict:
    from r2r.metrics import (
        ALEXNET,
        INCEPTION,
        LPIPS,
        LPIPS_ALEX_HEADS,
        InceptionFeatures,
        KIDConfig,
        kid_subsets,
        random_state_dict,
        random_weights,
        ssim,
    )

    out: dict = {}
    x, y = images(args.batch_size, 0)
    x, y = x.to(device), y.to(device)
    try:
        from torchmetrics.functional.image import (
            structural_similarity_index_measure as tm_ssim,
        )
        from torchmetrics.image.kid import KernelInceptionDistance
    except ImportError:
        tm_ssim = KernelInceptionDistance = None
        out["torchmetrics"] = "not installed (not a project dependency yet): comparisons skipped"
    with torch.inference_mode():
        ours = timed(lambda: ssim(x, y), device, args.repeats)
        out["ssim_ours_img_s"] = args.batch_size / ours
        if tm_ssim is not None:
            theirs = timed(lambda: tm_ssim(x, y, data_range=1.0, reduction="none"), device, args.repeats)
            out["ssim_torchmetrics_img_s"] = args.batch_size / theirs
            out["ssim_speedup_vs_torchmetrics"] = theirs / ours
        lpips = LPIPS(alexnet=random_weights(ALEXNET, 1), heads=random_weights(LPIPS_ALEX_HEADS, 2)).to(device)
        out["lpips_ours_img_s"] = args.batch_size / timed(lambda: lpips(x, y), device, args.repeats)
        inception = InceptionFeatures(random_state_dict(INCEPTION, 0)).to(device)
        u8 = (x * 255).round().to(torch.uint8)
        out["inception_ours_img_s"] = args.batch_size / timed(lambda: inception(u8), device, args.repeats)
    # KID from features: the protocol's sizes (100 subsets of 1000) on 1100 real and 1050 translated features
    g = torch.Generator().manual_seed(3)
    real = torch.rand(1100, 2048, generator=g).to(device)
    fake = (torch.rand(1050, 2048, generator=g) * 1.05).to(device)
    ours = timed(lambda: kid_subsets(real, fake, KIDConfig()), device, max(1, args.repeats // 2))
    out["kid_ours_s"] = ours
    if KernelInceptionDistance is not None:
        def tm_kid():
            m = KernelInceptionDistance(feature=torch.nn.Identity(), subsets=100, subset_size=1000).to(device)
            m.update(real, real=True)
            m.update(fake, real=False)
            return m.compute()

        theirs = timed(tm_kid, device, max(1, args.repeats // 2))
        out["kid_torchmetrics_s"] = theirs
        out["kid_speedup_vs_torchmetrics"] = theirs / ours
    return out


def write_inputs(root: Path, pairs: int, real: int) -> None:
    import hashlib

    from PIL import Image

    from synfashion.schema import RenderRecord, make_key, renders_row
    from synfashion.testing.fixtures import write_renders_folder

    src, tr = images(pairs, 1)
    rows, samples = [], []
    (root / "translated").mkdir(parents=True)
    for i in range(pairs):
        buf = io.BytesIO()
        Image.fromarray((src[i].permute(1, 2, 0) * 255).round().byte().numpy()).save(buf, "PNG")
        data = buf.getvalue()
        rec = RenderRecord(key=make_key("dress", f"dress-p{i:04d}", "t0", "front"), category="dress",
                           project=f"dress-p{i:04d}", texture="t0", view="front",
                           source_path=f"Dress/dress-p{i:04d}_t0_front.png", width=W, height=H, mode="RGB",
                           format="PNG", orientation=1, sha256=hashlib.sha256(data).hexdigest(),
                           num_bytes=len(data), split="test")
        rows.append(renders_row(rec, data))
        samples.append(rec.metadata())
        Image.fromarray((tr[i].permute(1, 2, 0) * 255).round().byte().numpy()).save(
            root / "translated" / f"{rec.key}.png")
    write_renders_folder(root / "source", rows, samples)
    (root / "real").mkdir()
    photos, _ = images(real, 2)
    for i in range(real):
        Image.fromarray((photos[i].permute(1, 2, 0) * 255).round().byte().numpy()).save(root / "real" / f"p{i}.png")


def _evaluate_command(tree: Path, root: Path, out: Path, args, device, extra: list[str]) -> tuple[list[str], dict]:
    import os
    import sys

    path = os.pathsep.join([str(tree), *([os.environ["PYTHONPATH"]] if os.environ.get("PYTHONPATH") else [])])
    env = {**os.environ, "PYTHONPATH": path, "HF_HUB_OFFLINE": "1"}  # `tree` first; datasets follows HF_HUB_OFFLINE
    cmd = [sys.executable, "-m", "r2r.cli", "evaluate", "--translated", str(root / "translated"), "--source",
           str(root / "source"), "--real", str(root / "real"), "--out", str(out), "--random-weights", "--device",
           str(device), "--batch-size", str(args.batch_size), "--num-workers", str(args.workers), "--no-progress",
           "--overwrite", *extra]
    return cmd, env


def _children_cpu() -> float:
    import resource

    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def _run_timed(cmd: list[str], env: dict, cwd: Path) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of one command: the CPU time counts the process and the decoding workers it
    waited for, all threads: what the run cost the machine, steadier than wall time when others share it. `cwd`: a
    folder without an r2r package (`python -m` puts the working folder before PYTHONPATH: run from a checkout, the
    "old" command would import that checkout's r2r)."""
    import subprocess

    t, cpu = time.perf_counter(), _children_cpu()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False, cwd=cwd)
    seconds, cpu = time.perf_counter() - t, _children_cpu() - cpu
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd[:4])} ... exited with {done.returncode}:\n{done.stderr[-2000:]}")
    return seconds, cpu


def _check_tree(tree: Path, env_tree: Path, cwd: Path) -> None:
    """Refuse to time a checkout other than the one named (an import path mistake would compare a tree with
    itself)."""
    import os
    import subprocess
    import sys

    path = os.pathsep.join([str(env_tree), *([os.environ["PYTHONPATH"]] if os.environ.get("PYTHONPATH") else [])])
    found = subprocess.run([sys.executable, "-c", "import r2r, pathlib; print(pathlib.Path(r2r.__file__).resolve())"],
                           env={**os.environ, "PYTHONPATH": path}, capture_output=True, text=True, check=True,
                           cwd=cwd).stdout.strip()
    if not Path(found).is_relative_to(tree.resolve()):
        raise SystemExit(f"PYTHONPATH={path} imports r2r from {found}, not from {tree}")


def decoded(root: Path) -> tuple[list[torch.Tensor], list[torch.Tensor], list[torch.Tensor]]:
    """The benchmark's translated, source and real images as uint8 tensors (decoded once, outside any timing)."""
    import pyarrow.parquet as pq

    from loaders import decode_image

    def load_bytes(data: bytes) -> torch.Tensor:
        return torch.from_numpy(np.asarray(decode_image(data)).copy()).permute(2, 0, 1).contiguous()  # as NativeImage

    translated = [load_bytes(p.read_bytes()) for p in sorted((root / "translated").glob("*.png"))]
    real = [load_bytes(p.read_bytes()) for p in sorted((root / "real").glob("*.png"))]
    src = [load_bytes(row["image"]["bytes"]) for f in sorted((root / "source" / "data" / "renders").glob("*.parquet"))
           for row in pq.read_table(f, columns=["image"]).to_pylist()]  # rows in key order, as the translated names
    return translated, src, real


def networks_alone(root: Path, args, device) -> dict:
    """In this process, with the r2r on its PYTHONPATH: the metric networks as `r2r evaluate --random-weights`
    builds them (Inception seed 0, AlexNet 1, LPIPS heads 2; this tree's allocator tuning where it has one) on the
    images under `root` decoded beforehand, in --batch-size batches after one warm-up batch: seconds and CPU seconds
    of the pairs (Inception on the translated image, LPIPS, SSIM) and of the real images (Inception)."""
    from r2r.metrics import (
        ALEXNET,
        INCEPTION,
        LPIPS,
        LPIPS_ALEX_HEADS,
        InceptionFeatures,
        random_state_dict,
        random_weights,
        ssim,
    )

    try:
        from r2r.evaluation.run import tune_allocator
    except ImportError:  # an older checkout: it had none
        tune_allocator = None
    if tune_allocator is not None:
        tune_allocator(force=True)  # what `r2r evaluate` does in its own process
    translated, src, real = decoded(root)
    inception = InceptionFeatures(random_state_dict(INCEPTION, 0)).to(device)
    lpips = LPIPS(alexnet=random_weights(ALEXNET, 1), heads=random_weights(LPIPS_ALEX_HEADS, 2)).to(device)
    b = args.batch_size  # the pairs are one size here: evaluate's batches are these

    def pairs(lo: int, hi: int) -> None:
        for i in range(lo, hi, b):
            x = torch.stack(translated[i:min(i + b, hi)]).to(device)
            y = torch.stack(src[i:min(i + b, hi)]).to(device)
            inception(x)
            lpips(x, y)
            ssim(x, y)

    out = {}
    with torch.inference_mode():
        pairs(0, min(b, len(translated)))  # warm-up: the convolution primitives of these shapes
        _sync(device)
        t, cpu = time.perf_counter(), time.process_time()
        pairs(0, len(translated))
        _sync(device)
        out["alone_pairs"], out["alone_pairs_cpu"] = time.perf_counter() - t, time.process_time() - cpu
        t, cpu = time.perf_counter(), time.process_time()
        for i in range(0, len(real), b):
            inception(torch.stack(real[i:i + b]).to(device))
        _sync(device)
        out["alone_real"], out["alone_real_cpu"] = time.perf_counter() - t, time.process_time() - cpu
    return out


def _alone_in(tree: Path, root: Path, args, device) -> dict:
    """`networks_alone` in a fresh process with `tree`'s r2r (its JSON line)."""
    import os
    import subprocess
    import sys

    path = os.pathsep.join([str(tree), *([os.environ["PYTHONPATH"]] if os.environ.get("PYTHONPATH") else [])])
    done = subprocess.run([sys.executable, __file__, "--alone", str(root), "--batch-size", str(args.batch_size),
                           "--device", str(device), "--size", f"{W}x{H}"], env={**os.environ, "PYTHONPATH": path},
                          capture_output=True, text=True, check=False, cwd=root)
    if done.returncode != 0:
        raise SystemExit(f"networks alone with {tree} exited with {done.returncode}:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def bench_end_to_end(args, device) -> dict:
    import os

    here = Path(__file__).resolve().parents[1]
    out: dict = {"pairs": args.pairs, "real": args.real, "workers": args.workers, "rounds": args.rounds,
                 "old_tree": str(args.old) if args.old else None}
    sides = ("old", "old_alone_pairs", "old_alone_real", "new_cold", "new_warm", "alone_pairs", "alone_real")
    times: dict[str, list[float]] = {k: [] for k in sides}
    cpus: dict[str, list[float]] = {k: [] for k in sides}

    def record(name: str, wall_cpu: tuple[float, float]) -> None:
        times[name].append(wall_cpu[0])
        cpus[name].append(wall_cpu[1])

    def record_alone(prefix: str, alone: dict) -> None:
        for part in ("pairs", "real"):
            record(f"{prefix}alone_{part}", (alone[f"alone_{part}"], alone[f"alone_{part}_cpu"]))

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        write_inputs(root, args.pairs, args.real)
        for tree in (t for t in (args.old, here) if t is not None):
            _check_tree(tree, tree, root)
        for r in range(args.rounds):
            cache = root / f"cache-{r}"
            if args.old:
                record("old", _run_timed(*_evaluate_command(args.old, root, root / "old.json", args, device, []),
                                         root))
                record_alone("old_", _alone_in(args.old, root, args, device))
            new = _evaluate_command(here, root, root / "new.json", args, device, ["--stats-cache", str(cache)])
            record("new_cold", _run_timed(*new, root))  # an empty cache: the real features computed and stored
            record("new_warm", _run_timed(*new, root))  # the same command again: the real features from the cache
            record_alone("", _alone_in(here, root, args, device))
            print(f"round {r + 1}: " + ", ".join(f"{k} {v[-1]:.1f} s ({cpus[k][-1]:.1f} CPU s)"
                                                 for k, v in times.items() if v)
                  + f" (1-min load {os.getloadavg()[0]:.2f})", flush=True)
    best = {k: min(v) for k, v in times.items() if v}
    median = {k: statistics.median(v) for k, v in times.items() if v}
    out.update({f"{k}_cpu_seconds": round(min(v), 2) for k, v in cpus.items() if v})
    n = args.pairs
    alone_warm = best["alone_pairs"]
    alone_cold = best["alone_pairs"] + best["alone_real"]
    out.update({f"{k}_seconds": round(v, 2) for k, v in best.items()})
    out.update({f"{k}_seconds_median": round(v, 2) for k, v in median.items()})
    out.update({
        "new_warm_pairs_per_s": n / best["new_warm"], "new_cold_pairs_per_s": n / best["new_cold"],
        "networks_alone_warm_pairs_per_s": n / alone_warm, "networks_alone_cold_pairs_per_s": n / alone_cold,
        "warm_fraction_of_networks": alone_warm / best["new_warm"],
        "cold_fraction_of_networks": alone_cold / best["new_cold"],
    })
    if "old" in best:
        old_alone = best["old_alone_pairs"] + best["old_alone_real"]
        out.update({"old_pairs_per_s": n / best["old"], "old_networks_alone_pairs_per_s": n / old_alone,
                    "old_fraction_of_networks": old_alone / best["old"],
                    "new_warm_vs_old": best["old"] / best["new_warm"],
                    "new_cold_vs_old": best["old"] / best["new_cold"],
                    "networks_new_vs_old": old_alone / alone_cold})
    return out


def main() -> None:
    import os

    global W, H

    ap = argparse.ArgumentParser(description="r2r evaluate throughput: end to end against its networks alone and "
                                             "against an older checkout")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=5, help="per-metric timings: median of this many")
    ap.add_argument("--pairs", type=int, default=16, help="end to end: translated/source pairs")
    ap.add_argument("--real", type=int, default=16, help="end to end: real images")
    ap.add_argument("--workers", type=int, default=2, help="r2r evaluate --num-workers")
    ap.add_argument("--rounds", type=int, default=2, help="interleaved end-to-end rounds (best kept)")
    ap.add_argument("--old", type=Path, default=None, help="another checkout to run side by side (PYTHONPATH)")
    ap.add_argument("--metrics", action="store_true", help="also the per-metric comparisons with torchmetrics")
    ap.add_argument("--skip-end-to-end", action="store_true")
    ap.add_argument("--size", default=f"{W}x{H}", help="WxH of every image (the GPU check's --tiny: 64x64)")
    ap.add_argument("--alone", type=Path, default=None, help=argparse.SUPPRESS)  # one tree's networks alone
    args = ap.parse_args()
    W, H = (int(v) for v in args.size.lower().split("x"))
    if args.alone is not None:
        print(json.dumps(networks_alone(args.alone, args, torch.device(args.device))))
        return
    device = torch.device(args.device)
    result = {"bench": "evaluate", "device": str(device), "torch_threads": torch.get_num_threads(),
              "image_size": f"{W}x{H}", "batch_size": args.batch_size,
              "loadavg_before": round(os.getloadavg()[0], 2)}
    if args.metrics:
        result.update(bench_metrics(args, device))
    if not args.skip_end_to_end:
        result.update(bench_end_to_end(args, device))
    result["loadavg_after"] = round(os.getloadavg()[0], 2)
    for k, v in result.items():
        print(f"{k:34s} {v:.4g}" if isinstance(v, float) else f"{k:34s} {v}")
    print(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in result.items()}))


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
