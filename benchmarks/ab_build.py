"""A/B of two checkouts' builds on a noisy machine: each build in a fresh process, the two interleaved.

    git worktree add /tmp/base HEAD        # the code to compare against
    python benchmarks/ab_build.py /tmp/base . [--kind renders|full] [--rounds 6]

Fresh processes include what a user's `synfashion build` pays (cold heaps, forking); interleaving puts a slow phase
of a shared machine on both sides. Prints, per checkout, best and median wall and CPU seconds (parent + workers) of
one build of the benchmark release (made by bench_build.py, cached under .bench/), then one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

# run in the checkout under test (its `synfashion` is imported), against the shared release and scratch folder
_ONE_BUILD = r"""
import os, sys, tempfile, time
from pathlib import Path
sys.path.insert(0, os.getcwd())
import synfashion.build as b
root, scratch, kind, workers = Path(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4])
cfg = b.BuildConfig(formats=("parquet",), garments=False) if kind == "renders" else b.BuildConfig()
with tempfile.TemporaryDirectory(dir=scratch) as tmp:
    os.sync()
    t0, t = os.times(), time.perf_counter()
    b.build_dataset(root, Path(tmp) / "out", cfg, workers=workers, progress=False)
    wall, t1 = time.perf_counter() - t, os.times()
cpu = sum(t1[:4]) - sum(t0[:4])
print(wall, cpu)
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("a")
    ap.add_argument("b")
    ap.add_argument("--kind", choices=("renders", "full"), default="renders",
                    help="renders: Parquet renders config only (like for like); full: every format and config")
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--workers", type=int, default=len(os.sched_getaffinity(0)))
    ap.add_argument("--projects", type=int, default=5)
    ap.add_argument("--textures", type=int, default=5)
    ap.add_argument("--cache", default=".bench")
    args = ap.parse_args()

    from benchmarks.bench_build import _release

    cache = Path(args.cache).resolve()
    root = _release(cache, args.projects, args.textures)
    checkouts = [str(Path(d).resolve()) for d in (args.a, args.b)]
    runs: dict[str, list[tuple[float, float]]] = {d: [] for d in checkouts}
    for i in range(args.rounds):
        for d in checkouts if i % 2 == 0 else checkouts[::-1]:
            done = subprocess.run(
                [sys.executable, "-c", _ONE_BUILD, str(root), str(cache), args.kind, str(args.workers)],
                cwd=d, capture_output=True, text=True,
            )
            if done.returncode:
                sys.exit(f"build in {d} failed:\n{done.stderr[-3000:]}")
            wall, cpu = map(float, done.stdout.split()[-2:])
            runs[d].append((wall, cpu))
    figures = {"benchmark": "ab_build", "kind": args.kind, "rounds": args.rounds, "workers": args.workers}
    for label, d in zip("ab", checkouts):
        walls, cpus = sorted(w for w, _ in runs[d]), sorted(c for _, c in runs[d])
        mid = len(walls) // 2
        print(f"{label} {d}: wall best {walls[0]:.3f} s, median {walls[mid]:.3f} s | CPU best {cpus[0]:.2f} s, "
              f"median {cpus[mid]:.2f} s")
        figures[label] = {"checkout": d, "wall_best_s": round(walls[0], 3), "wall_median_s": round(walls[mid], 3),
                          "cpu_best_s": round(cpus[0], 2), "cpu_median_s": round(cpus[mid], 2)}
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
