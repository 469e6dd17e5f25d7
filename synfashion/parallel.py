"""Ordered parallel map over processes with a rich progress bar; the one place packaging fans out work.

Results come back in input order, so whatever is built from them is independent of the worker count.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import os
import signal
import sys
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor
from typing import TypeVar

from rich.progress import (
    BarColumn, DownloadColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn,
)

T = TypeVar("T")
R = TypeVar("R")


def default_workers() -> int:
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1))


def progress_bar(enabled: bool = True, *, in_bytes: bool = False) -> Progress:
    """`in_bytes`: the totals are byte counts, shown as "118.0/124.5 MB" rather than raw numbers. On stderr, like
    every progress report: stdout holds a command's result."""
    from rich.console import Console

    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        DownloadColumn() if in_bytes else MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        disable=not enabled,
        transient=False,
        console=Console(stderr=True),
    )


_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc mallopt parameters
_KEEP_FREED = 256 * 2**20


def _init_worker() -> None:
    """Pool initializer: the parent's objects are frozen out of garbage collection, and on Linux the kernel
    SIGKILLs a worker whose parent dies (a `kill -9` of the build would otherwise leave workers blocked on their
    queue forever) and glibc keeps freed memory for reuse.

    A shard job holds a row group of image bytes (about 13 MB), frees it, and allocates the next: with glibc's
    defaults every batch goes back to the kernel and is faulted in again, which measured as a third of a write
    job's CPU time. Workers only run jobs, so keeping up to 256 MB of freed heap costs nothing that matters.
    """
    gc.freeze()  # what the parent built is never garbage here: collections skip it, and its pages stay shared
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole process group: the parent handles it
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
    except OSError:
        return
    libc.prctl(1, int(signal.SIGKILL))  # PR_SET_PDEATHSIG
    if hasattr(libc, "mallopt"):
        libc.mallopt(_M_MMAP_THRESHOLD, 32 * 2**20)  # the maximum: image-sized blocks come from the heap...
        libc.mallopt(_M_TRIM_THRESHOLD, _KEEP_FREED)  # ...and are not handed back after every batch


@contextlib.contextmanager
def worker_pool(workers: int) -> Iterator[Executor | None]:
    """One process pool for several `parallel_map` calls (None when workers <= 1: they run in this process).

    A build scans and then writes: sharing the pool forks the workers once, and the write jobs run in processes
    whose heaps the scan already warmed (see `_init_worker`) instead of faulting in fresh memory.
    """
    if workers <= 1:
        yield None
        return
    with _process_pool(workers) as pool:
        yield pool


@contextlib.contextmanager
def _process_pool(workers: int) -> Iterator[ProcessPoolExecutor]:
    """A process pool that, after Ctrl-C, stops its workers at once instead of waiting for their jobs (a shard's
    files take seconds to write; each is atomic, and the rerun redoes what was cut short)."""
    pool = ProcessPoolExecutor(max_workers=workers, initializer=_init_worker)
    interrupted = False
    try:
        yield pool
    except KeyboardInterrupt:
        interrupted = True
        for process in list((getattr(pool, "_processes", None) or {}).values()):
            process.terminate()
        raise
    finally:
        pool.shutdown(wait=not interrupted, cancel_futures=interrupted)


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
    weights_in_bytes: bool = False,
    largest_first: bool = False,
    pool: Executor | None = None,
) -> Iterator[R]:
    """Yield fn(item) for each item, in order. `fn` must be a module-level function when workers > 1.

    `weights` (e.g. bytes per item, then say `weights_in_bytes`) drive the progress bar instead of item counts.
    The bar advances when a chunk is done, before its results are handed out, so it ends full even when the
    caller stops pulling at the last item (as `zip` does). `largest_first` starts the
    heaviest items first (ties in input order), so a big one never starts last and leaves one worker busy alone;
    results still come back in input order, held until their turn. `pool` (see `worker_pool`): run there instead
    of in a pool of this call's own.
    """
    if largest_first and weights is not None and workers > 1:
        order = sorted(range(len(items)), key=lambda i: -weights[i])
        done = dict(zip(order, parallel_map(
            fn, [items[i] for i in order], workers=workers, chunksize=chunksize, description=description,
            progress=progress, weights=[weights[i] for i in order], weights_in_bytes=weights_in_bytes, pool=pool,
        )))
        yield from (done[i] for i in range(len(items)))
        return
    chunks = [list(items[i : i + chunksize]) for i in range(0, len(items), chunksize)]
    chunk_weights = [
        sum(weights[i : i + chunksize]) if weights is not None else len(c)
        for i, c in zip(range(0, len(items), chunksize), chunks)
    ]
    with progress_bar(progress, in_bytes=weights_in_bytes) as bar:
        task = bar.add_task(description, total=sum(chunk_weights))
        if workers <= 1 or len(chunks) <= 1:
            for chunk, w in zip(chunks, chunk_weights):
                result = _run_chunk((fn, chunk))
                bar.advance(task, w)
                yield from result
            return
        with contextlib.ExitStack() as stack:
            if pool is None:
                pool = stack.enter_context(_process_pool(workers))
            for result, w in zip(pool.map(_run_chunk, [(fn, c) for c in chunks]), chunk_weights):
                bar.advance(task, w)
                yield from result
