"""Atomic file writes: nothing appears under its final name until it is complete.

A writer gets a temp path in the destination folder (same filesystem, so `os.replace` is atomic); an exception
or a kill leaves at most a `*.tmp-*` file, which `remove_stale_temps` clears on the next run. What appears has the
permissions a plain `open()` gives (`usual_permissions`): some writers (safetensors' `save_file`) create 0600
files, which other users of a shared model or dataset folder then cannot read.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from pathlib import Path

TMP_MARK = ".tmp-"


def _usual_mode() -> int:
    mask = os.umask(0o022)  # read the umask (setting it is the only way), then put it back
    os.umask(mask)
    return 0o666 & ~mask


_FILE_MODE = _usual_mode()  # once, at import: the umask is process-wide and reading it briefly changes it


def usual_permissions(path: str | Path) -> None:
    """Give a file, or every file under a folder, the mode a plain `open()` would (0666 less the umask)."""
    path = Path(path)
    for p in ([path] if not path.is_dir() else sorted(path.rglob("*"))):
        if p.is_file() and not p.is_symlink() and (p.stat().st_mode & 0o777) != _FILE_MODE:
            os.chmod(p, _FILE_MODE)


@contextlib.contextmanager
def atomic_path(final: str | Path, *, durable: bool = True) -> Iterator[Path]:
    """Yield a temp path to write; on success it replaces `final`. `durable` fsyncs first (survives power loss,
    not only a killed process); regenerable outputs may skip it, since thousands of fsyncs cost real time."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(f"{final.name}{TMP_MARK}{os.getpid()}")
    try:
        yield tmp
        usual_permissions(tmp)
        if durable:
            with open(tmp, "rb+") as f:
                os.fsync(f.fileno())
        os.replace(tmp, final)
        if durable:  # the rename itself lives in the folder: without this a power cut can undo it
            fd = os.open(final.parent, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_bytes_atomic(final: str | Path, data: bytes, *, durable: bool = True) -> None:
    with atomic_path(final, durable=durable) as tmp:
        tmp.write_bytes(data)


def write_json_atomic(final: str | Path, obj, *, indent: int | None = 1, durable: bool = True) -> None:
    data = (json.dumps(obj, indent=indent, sort_keys=True, ensure_ascii=False) + "\n").encode()
    write_bytes_atomic(final, data, durable=durable)


def remove_stale_temps(root: str | Path) -> int:
    n = 0
    for p in Path(root).rglob(f"*{TMP_MARK}*"):
        if p.is_file():
            p.unlink()
            n += 1
    return n
