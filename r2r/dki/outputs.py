"""The files a finished DKI run leaves in its output folder besides checkpoints: the trained artifacts, the loss
curve, the run record (training_run.json) and the model card (README.md).

Why apart from the trainer: each file is written atomically and recorded as this run's output (r2r/dki/outdir.py)
while it is written, so --overwrite can remove it later and a crash leaves it attributable; a full disk is one
`NoSpaceError` naming the folder (the checkpoints are intact: `--resume` writes these again). The trainer decides
what goes in them; this module only writes, on the main process. It trains nothing and reads no checkpoint.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator
from pathlib import Path

from .outdir import FolderClaim
from .plot import loss_curve

LOSS_CURVE = "loss_curve.png"
RUN_FILE = "training_run.json"
CARD_FILE = "README.md"
RECORDS = [LOSS_CURVE, RUN_FILE, CARD_FILE]  # what every run writes besides its method's artifacts


class RunOutputs:
    """Writes one run's outputs into the folder it has claimed (main process)."""

    def __init__(self, claim: FolderClaim):
        self.claim = claim
        self.out = claim.out

    def artifacts(self, names: list[str], needed: int, export: Callable[[], list[Path]]) -> list[Path]:
        """Run `export` (it writes `names`, about `needed` bytes, checked against the free space first)."""
        from synfashion.fs.space import disk_full_as_error, ensure_space

        what = "the trained artifacts"
        with disk_full_as_error(self.out, needed, what=what):
            ensure_space(self.out, needed, what=what)
            with self.claim.writing(names):
                return export()

    @contextlib.contextmanager
    def records(self) -> Iterator[None]:
        """The block that writes the loss curve, run record and card, recorded together."""
        from synfashion.fs.space import disk_full_as_error

        with disk_full_as_error(self.out, what="the loss curve, run record and model card"):
            with self.claim.writing(RECORDS):
                yield

    def loss_curve(self, losses: list[float], title: str) -> Path:
        from synfashion.fs.atomic import atomic_path

        path = self.out / LOSS_CURVE
        with atomic_path(path, durable=False) as tmp:
            loss_curve(losses, tmp, title=title)
        return path

    def run_record(self, record: dict) -> Path:
        from synfashion.fs.atomic import write_json_atomic

        path = self.out / RUN_FILE
        write_json_atomic(path, json.loads(json.dumps(record, default=str)))
        return path

    def card(self, info) -> Path:
        """The model card (`cards.model_card.DKICardInfo`) written atomically as OUT/README.md."""
        from cards.model_card import render_dki_card
        from synfashion.fs.atomic import write_bytes_atomic

        path = self.out / CARD_FILE
        write_bytes_atomic(path, render_dki_card(info).encode("utf-8"))
        return path
