"""Paths that come from data (a manifest, a card, a Hub listing, a tar member, a sidecar) are data, never commands.

A dataset folder or a Hub repo is written by strangers. Any path read from one must be a plain relative name that
stays inside its folder: no `pipe:` (webdataset runs it in a shell), no URL scheme, no absolute path, no `..`, no
backslash or control character. `safe_relpath` is the one check every reader applies before the path reaches a
file system call, a URL opener or a tar reader.

A sample key is stricter still: a name, never a path. Keys become file names (`<key>.json` in a tar, staged
`<key>.image` files), so `key_problem` is the one rule (the one the writers enforce, and the one every reader of a
manifest, Parquet row, tar member or Hub listing applies where the data is read), and `key_file` is the one way a
key becomes a file name: it cannot leave its folder.
"""

from __future__ import annotations

import re
from pathlib import Path

_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")  # pipe:, http:, file:, s3:, C: ...
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class UnsafePathError(ValueError):
    """A path from data that could leave its folder or be read as a command or URL."""


KEY_MAX = 240  # characters: a file system name is at most 255 bytes, and a key gets a suffix (".source", ".json")
_KEY = re.compile(r"[A-Za-z0-9_-]+")  # everything `schema.make_key` writes: ASCII letters, digits, "_", "-"


def key_problem(key: object) -> str | None:
    """Why `key` is not a plain sample key (1..240 of ASCII letters, digits, '_', '-'), or None when it is.

    No dot (WebDataset splits member names at the first dot, and '..' is a path), no separator, no control
    character, no space: a key is a name on every file system and in every tar, never a path."""
    if not isinstance(key, str) or not key:
        return "is not a non-empty string"
    if len(key) > KEY_MAX:
        return f"is longer than {KEY_MAX} characters"
    if not _KEY.fullmatch(key):
        return "is not a plain name (only ASCII letters, digits, '_' and '-'; no '.', '/', '\\' or space)"
    return None


def check_key(key: object, *, where: str = "") -> str:
    """`key` itself when it is a plain sample key; else `UnsafePathError` naming `where` it came from."""
    return _checked(key, key_problem(key), where, f"sample key {str(key)[:80]!r}", "")


def key_file(folder: str | Path, key: object, suffix: str = "", *, where: str = "") -> Path:
    """`folder / (key + suffix)`: the one way a sample key becomes a file name. The key is checked (`check_key`),
    the suffix is a plain extension such as ".json", and the result is a direct child of `folder`."""
    name = check_key(key, where=where) + suffix
    if suffix and not re.fullmatch(r"\.[A-Za-z0-9]+", suffix):
        raise ValueError(f"file suffix {suffix!r} is not a plain extension")
    path = Path(folder) / name
    if path.parent != Path(folder) or path.name != name:  # cannot happen after check_key; kept as the last guard
        raise UnsafePathError(f"{where + ': ' if where else ''}sample key {key!r} does not name a file in {folder}")
    return path


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
    return _checked(rel, path_problem(rel), where, f"path {rel!r}",
                    "; only plain relative paths inside the folder are read")


def _checked(value: object, problem: str | None, where: str, what: str, hint: str) -> str:
    if problem is not None:
        raise UnsafePathError(f"{where + ': ' if where else ''}{what} {problem}{hint}")
    return value  # type: ignore[return-value]


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
