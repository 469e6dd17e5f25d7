"""The output folder of `r2r downstream`: one comparison per folder; a rerun continues it; other settings are refused.

The project's rules for training folders (r2r/dki/outdir.py), reused rather than written again: a run record with an
id and the settings' fingerprint (`OUT/.r2r-dki/run.json`), a ledger of every output written (size and sha256, or
"pending" while it is being written), `--overwrite` removing only what the ledger proves a run wrote (a file the
user changed or put there stays), and a file in the way of an output that is not ours refused by name before any
training; a folder that is another command's (a DKI run included) or a user's is refused whatever the flags, and the
folder is apart from every input (`synfashion.fs.ownership`). What differs from DKI training: the same command again *continues* the run (no `--resume`: a comparison is
defined by its settings, so the same settings mean the same run), and other settings are refused naming the
differences. The folder is locked for the run (`synfashion.fs.locks.folder_lock`); the ranks of one multi-process run
share it, each in its own slot. This module decides and records; it deletes only through `TrainingFolder`.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import uuid
from collections.abc import Iterator
from pathlib import Path

from synfashion.settings import differences, summary

from ..dki.errors import DKIError
from ..dki.outdir import LOCKS, STATE_DIR, Decision, TrainingFolder

from .config import DownstreamError

METHOD = "downstream"
RESULTS_JSON = "results.json"
RESULTS_MD = "results.md"
BAR_CHART = "accuracy.png"
CONFUSION = "confusion"
MODELS = "models"
CHECKPOINTS = "checkpoints"
CHECKPOINT_FILE = "checkpoint.safetensors"
PLANNED = [RESULTS_JSON, RESULTS_MD, BAR_CHART, f"{CONFUSION}/", f"{MODELS}/", f"{CHECKPOINTS}/"]


def fingerprint_hash(fingerprint: dict) -> str:
    return hashlib.sha256(json.dumps(fingerprint, sort_keys=True).encode()).hexdigest()


@contextlib.contextmanager
def run_lock(out: Path, rank: int, world: int) -> Iterator[None]:
    """This process's hold on the folder: exclusive for one process, a per-rank slot in a multi-process run."""
    from synfashion.fs.locks import folder_lock

    what = "downstream training run"
    if world == 1:
        with folder_lock(out, what):
            yield
    else:
        with folder_lock(out, what, slot=out / STATE_DIR / LOCKS / f"rank-{rank}.lock"):
            yield


class DownstreamFolder:
    """One comparison's view of its output folder."""

    def __init__(self, out: str | Path, inputs: dict | None = None):
        self.out = Path(out)
        self.folder = TrainingFolder(self.out, METHOD, PLANNED, inputs)
        self.fresh = True
        self.removed: list[str] = []

    def check_owner(self) -> None:
        """Read-only and cheap (run it before any work): refuse a folder that is not new, empty or a downstream
        comparison's, whatever the flags, or one that is, holds or sits in an input (`synfashion.fs.ownership`)."""
        try:
            self.folder.check_owner()
        except DKIError as e:
            raise DownstreamError(str(e)) from None

    def claim(self, fingerprint: dict, *, overwrite: bool) -> None:
        """Main process, holding the lock: continue the run recorded here (same settings), start one (an empty
        folder, or `overwrite`), or refuse. Raises DownstreamError / DKIError (both ValueErrors) naming the problem."""
        if self.out.exists() and not self.out.is_dir():
            raise DownstreamError(f"--out {self.out} is a file, not a folder")
        try:
            record = self.folder.read_record()
        except DKIError as e:
            if not overwrite:
                raise DownstreamError(str(e)) from None
            record = None
        if record is not None and not overwrite:
            if record.get("method") != METHOD:
                raise DownstreamError(
                    f"{self.out} holds a {record.get('method')!r} training run, not a downstream comparison: choose "
                    "another --out, or pass --overwrite (removes only what a training run wrote there)")
            diff = differences(record.get("fingerprint") or {}, fingerprint)
            if diff:
                raise DownstreamError(
                    f"{self.out} holds a downstream comparison with other settings (as recorded -> now: "
                    f"{summary(diff, 4)}): run it "
                    "again with the same settings to continue it, pass --overwrite to start over (removes only what "
                    "a run wrote there), or choose another --out")
            decision = Decision(run_id=record["run_id"], fresh=False)
        else:
            decision = Decision(run_id=uuid.uuid4().hex, fresh=True)
        self.fresh = decision.fresh
        self.removed = self.folder.apply(decision, overwrite=overwrite, fingerprint=fingerprint)

    def undo_claim(self) -> None:
        """A fresh run that failed before writing anything leaves the folder as it found it."""
        if self.fresh:
            self.folder.undo_claim()

    @contextlib.contextmanager
    def writing(self, names: list[str]) -> Iterator[None]:
        """Record `names` as this run's outputs (pending while the block writes them; size and sha256 after)."""
        with self.folder.writing(names):
            yield

    def checkpoint_path(self, variant: str) -> Path:
        return self.out / CHECKPOINTS / variant / CHECKPOINT_FILE

    def model_dir(self, variant: str) -> Path:
        return self.out / MODELS / variant

    def confusion_path(self, variant: str) -> Path:
        return self.out / CONFUSION / f"{variant}.png"
