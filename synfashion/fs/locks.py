"""One run per output folder: a second run into a folder another run is writing is refused by name.

`folder_lock` is `flock` on the folder itself (the kernel releases it when the process dies, `kill -9` included),
so a second run is refused instead of deleting the first one's temp files. This module never deletes anything.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

_HELD_LOCK_FDS: set[int] = set()


def _close_inherited_locks() -> None:
    """In a forked child (a pool worker, a DataLoader worker): close the copies of the parent's lock descriptors.
    The lock stays the parent's (flock belongs to the open file description, which the parent still holds), and
    once the parent dies nothing else keeps the folder locked: a rerun right after a `kill -9` is not refused while
    orphaned workers linger."""
    for fd in list(_HELD_LOCK_FDS):
        with contextlib.suppress(OSError):
            os.close(fd)
    _HELD_LOCK_FDS.clear()


os.register_at_fork(after_in_child=_close_inherited_locks)


class FolderBusyError(RuntimeError):
    """Another process is writing the same output folder."""


@contextlib.contextmanager
def folder_lock(folder: str | Path, what: str = "run", *, slot: str | Path | None = None) -> Iterator[None]:
    """Hold `folder` for this process; a second holder is refused at once with a message naming the folder.

    The lock is `flock` on the folder itself (no lock file is left behind, and the kernel releases it when the
    process dies, `kill -9` included). With `slot` (the lock file of one rank of a distributed run, somewhere in the
    folder's hidden state), processes share the folder lock and each takes its slot's file instead, so the ranks of
    one run work side by side while a second run of the same rank is refused. Anything that clears the folder must
    hold it without a slot.
    """
    folder = Path(folder)
    created = not folder.exists()
    folder.mkdir(parents=True, exist_ok=True)
    fds: list[int] = []
    try:
        fd = os.open(folder, os.O_RDONLY | os.O_CLOEXEC)  # CLOEXEC: a subprocess's exec drops it too
        fds.append(fd)
        _HELD_LOCK_FDS.add(fd)
        _take(fd, folder, what, shared=slot is not None)
        if slot is not None:
            slot = Path(slot)
            slot.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(slot, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
            fds.append(fd)
            _HELD_LOCK_FDS.add(fd)
            _take(fd, folder, f"{what} ({slot.name})", shared=False)
        yield
    finally:
        for fd in reversed(fds):
            _HELD_LOCK_FDS.discard(fd)
            os.close(fd)  # closing releases the lock
        if created:  # a run that failed before writing anything leaves no empty folder behind
            with contextlib.suppress(OSError):
                folder.rmdir()


def _take(fd: int, folder: Path, what: str, *, shared: bool) -> None:
    try:
        fcntl.flock(fd, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
    except BlockingIOError:
        raise FolderBusyError(
            f"{folder} is in use by another {what} (a second process writing the same folder would corrupt it): "
            "wait for it to finish, or choose another output folder"
        ) from None
