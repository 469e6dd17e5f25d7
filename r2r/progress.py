"""The console and the progress bar of r2r's training commands (DKI training, downstream), on stderr.

One definition so both show the same columns (steps, loss, samples/s, time left) and stay quiet the same way.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator


def stderr_console():
    """rich's console on stderr; soft-wrapped so each message stays one line (paths are long)."""
    from rich.console import Console

    return Console(stderr=True, soft_wrap=True)


Advance = Callable[..., None]  # advance(n=1, loss=None, sps=None)


@contextlib.contextmanager
def training_progress(description: str, total: int, completed: int = 0, *, loss: bool = True,
                      show: bool = True) -> Iterator[Advance]:
    """A rich bar (steps done of `total`; with `loss`, the last loss and samples/s); yields `advance`, a no-op when
    not `show` (other ranks, --no-progress)."""
    if not show:
        yield lambda n=1, **kw: None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    cols = [TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn()]
    if loss:
        cols += [TextColumn("loss {task.fields[loss]}"), TextColumn("{task.fields[sps]} samples/s")]
    cols.append(TimeRemainingColumn())
    with Progress(*cols, console=stderr_console(), transient=False) as bar:
        task = bar.add_task(description, total=total, completed=completed, loss="-", sps="-")

        def advance(n: int = 1, loss: float | None = None, sps: float | None = None) -> None:
            fields = {}
            if loss is not None:
                fields["loss"] = f"{loss:.4f}"
            if sps is not None:
                fields["sps"] = f"{sps:.1f}"
            bar.update(task, advance=n, **fields)

        yield advance
