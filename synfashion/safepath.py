"""Paths that come from data (a manifest, a card, a Hub listing, a tar member, a sidecar) are data, never commands.

A dataset folder or a Hub repo is written by strangers. Any path read from one must be a plain relative name that
stays inside its folder: no `pipe:` (webdataset runs it in a shell), no URL scheme, no absolute path, no `..`, no
backslash or control character. `safe_relpath` is the one check every reader applies before the path reaches a
file system call, a URL opener or a tar reader.
"""

from __future__ import annotations

import re
from pathlib import Path

_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")  # pipe:, http:, file:, s3:, C: ...
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class UnsafePathError(ValueError):
    """A path from data that could leave its folder or be read as a command or URL."""


def path_problem(rel: object) -> str | None:
    """Why `rel` is not a plain relative path inside its folder, or None when it is."""
    if not isinstance(rel, str) or not rel:
        return "is not a non-empty string"
    if _CONTROL.search(rel):
        return "contains a control character"
    if "\\" in rel:
        return "contains a backslash"
    if rel.startswith("/"):
        return "is absolute"
    if _SCHEME.match(rel):
        return "starts with a scheme or command prefix (such as pipe: or https:)"
    parts = rel.split("/")
    if any(p in ("", ".", "..") for p in parts):
        return "has an empty, '.' or '..' segment"
    return None


def safe_relpath(rel: object, *, where: str = "") -> str:
    """`rel` itself when it is a plain relative path; else `UnsafePathError` naming `where` it came from."""
    problem = path_problem(rel)
    if problem is not None:
        origin = f"{where}: " if where else ""
        raise UnsafePathError(f"{origin}path {rel!r} {problem}; only plain relative paths inside the folder are read")
    return rel  # type: ignore[return-value]


def inside(root: str | Path, rel: object, *, where: str = "", links_within: str | Path | None = None) -> Path:
    """`root / rel` after `safe_relpath`, and still inside `root` once symlinks resolve (or inside `links_within`:
    a Hub cache snapshot's files are links into its repo folder's blobs)."""
    root = Path(root)
    path = root / safe_relpath(rel, where=where)
    resolved_root = Path(links_within or root).resolve()
    if not path.resolve().is_relative_to(resolved_root):
        origin = f"{where}: " if where else ""
        raise UnsafePathError(f"{origin}path {rel!r} leads outside {root} through a symbolic link")
    return path
