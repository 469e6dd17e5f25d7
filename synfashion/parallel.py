"""Ordered parallel map over processes with a rich progress bar; the one place packaging fans out work.

Results come back in input order, so whatever is built from them is independent of the worker count.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import TypeVar

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

T = TypeVar("T")
R = TypeVar("R")


def default_workers() -> int:
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1))


def progress_bar(enabled: bool = True) -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        disable=not enabled,
        transient=False,
    )


def _die_with_parent() -> None:
    """Pool initializer: on Linux, have the kernel SIGKILL a worker whose parent dies (a `kill -9` of the build
    would otherwise leave workers blocked on their queue forever)."""
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, int(signal.SIGKILL))  # PR_SET_PDEATHSIG
        except OSError:
            pass


def _run_chunk(args: tuple[Callable[[T], R], list[T]]) -> list[R]:
    fn, chunk = args
    return [fn(x) for x in chunk]


def parallel_map(
    fn: Callable[[T], R],
    items: Sequence[T],
    *,
    workers: int = 1,
    chunksize: int = 16,
    description: str = "working",
    progress: bool = True,
    weights: Sequence[int] | None = None,
) -> Iterator[R]:
    """Yield fn(item) for each item, in order. `fn` must be a module-level function when workers > 1.

    `weights` (e.g. bytes per item) drive the progress bar instead of item counts.
    """
    chunks = [list(items[i : i + chunksize]) for i in range(0, len(items), chunksize)]
    chunk_weights = [
        sum(weights[i : i + chunksize]) if weights is not None else len(c)
        for i, c in zip(range(0, len(items), chunksize), chunks)
    ]
    with progress_bar(progress) as bar:
        task = bar.add_task(description, total=sum(chunk_weights))
        if workers <= 1 or len(chunks) <= 1:
            for chunk, w in zip(chunks, chunk_weights):
                yield from _run_chunk((fn, chunk))
                bar.advance(task, w)
            return
        with ProcessPoolExecutor(max_workers=workers, initializer=_die_with_parent) as pool:
            for result, w in zip(pool.map(_run_chunk, [(fn, c) for c in chunks]), chunk_weights):
                yield from result
                bar.advance(task, w)
