"""Split rule trade-off: how often adding one project moves another, and how closely a category meets its fractions.

    python benchmarks/split_stability.py [--trials 1500] [--seed 5]

A release of 19 background categories of 30 single-project groups (so no split is ever empty overall) plus one
category of n groups (n drawn from a range; project names random, so hash positions are uniform): assign splits,
add one project to that category, assign again, and count:
  moved     share of additions after which at least one existing project changed split (the stability cost)
  most      the most projects one addition moved
  deviation mean over trials of the worst |groups in validation or test - n * fraction| of that category
  missing   share of trials in which some split holds none of that category
for the default rule (stratified by category) and for stratify=False (hash placement only: never moves, but a
split may miss a category). The figures quoted in synfashion/splits.py come from this script. Ends with one JSON
line of the figures.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from synfashion.splits import SplitConfig, assign_splits  # noqa: E402

RANGES = ((3, 12), (12, 40), (40, 100))


def measure(config: SplitConfig, lo: int, hi: int, trials: int, rng: random.Random) -> dict:
    moved = most = empty = 0
    deviation = 0.0
    for _ in range(trials):
        n = rng.randint(lo, hi)
        background = {f"b{c:02d}/p{rng.getrandbits(48):x}": set() for c in range(19) for _ in range(30)}
        names = [f"c/p{rng.getrandbits(48):x}" for _ in range(n + 1)]
        graph = {p: {p + "-t"} for p in [*background, *names[:n]]}
        before = assign_splits(graph, config)
        after = assign_splits({**graph, names[n]: {names[n] + "-t"}}, config)
        changed = sum(before.split_of(p) != after.split_of(p) for p in graph)
        moved += changed > 0
        most = max(most, changed)
        count = Counter(before.split_of(p) for p in names[:n])
        deviation += max(abs(count[s] - n * config.fractions[s]) for s in ("validation", "test"))
        empty += any(count[s] == 0 for s in ("train", "validation", "test"))
    return {"groups": f"{lo}-{hi}", "moved": round(moved / trials, 3), "most": most,
            "deviation": round(deviation / trials, 2), "split_missing": round(empty / trials, 3)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=600)
    ap.add_argument("--seed", type=int, default=5)
    args = ap.parse_args()
    figures = {}
    for name, config in (("stratified", SplitConfig()), ("hash-only", SplitConfig(stratify=False))):
        rng = random.Random(args.seed)
        figures[name] = [measure(config, lo, hi, args.trials, rng) for lo, hi in RANGES]
        for f in figures[name]:
            print(f"{name:10s} {f['groups']:>7s} groups: an addition moves a project {f['moved']:.1%} of the time "
                  f"(at most {f['most']}), worst |count - n*f| {f['deviation']:.2f}, a split missing the category "
                  f"{f['split_missing']:.1%}")
    print(json.dumps({"bench": "split_stability", "trials": args.trials, "seed": args.seed, **figures}))


if __name__ == "__main__":
    main()
