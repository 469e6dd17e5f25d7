"""What a DKI run reports while it trains: accelerate's trackers (`--report-to`), the progress bar, and the
per-step loss record kept in the run's `TrainerState`.

Why apart from the loop: the trainer says what happened (a step's loss and learning rate, the fixed-batch losses);
this module decides where that goes and how often processes sync for it. TensorBoard's OUT/logs/ is recorded as
this run's output while it is written (r2r/dki/outdir.py), so --overwrite can remove it and a resume appends to it.
Trackers are finished with `tracker.finish()`, not `end_training()`, which would also tear down the process group
the run still needs. Only the main process writes (accelerate's `log` and the bar are no-ops elsewhere).
This module trains nothing and writes no checkpoint.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator

import torch

from ..progress import Advance, training_progress
from .checkpoint import TrainerState
from .launch import LOG_DIR, flat_config
from .outdir import FolderClaim


class Tracking:
    """One run's reporting: trackers from `session()` to its end, the progress bars, and the logged scalars."""

    def __init__(self, accelerator, *, report_to: str, project: str, config: dict, progress: bool = True):
        self.accelerator = accelerator
        self.report_to = report_to
        self.project = project
        self.config = config
        self.show = progress and accelerator.is_main_process

    @staticmethod
    def planned(report_to: str) -> list[str]:
        """What the trackers write in the output folder ('/' at the end: a folder), for the folder's plan."""
        return [f"{LOG_DIR}/"] if report_to == "tensorboard" else []

    @contextlib.contextmanager
    def session(self, claim: FolderClaim) -> Iterator[None]:
        """accelerate's trackers for the training loop; TensorBoard's files recorded as `claim`'s run's outputs."""
        acc, logs = self.accelerator, self.planned(self.report_to)
        if self.report_to == "none":
            yield
            return
        ledger = claim.writing(logs) if acc.is_main_process and logs else contextlib.nullcontext()
        with ledger:
            acc.init_trackers(self.project, config=flat_config(self.config))
            try:
                yield
            finally:
                for tracker in acc.trackers:
                    tracker.finish()

    def progress(self, what: str, total: int, completed: int = 0, loss: bool = False):
        """A progress bar (main process, unless --no-progress); yields `advance`."""
        return training_progress(what, total, completed, loss=loss, show=self.show)

    def log_eval(self, before: float, after: float, step: int) -> None:
        self.accelerator.log({"eval/fixed_batch_loss_before": before, "eval/fixed_batch_loss_after": after},
                             step=step)


class LossLog:
    """Step losses held on the device until a flush, so processes sync once per --log-every steps, not per step.

    A flush averages them over the processes, appends them to `state.losses`, logs them with the learning rate each
    step used, and adds the training time since the last flush to `state.seconds` (the clock restarts after a
    checkpoint, whose saving is not training time)."""

    def __init__(self, accelerator, state: TrainerState, tracking: Tracking):
        self.accelerator, self.state, self.tracking = accelerator, state, tracking
        self.losses: list[torch.Tensor] = []
        self.lrs: list[float] = []
        self.restart_clock()

    def __len__(self) -> int:
        return len(self.losses)

    def add(self, loss: torch.Tensor, lr: float) -> None:
        self.losses.append(loss)
        self.lrs.append(lr)

    def flush(self) -> list[float]:
        """The held steps' losses, averaged over the processes (one sync), recorded and logged."""
        acc = self.accelerator
        losses = acc.reduce(torch.stack(self.losses), reduction="mean").tolist()
        first = len(self.state.losses) + 1
        self.state.losses.extend(float(x) for x in losses)
        for i, (loss, lr) in enumerate(zip(losses, self.lrs)):
            acc.log({"train/loss": float(loss), "train/lr": lr}, step=first + i)  # main process only
        self.losses.clear()
        self.lrs.clear()
        now = time.perf_counter()
        self.state.seconds += now - self._t0
        self._t0 = now
        return losses

    def restart_clock(self) -> None:
        self._t0 = time.perf_counter()

    def show(self, advance: Advance) -> None:
        """Move the progress bar one step on, showing the last loss and samples/s."""
        s = self.state
        advance(1, loss=s.losses[-1] if s.losses else None, sps=s.samples / s.seconds if s.seconds else None)
