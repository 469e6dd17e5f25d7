"""A full disk is one clear line: "no space left on OUT: 120 MB needed, 3 MB free".

Every command that writes a folder (build, translate, training) wraps its writes in `disk_full_as_error`, so a full
disk reads as `NoSpaceError` naming the folder instead of an `OSError` traceback or a C++ stream message. This
module never deletes anything.
"""


from __future__ import annotations

import contextlib
import errno
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
