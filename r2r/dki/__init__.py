"""r2r.dki: Domain Knowledge Injection training (FashionR2R stage 1) on accelerate.

- `NegativeTrainer`: textual inversion of a negative-domain token (e.g. `<rendered>`) on rendered images ->
  `learned_embeds.safetensors` for `pipe.load_textual_inversion`.
- `PositiveTrainer`: UNet finetuning on real photos, LoRA (`load_lora_weights`) or full (a pipeline folder).
- Configs: `RunConfig(model, out, DataConfig(source), TrainConfig(...), NegativeConfig() | PositiveConfig())`.
- CLI: r2r/commands/dki.py (`train-negative`, `train-positive`) and r2r/commands/push_model.py (`push-model`:
  `push_model` in r2r/dki/publish.py, a finished run as a Hub model repo).

Exports resolve lazily so that `import r2r.dki` (and `r2r --help`) does not import torch.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "DKIError": "r2r.dki.errors",
    "DataConfig": "r2r.dki.config", "TrainConfig": "r2r.dki.config", "NegativeConfig": "r2r.dki.config",
    "PositiveConfig": "r2r.dki.config", "RunConfig": "r2r.dki.config", "STYLE_TEMPLATES": "r2r.dki.config",
    "DKITrainer": "r2r.dki.trainer", "Components": "r2r.dki.trainer", "load_components": "r2r.dki.trainer",
    "TrainResult": "r2r.dki.trainer",
    "NegativeTrainer": "r2r.dki.negative", "read_embedding": "r2r.dki.negative", "EMBEDDING_FILE": "r2r.dki.negative",
    "PositiveTrainer": "r2r.dki.positive", "LORA_FILE": "r2r.dki.positive",
    "latest_checkpoint": "r2r.dki.checkpoint", "list_checkpoints": "r2r.dki.checkpoint",
    "loss_curve": "r2r.dki.plot", "push_model": "r2r.dki.publish",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'r2r.dki' has no attribute {name!r}")
