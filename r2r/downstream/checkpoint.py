"""One variant's resumable checkpoint: a single safetensors file written atomically at the end of every epoch.

Why one file: model weights (buffers too: BatchNorm statistics), the optimizer's tensors and the loop's state (epoch,
step, history, and once the variant is done, its scores) are saved together, so a checkpoint is either the previous
epoch's or the new one, never a mix; `synfashion.fs.atomic` writes it to a temporary name and renames it. Everything is
safetensors: tensors as tensors, the rest as JSON in the file's metadata; nothing is pickled, so nothing is unpickled
when a run continues. Randomness needs no saved state: the data order, the augmentation and torch's generator are
re-seeded from (seed, epoch) at the start of every epoch. This module reads and writes that file only.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from synfashion.fs.atomic import atomic_path

from .config import DownstreamError

FORMAT = "r2r-downstream-checkpoint/1"
_META_KEY = "r2r_downstream"
_MODEL = "model."
_OPTIM = "optimizer."


@dataclass
class LoopState:
    """Where a variant's training stands (saved in the checkpoint's metadata)."""

    variant: str
    fingerprint: str  # the run's settings hash: a checkpoint from other settings is never continued
    epoch: int = 0  # epochs completed
    step: int = 0  # optimizer steps completed
    history: list[dict] = field(default_factory=list)  # one entry per epoch: loss, train accuracy, seconds, samples
    scores: dict | None = None  # test set -> scores, once the variant is finished

    def to_dict(self) -> dict:
        return {"variant": self.variant, "fingerprint": self.fingerprint, "epoch": self.epoch, "step": self.step,
                "history": self.history, "scores": self.scores}


def save_checkpoint(path: Path, state: LoopState, model: dict[str, torch.Tensor], optimizer: dict,
                    scaler: dict | None = None) -> None:
    """Write model + optimizer + loop state to `path` atomically (temp file, fsync, rename)."""
    tensors = {_MODEL + k: _plain(v) for k, v in model.items()}
    scalars: dict[str, dict] = {}
    for pid, entry in optimizer.get("state", {}).items():
        for name, value in entry.items():
            if isinstance(value, torch.Tensor):
                tensors[f"{_OPTIM}{pid}.{name}"] = _plain(value)
            else:
                scalars.setdefault(str(pid), {})[name] = value
    meta = {"format": FORMAT, "state": state.to_dict(), "param_groups": optimizer.get("param_groups", []),
            "optimizer_scalars": scalars, "scaler": scaler}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata={"format": "pt", _META_KEY: json.dumps(meta)})


def _plain(t: torch.Tensor) -> torch.Tensor:
    # a copy on the CPU: safetensors refuses tensors that share storage, and must not hold on to device memory
    return t.detach().to("cpu", copy=True).contiguous()


@dataclass
class Checkpoint:
    state: LoopState
    model: dict[str, torch.Tensor]
    optimizer: dict
    scaler: dict | None


def read_state(path: Path) -> LoopState:
    """Only the loop state (cheap: the header), e.g. to see whether a variant is finished."""
    return _open(path, tensors=False).state


def load_checkpoint(path: Path) -> Checkpoint:
    return _open(path, tensors=True)


def _open(path: Path, *, tensors: bool) -> Checkpoint:
    from ..models import ModelFileError, check_safetensors

    hint = "delete it to train this variant again from the start, or pass --overwrite"
    try:
        check_safetensors(path, "checkpoint")
        with safe_open(str(path), framework="pt") as f:
            meta = json.loads((f.metadata() or {}).get(_META_KEY, "null"))
            if not isinstance(meta, dict) or meta.get("format") != FORMAT:
                raise DownstreamError(f"{path}: not an r2r downstream checkpoint ({hint})")
            state = LoopState(**meta["state"])
            model, optim_state = {}, {}
            if tensors:
                for key in f.keys():
                    if key.startswith(_MODEL):
                        model[key[len(_MODEL):]] = f.get_tensor(key)
                    elif key.startswith(_OPTIM):
                        pid, name = key[len(_OPTIM):].split(".", 1)
                        optim_state.setdefault(int(pid), {})[name] = f.get_tensor(key)
    except (ModelFileError, SafetensorError, OSError, ValueError, TypeError, KeyError) as e:
        if isinstance(e, DownstreamError):
            raise
        raise DownstreamError(f"{path}: damaged checkpoint ({type(e).__name__}: {str(e).splitlines()[0]}); "
                              f"{hint}") from None
    for pid, values in meta.get("optimizer_scalars", {}).items():
        optim_state.setdefault(int(pid), {}).update(values)
    optimizer = {"state": optim_state, "param_groups": meta.get("param_groups", [])}
    return Checkpoint(state, model, optimizer, meta.get("scaler"))
