"""r2r: FashionR2R rendered-to-real translation (RIG) on diffusers, exact to the published arithmetic and batched.

Exports are resolved lazily so that `import r2r` (and `r2r --help`) does not import torch / diffusers. Importing it
installs the targeted filters of r2r/quiet.py (known-harmless library warnings, by logger and message).
"""

from __future__ import annotations

import importlib

from .quiet import silence_harmless_warnings

__version__ = "0.1.0"
silence_harmless_warnings()

_EXPORTS = {
    "R2RPipeline": "r2r.rig.pipeline", "R2RPipelineOutput": "r2r.rig.pipeline", "RIGParams": "r2r.config",
    "ModelSpec": "r2r.config", "load_pipeline": "r2r.models", "model_identity": "r2r.models",
    "load_negative_embedding": "r2r.models", "NonFiniteOutputError": "r2r.rig.pipeline",
    "ModelFileError": "r2r.models",
    "TACConfig": "r2r.rig.tac", "TACController": "r2r.rig.tac", "TACAttnProcessor": "r2r.rig.tac", "ForegroundMask": "r2r.rig.tac",
    "RIGSchedule": "r2r.rig.schedule", "ddim_invert": "r2r.rig.inversion",
    "TinyModelConfig": "r2r.tiny", "save_tiny_model": "r2r.tiny",
    "TranslateJob": "r2r.translate", "translate_folder": "r2r.translate",
    "EvalJob": "r2r.evaluation.run",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'r2r' has no attribute {name!r}")
