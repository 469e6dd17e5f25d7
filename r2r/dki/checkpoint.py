"""Resumable checkpoints: `accelerator.save_state` into a temporary folder, renamed into place once complete.

Why: a run killed while saving (pre-emption, OOM, Ctrl-C) must leave the previous checkpoint usable. A checkpoint is
written to `checkpoints/.tmp-checkpoint-N`, `trainer_state.json` is written last, and only then is the folder renamed
to `checkpoints/checkpoint-N` (a rename is atomic on one filesystem). `latest()` only ever returns renamed folders
that hold `trainer_state.json`; stale temporary folders are removed by the next save.

Model weights are safetensors (`safe_serialization=True`; the trainer's hooks keep only the trainable tensors, not
the frozen base model). accelerate still writes the optimizer and RNG states with `torch.save`; they are read back
with `weights_only=True` (tensors and plain containers only, no code execution). This module loads no pickle
itself. Multi-process runs need `out` on a filesystem all processes share (the usual `accelerate launch` setup):
the main process writes the weights, optimizer and learning-rate schedule and the state file, and accelerate has
each rank add its own RNG state (`random_states_<rank>.pkl`; DKI draws its noise, timesteps and data order from
per-step generators, so the resume does not depend on them). A checkpoint resumes only with the number of processes
that wrote it (the fingerprint's `processes`).

Each checkpoint names its run (`run_id`) and lists its files with their sizes, so a resume takes only checkpoints
of the run it continues and `checkpoint_problem` can tell an intact checkpoint from one with an empty, truncated
or substituted file (`CheckpointManager.resume` then falls back to the previous one). A full disk is one
`NoSpaceError`; the space a checkpoint needs is checked before it is written.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import zipfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from synfashion.fs.atomic import usual_permissions
from synfashion.fs.space import disk_full_as_error, ensure_space
from synfashion.settings import differences, summary

from .errors import DKIError

CHECKPOINTS = "checkpoints"
STATE_FILE = "trainer_state.json"
PREFIX = "checkpoint-"
TMP_PREFIX = ".tmp-checkpoint-"
_NAME = re.compile(r"^checkpoint-(\d+)$")


@dataclass
class TrainerState:
    """What the loop needs besides model/optimizer tensors: where it is, what it has logged, what it was."""

    step: int = 0
    losses: list[float] = field(default_factory=list)  # mean loss of each optimizer step, over all processes
    samples: int = 0  # training samples seen, all processes
    seconds: float = 0.0  # training wall time so far (excluding caching and saving)
    fingerprint: dict = field(default_factory=dict)  # settings a resumed run must share
    extra: dict = field(default_factory=dict)  # method-specific scalars (e.g. the EMA's step)
    run_id: str = ""  # the run this checkpoint belongs to (r2r/dki/outdir.py); "" for checkpoints of older r2r
    files: dict = field(default_factory=dict)  # file name -> size in bytes, as saved (integrity check on resume)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1)

    @classmethod
    def from_file(cls, path: Path) -> "TrainerState":
        data = json.loads(path.read_text())
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})


def checkpoint_dir(out: str | Path) -> Path:
    return Path(out) / CHECKPOINTS


def list_checkpoints(out: str | Path) -> list[tuple[int, Path]]:
    """Complete checkpoints of a run folder, oldest first."""
    root = checkpoint_dir(out)
    found = []
    if root.is_dir():
        for p in root.iterdir():
            m = _NAME.match(p.name)
            if m and p.is_dir() and (p / STATE_FILE).is_file():
                found.append((int(m.group(1)), p))
    return sorted(found)


def latest_checkpoint(out: str | Path) -> Path | None:
    found = list_checkpoints(out)
    return found[-1][1] if found else None


def checkpoint_problem(path: str | Path) -> str | None:
    """Why the checkpoint folder cannot be resumed from (an empty, truncated, missing or substituted file), or None.

    Cheap: sizes against the saved list, safetensors headers, and torch.save files must be zip archives (a plain
    pickle is never loaded). What only a load can find (e.g. a zip whose pickle `weights_only` refuses) is
    caught when the trainer loads it.
    """
    from ..models import ModelFileError, check_safetensors

    path = Path(path)
    try:
        state = TrainerState.from_file(path / STATE_FILE)
    except (OSError, ValueError, TypeError) as e:
        return f"{STATE_FILE} is unreadable ({type(e).__name__})"
    files = state.files or {p.name: None for p in path.iterdir() if p.is_file() and p.name != STATE_FILE}
    if "model.safetensors" not in files:
        return "it holds no model.safetensors"
    for name, size in sorted(files.items()):
        f = path / name
        if not f.is_file():
            return f"{name} is missing"
        actual = f.stat().st_size
        if actual == 0:
            return f"{name} is empty (0 bytes)"
        if name.endswith(".safetensors"):
            try:
                check_safetensors(f, "checkpoint")
            except ModelFileError as e:
                return f"{name}: {str(e).removeprefix(f'{f}: ')}"
        elif name.endswith((".bin", ".pkl", ".pt")) and not zipfile.is_zipfile(f):
            return f"{name} is not a torch.save archive (a plain pickle, or damaged), so it is not loaded"
        if size is not None and actual != size:
            return f"{name} has {actual:,} bytes, {size:,} were saved"
    return None


def run_of(path: Path) -> str | None:
    """The run id recorded in a checkpoint folder (None if its state is unreadable)."""
    try:
        return TrainerState.from_file(path / STATE_FILE).run_id
    except (OSError, ValueError, TypeError):
        return None


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _write_text(path: Path, text: str) -> None:
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())


class CheckpointManager:
    """Saves and loads checkpoints of one run folder through one `Accelerator`."""

    def __init__(self, out: str | Path, accelerator, keep: int = 2):
        self.root = checkpoint_dir(out)
        self.accelerator = accelerator
        self.keep = keep

    def save(self, state: TrainerState, tensors: dict[str, dict[str, torch.Tensor]] | None = None,
             needed: int | None = None) -> Path:
        """Write checkpoint-<step> atomically. `tensors`: extra safetensors files (name -> state dict), main only.

        `needed`: the bytes it will take (checked up front, so a full disk fails before the save, not within it).
        """
        acc = self.accelerator
        final = self.root / f"{PREFIX}{state.step:08d}"
        tmp = self.root / f"{TMP_PREFIX}{state.step:08d}"
        what = f"checkpoint {final.name}"
        with disk_full_as_error(self.root.parent, needed, what=what):
            if acc.is_main_process:
                self.root.mkdir(parents=True, exist_ok=True)
                for stale in self.root.glob(f"{TMP_PREFIX}*"):  # left by a run killed mid-save
                    shutil.rmtree(stale, ignore_errors=True)
                if needed:
                    ensure_space(self.root.parent, needed, what=what)
            acc.wait_for_everyone()
            acc.save_state(str(tmp), safe_serialization=True)
            acc.wait_for_everyone()  # every rank's files are in before the list is taken
            if acc.is_main_process:
                for name, sd in (tensors or {}).items():
                    save_file({k: v.detach().contiguous().cpu() for k, v in sd.items()},
                              str(tmp / f"{name}.safetensors"))
                usual_permissions(tmp)  # safetensors writes 0600 files
                state.files = {p.name: p.stat().st_size for p in sorted(tmp.iterdir()) if p.is_file()}
                _write_text(tmp / STATE_FILE, state.to_json())  # last: its presence marks the folder complete
                _fsync_dir(tmp)
        acc.wait_for_everyone()
        if acc.is_main_process:
            if final.exists():  # the same step saved before (e.g. a run resumed from an older checkpoint)
                trash = self.root / f"{TMP_PREFIX}old-{state.step:08d}"
                os.replace(final, trash)
                os.replace(tmp, final)
                shutil.rmtree(trash, ignore_errors=True)
            else:
                os.replace(tmp, final)
            _fsync_dir(self.root)
            self._prune(state.run_id)
        acc.wait_for_everyone()
        return final

    def _prune(self, run_id: str) -> None:
        """Keep the newest `keep` checkpoints of this run (other runs' checkpoints are not this run's to remove)."""
        mine = [path for _, path in list_checkpoints(self.root.parent) if run_of(path) == run_id]
        for path in mine[: -self.keep]:
            shutil.rmtree(path, ignore_errors=True)

    def install_state_hooks(self) -> None:
        """Have accelerate save and load only the trainable tensors (`make_state_hooks`); call once, after prepare."""
        save_hook, load_hook = make_state_hooks()
        self.accelerator.register_save_state_pre_hook(save_hook)
        self.accelerator.register_load_state_pre_hook(load_hook)

    def resume(self, candidates: list[Path], run_id: str,
               tensor_files: tuple[str, ...] = ()) -> tuple[Path, TrainerState, dict[str, dict]] | None:
        """Load the newest of `candidates` (newest first) that loads; say which, and why others were passed over.

        Returns (checkpoint, its state under `run_id`, extra tensor files), or None when there are no candidates."""
        from r2r.progress import stderr_console

        failed = []
        for path in candidates:
            try:
                state, extras = self.load(path, tensor_files)
            except Exception as e:  # noqa: BLE001 - e.g. a pickle weights_only refuses: fall back to the previous
                failed.append(f"{path.name}: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}")
                continue
            state.run_id = run_id
            if self.accelerator.is_main_process:
                for note in failed:
                    stderr_console().print(f"[yellow]resume[/]: skipped {note}", highlight=False)
                stderr_console().print(f"[cyan]resume[/]: run {run_id} from {path} (step {state.step})",
                                       highlight=False)
            return path, state, extras
        if failed:
            raise DKIError(f"no checkpoint of run {run_id} in {self.root.parent} could be loaded "
                           f"({'; '.join(failed)}); start a new run with --overwrite")
        return None

    def load(self, path: Path, tensor_files: tuple[str, ...] = ()) -> tuple[TrainerState, dict[str, dict]]:
        """Restore model (trainable tensors, via the trainer's hook), optimizer, scaler and RNG states."""
        if not (path / STATE_FILE).is_file():
            raise DKIError(f"{path}: incomplete checkpoint (no {STATE_FILE})")
        state = TrainerState.from_file(path / STATE_FILE)
        self.accelerator.load_state(str(path), load_kwargs={"weights_only": True})
        extras = {}
        for name in tensor_files:
            f = path / f"{name}.safetensors"
            if f.is_file():
                extras[name] = load_file(str(f))
        return state, extras


def check_fingerprint(saved: dict, current: dict, path: Path) -> None:
    """Refuse to resume a checkpoint taken with different settings (model, data, method, batch, seed, processes)."""
    diff = differences(saved, current)
    if any(d.startswith("processes:") for d in diff) and saved.get("processes") is not None:
        n, now = saved["processes"], current.get("processes")
        raise DKIError(f"{path} was taken by a run of {n} process(es) and this run has {now}: resume with {n} "
                       f"(torchrun --nproc_per_node {n} / accelerate launch --num_processes {n}), since which images "
                       "each process trains on, and in what order, depends on the number of processes; or start a "
                       "new output folder")
    if diff:
        raise DKIError(f"{path} was taken with other settings (as taken -> now: {summary(diff)}); resume with "
                       "the same settings, or start a new output folder")


def canonical(name: str) -> str:
    """A parameter name without the DDP (`module.`) and torch.compile (`_orig_mod.`) wrapper prefixes."""
    parts = [p for p in name.split(".") if p != "_orig_mod"]
    if parts and parts[0] == "module":
        parts = parts[1:]
    return ".".join(parts)


def trainable_parameters(model: torch.nn.Module) -> dict[str, torch.nn.Parameter]:
    """Canonical name -> trainable parameter."""
    return {canonical(n): p for n, p in model.named_parameters() if p.requires_grad}


def make_state_hooks():
    """accelerate save/load pre-hooks that keep only trainable tensors in `model.safetensors`.

    Why: accelerate would otherwise write (and read) the whole frozen UNet/text encoder at every checkpoint (GBs)
    while textual inversion trains a few thousand numbers. Names are canonical (no DDP / compile prefixes), and
    loading checks that the file holds exactly the trainable tensors, so a checkpoint of another method or model
    fails with a clear error.
    """

    def save_hook(models, weights, output_dir):
        for i, model in enumerate(models):
            names = {n for n, p in model.named_parameters() if p.requires_grad}
            weights[i] = {canonical(k): v for k, v in weights[i].items() if k in names}

    def load_hook(models, input_dir):
        for i, model in enumerate(models):
            f = Path(input_dir) / ("model.safetensors" if i == 0 else f"model_{i}.safetensors")
            if not f.is_file():
                raise DKIError(f"{input_dir}: no {f.name} (trainable weights) in the checkpoint")
            sd = load_file(str(f))
            params = trainable_parameters(model)
            missing, unexpected = sorted(set(params) - set(sd)), sorted(set(sd) - set(params))
            if missing or unexpected:
                raise DKIError(f"{f}: does not match this run's trainable weights (missing {missing[:3]}, "
                               f"unexpected {unexpected[:3]}); it belongs to another method or model")
            with torch.no_grad():
                for k, v in sd.items():
                    params[k].copy_(v.to(params[k].device, params[k].dtype))
        models.clear()  # loaded here; accelerate must not load them again

    return save_hook, load_hook
