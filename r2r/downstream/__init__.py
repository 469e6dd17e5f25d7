"""r2r.downstream: the use of translated renders, measured. Train the same garment classifier on each variant
(rendered, translated, ...) and test it on real photos, the way sim-to-real papers report it.

- `DownstreamConfig(train=(TrainSource("rendered", "./synfashion-hf"), ...), out=..., test_real=..., arch=...)`,
  `run_downstream(config)` -> the results document (also OUT/results.json).
- CLI: `r2r downstream --train NAME=SOURCE ... --test-real FOLDER --out OUT` (r2r/commands/downstream.py).

Exports resolve lazily so that `r2r --help` does not import torch.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "DownstreamConfig": "r2r.downstream.config", "TrainSource": "r2r.downstream.config",
    "DownstreamError": "r2r.downstream.config", "run_downstream": "r2r.downstream.runner",
    "DownstreamRun": "r2r.downstream.runner", "ARCHS": "r2r.downstream.models", "scores": "r2r.downstream.metrics",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'r2r.downstream' has no attribute {name!r}")
