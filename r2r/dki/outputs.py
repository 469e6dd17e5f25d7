"""The files a finished DKI run leaves in its output folder besides checkpoints: the trained artifacts, the loss
curve, the run record (training_run.json) and the model card (README.md). Both the record and the card are
published as they are (`r2r push-model`), so a local path appears in them only relative to the run folder or as a
name (`public_path`).

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

# the run settings that name local files or folders (RunConfig, DataConfig, a method's config) and the record's own
PATH_FIELDS = frozenset({"model", "out", "resume", "source", "captions", "init_embedding", "resumed_from"})
LOSS_CURVE = "loss_curve.png"
RUN_FILE = "training_run.json"
CARD_FILE = "README.md"
RECORDS = [LOSS_CURVE, RUN_FILE, CARD_FILE]  # what every run writes besides its method's artifacts


def public_path(value: object, run_folder: str | Path | None = None) -> object:
    """How a local path appears in what a run publishes (training_run.json, the card, and so the Hub): relative to
    the run folder when it lies in it ("." for the folder itself), else only its name; never the user's layout.
    A value that is not a local path (a Hub id, a setting) is returned as it is."""
    if not isinstance(value, str) or not value:
        return value
    path = Path(value).expanduser()
    local = path.is_absolute() or value.startswith(("~", "./", "../")) or path.exists()
    if not local:
        return value
    path = path.resolve()
    if run_folder is not None:
        base = Path(run_folder).resolve()
        if path == base or path.is_relative_to(base):
            return path.relative_to(base).as_posix() or "."
    return path.name or value


def public_record(record: object, run_folder: str | Path) -> object:
    """`record` with every value of a `PATH_FIELDS` key made public (`public_path`), at any depth."""
    if isinstance(record, dict):
        return {k: public_path(v, run_folder) if k in PATH_FIELDS and isinstance(v, str)
                else public_record(v, run_folder) for k, v in record.items()}
    if isinstance(record, list):
        return [public_record(v, run_folder) for v in record]
    return record


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
        """training_run.json: `record` with its paths made public (relative to the run, or names: `public_path`),
        since it is published as it is (`r2r push-model`)."""
        from synfashion.fs.atomic import write_json_atomic

        path = self.out / RUN_FILE
        write_json_atomic(path, public_record(json.loads(json.dumps(record, default=str)), self.out))
        return path

    def card(self, info) -> Path:
        """The model card (`cards.model_card.DKICardInfo`) written atomically as OUT/README.md."""
        from cards.model_card import render_dki_card
        from synfashion.fs.atomic import write_bytes_atomic

        path = self.out / CARD_FILE
        write_bytes_atomic(path, render_dki_card(info).encode("utf-8"))
        return path
