"""What the translate-dataset test files share: the command line they run and a tree's hashes (the fixtures, a tiny
model, a small built source with a sidecar column and one translation of it, are session fixtures in conftest.py)."""

from __future__ import annotations

import hashlib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FAST = ["--steps", "10", "--strength", "0.3", "--no-progress", "--num-workers", "0"]


def _tree(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def _args(model, source, out, *extra):
    return ["translate-dataset", str(source), str(out), "--model", str(model), "--split", "test", "--limit", "4",
            "--batch-size", "2", *FAST, *extra]
