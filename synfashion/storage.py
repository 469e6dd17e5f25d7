"""Output folders shared safely: one clear error when the disk fills, and a lock so two runs never share a folder.

Every command that writes a folder (build, translate, training) goes through these two, so a full disk reads
"no space left on OUT: 120 MB needed, 3 MB free" instead of an `OSError` traceback or a C++ stream message, and a
second run into a folder another run is writing is refused by name instead of deleting the first one's temp files.
This module never deletes anything.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

_MB = 2**20
# What libraries say instead of ENOSPC when a write fails on a full disk: C++ streams (torch.save), Arrow.
_FULL_DISK_WORDS = ("no space left", "basic_ios::clear", "disk quota exceeded", "not enough space")


class NoSpaceError(OSError):
    """The output folder's disk is full (or over quota). An OSError with errno ENOSPC, so `except OSError` holds."""

    def __init__(self, folder: str | Path, needed: int | None = None, what: str = ""):
        self.folder, self.needed = Path(folder), needed
        free = free_bytes(folder)
        need = f"{_mb(needed)} needed, " if needed else ""
        doing = f" while writing {what}" if what else ""
        super().__init__(errno.ENOSPC, f"no space left on {folder}{doing}: {need}{_mb(free)} free; free some space "
                                       "or choose another folder, then run the same command again (finished work is "
                                       "kept)")

    def __str__(self) -> str:
        return self.strerror

    def __reduce__(self):  # crosses process pools: rebuilt from its message, without calling __init__ again
        return _rebuild_no_space, (str(self.folder), self.needed, self.strerror)


def _rebuild_no_space(folder: str, needed: int | None, message: str) -> NoSpaceError:
    err = NoSpaceError.__new__(NoSpaceError)
    OSError.__init__(err, errno.ENOSPC, message)
    err.folder, err.needed = Path(folder), needed
    return err


def _mb(n: int | None) -> str:
    return "? MB" if n is None else f"{max(n, 0) / _MB:,.1f} MB"


def free_bytes(path: str | Path) -> int | None:
    """Free bytes on the filesystem holding `path` (or its nearest existing parent); None if it cannot be read."""
    p = Path(path).absolute()
    while not p.exists() and p != p.parent:
        p = p.parent
    try:
        return shutil.disk_usage(p).free
    except OSError:
        return None


def is_disk_full(exc: BaseException) -> bool:
    """True for ENOSPC/EDQUOT, anywhere in the exception's chain, or a library's words for them."""
    seen: set[int] = set()
    e: BaseException | None = exc
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        if isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        if any(w in str(e).lower() for w in _FULL_DISK_WORDS):
            return True
        e = e.__cause__ or e.__context__
    return False


def ensure_space(folder: str | Path, needed: int, what: str = "") -> None:
    """Refuse up front when `folder`'s disk has less than `needed` bytes free (the work would fail part-way)."""
    free = free_bytes(folder)
    if free is not None and free < needed:
        raise NoSpaceError(folder, needed, what)


@contextlib.contextmanager
def disk_full_as_error(folder: str | Path, needed: int | None = None, what: str = "") -> Iterator[None]:
    """Turn a full-disk failure inside the block into one `NoSpaceError` naming `folder` (other errors pass)."""
    try:
        yield
    except NoSpaceError:
        raise
    except Exception as e:
        if is_disk_full(e):
            raise NoSpaceError(folder, needed, what) from None
        raise


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
