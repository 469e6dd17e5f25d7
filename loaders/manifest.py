"""What the loaders read from a built folder's manifest.json: which shard files hold a (format, config, split), and
the per-sample metadata of a split (for evaluation subsets).

A dataset folder may come from a stranger, so everything read here is data: every shard `path` must be a plain
relative path inside the folder (`synfashion.safepath.inside`: no `pipe:`, no URL scheme, no absolute path, no `..`,
no symbolic link out of the folder), else the whole manifest is refused with an error naming it and the path. The
paths returned are absolute, so a shard string handed on never starts with a scheme or a command prefix. This
module opens no shard. (It reads the JSON itself until the typed `synfashion.manifest` exists.)
"""

from __future__ import annotations

import json
from pathlib import Path

from synfashion.safepath import UnsafePathError, inside

from .errors import FieldProblem, LoaderError, UnsafeSourceError
from .records import parse_category, parse_key

MANIFEST = "manifest.json"


def read_manifest(folder: str | Path) -> dict | None:
    """The folder's manifest as a dict, None when it has none; `LoaderError` naming the file when it is not a JSON
    object."""
    path = Path(folder) / MANIFEST
    if not path.is_file():
        return None
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise LoaderError(f"{path}: not valid JSON ({e}); rebuild the folder or fetch it again") from None
    if not isinstance(manifest, dict):
        raise LoaderError(f"{path}: holds a {type(manifest).__name__}, not a JSON object")
    return manifest


def _entries(manifest: dict, field: str, path: Path) -> list[dict]:
    entries = manifest.get(field, [])
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise LoaderError(f"{path}: '{field}' is not a list of objects")
    return entries


def manifest_shards(folder: str | Path, fmt: str, split: str, config: str | None = None) -> list[str] | None:
    """Absolute paths of the shards of (format, config, split) listed in the manifest, sorted; None without a
    manifest. Every shard path in the manifest is checked, not only the ones asked for."""
    folder = Path(folder).absolute()
    manifest = read_manifest(folder)
    if manifest is None:
        return None
    where = str(folder / MANIFEST)
    out = []
    for entry in _entries(manifest, "shards", folder / MANIFEST):
        try:
            path = inside(folder, entry.get("path"), where=where)
        except UnsafePathError as e:
            raise UnsafeSourceError(f"{e}. This manifest is not read: a shard path is data, never a command, a URL "
                                    "or a file outside the dataset folder.") from None
        if entry.get("format") == fmt and entry.get("split") == split and (config is None
                                                                            or entry.get("config") == config):
            out.append(str(path))
    return sorted(out)


def manifest_samples(folder: str | Path, split: str) -> list[dict] | None:
    """The manifest's samples of `split` (key, category name, view, project checked), or None without a manifest."""
    manifest = read_manifest(folder)
    if manifest is None:
        return None
    path = Path(folder) / MANIFEST
    out = []
    for i, s in enumerate(_entries(manifest, "samples", path)):
        if s.get("split") != split:
            continue
        try:
            parse_key(s.get("key"))
            parse_category(s.get("category"))
            for name in ("view", "project"):
                if not isinstance(s.get(name), str):
                    raise FieldProblem(name, f"{s.get(name)!r} is not a string")
        except FieldProblem as e:
            raise LoaderError(f"{path}: sample {i} ({s.get('key')!r}): {e}") from None
        out.append(s)
    return out
