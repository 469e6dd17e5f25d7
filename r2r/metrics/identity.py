"""What makes two feature sets comparable: the network, its exact weights and the preprocessing protocol.

`FeatureIdentity` is what every feature extractor reports and what the statistics cache (stats_cache.py) keys on:
features computed by another network, other weights or another resize are other numbers, and must never be mixed.
Weight digests: the sha256 of the weight file (the bytes read, so a re-download that changed is noticed); for a
state dict held in memory (random test weights) `tensors:<sha256>` over its names, dtypes, shapes and bytes.
This module only hashes; it loads nothing.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from synfashion.fs.filehash import file_sha256  # the project's one file hash (streamed: weights are hundreds of MB)


@dataclass(frozen=True)
class FeatureIdentity:
    """network: a stable name ("fid-inception-v3", "dinov2-vitb14", ...); weights_sha256: see the module docstring;
    protocol: the preprocessing and feature definition as one string (a changed string is a changed protocol)."""

    network: str
    weights_sha256: str
    protocol: str
    dim: int

    def as_dict(self) -> dict:
        return asdict(self)


def files_sha256(paths: Iterable[str | Path]) -> str:
    """One file: its sha256. Several (a sharded checkpoint): sha256 over 'name digest' lines, sorted by name."""
    paths = sorted(Path(p) for p in paths)
    if len(paths) == 1:
        return file_sha256(paths[0])
    lines = "".join(f"{p.name} {file_sha256(p)}\n" for p in paths)
    return hashlib.sha256(lines.encode()).hexdigest()


def tensors_sha256(state: dict[str, torch.Tensor]) -> str:
    """`tensors:<sha256>` over names, dtypes, shapes and bytes: the digest of in-memory weights."""
    h = hashlib.sha256()
    for k in sorted(state):
        t = state[k].detach().cpu().contiguous()
        h.update(k.encode() + str(t.dtype).encode() + str(tuple(t.shape)).encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return "tensors:" + h.hexdigest()


__all__ = ["FeatureIdentity", "file_sha256", "files_sha256", "tensors_sha256"]
