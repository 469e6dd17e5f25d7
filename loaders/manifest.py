"""What the loaders read from a built folder's manifest.json: which shard files hold a (format, config, split), and
the per-sample metadata of a split (for evaluation subsets).

A dataset folder may come from a stranger, so everything read here is data. The manifest is read through
synfashion's one typed `Manifest` (every shard path a plain relative path, every entry typed), and each shard path
must also stay inside the folder once symbolic links resolve (`synfashion.fs.safepath.inside`); else the whole manifest
is refused with an error naming it and the path. The paths returned are absolute, so a shard string handed on never
starts with a scheme or a command prefix. This module opens no shard.
"""

from __future__ import annotations

from pathlib import Path

from synfashion.manifest import MANIFEST, Manifest, ManifestError
from synfashion.fs.safepath import UnsafePathError, inside

from .errors import FieldProblem, LoaderError, UnsafeSourceError
from .records import parse_category, parse_key


def read_manifest(folder: str | Path) -> Manifest | None:
    """The folder's manifest, None when it has none; an error naming the file when it is not one we can trust
    (`UnsafeSourceError` for a path that is not plain, `LoaderError` for anything else)."""
    path = Path(folder) / MANIFEST
    if not path.is_file():
        return None
    try:
        return Manifest.read(path)
    except ManifestError as e:
        unsafe = any(w in str(e) for w in ("scheme or command", "is absolute", "'..' segment", "backslash",
                                           "control character"))
        if unsafe:
            raise UnsafeSourceError(f"{e}. This manifest is not read: a shard path is data, never a command, a URL "
                                    "or a file outside the dataset folder.") from None
        raise LoaderError(f"{e}; rebuild the folder or fetch it again") from None


def manifest_shards(folder: str | Path, fmt: str, split: str, config: str | None = None) -> list[str] | None:
    """Absolute paths of the shards of (format, config, split) listed in the manifest, sorted; None without a
    manifest. Every shard path in the manifest is checked, not only the ones asked for."""
    folder = Path(folder).absolute()
    manifest = read_manifest(folder)
    if manifest is None:
        return None
    where = str(folder / MANIFEST)
    out = []
    for entry in manifest.shards:
        try:
            path = inside(folder, entry.path, where=where)
        except UnsafePathError as e:
            raise UnsafeSourceError(f"{e}. This manifest is not read: a shard path is data, never a command, a URL "
                                    "or a file outside the dataset folder.") from None
        if entry.format == fmt and entry.split == split and (config is None or entry.config == config):
            out.append(str(path))
    return sorted(out)


def manifest_samples(folder: str | Path, split: str) -> list[dict] | None:
    """The manifest's samples of `split` (key, category name, view, project checked), or None without a manifest."""
    manifest = read_manifest(folder)
    if manifest is None:
        return None
    path = Path(folder) / MANIFEST
    out = []
    for i, s in enumerate(manifest.samples):
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
