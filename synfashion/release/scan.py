"""Scanning a release folder into validated records, and a report of every input that did not become one.

Category comes from the top-level folder; project, texture and view from a file-name pattern and/or a metadata
sidecar that overrides it. Every file under the root ends up in exactly one of: `records`, `rejected` (could
not be packaged, with the reason) or `ignored` (not release content: sidecars, hidden files, root-level docs).
This module reads files but writes nothing.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import json
import os
import re
from collections.abc import Iterable, Mapping
from concurrent.futures import Executor
from dataclasses import dataclass, field
from pathlib import Path

from .imagecheck import DEFAULT_MAX_PIXELS, VALIDATION_LEVELS, ImageInfo, ImageRejected, inspect_image
from ..parallel import parallel_map
from ..schema import DEFAULT_PATTERN, SIDECAR_NAMES, RenderRecord, make_key
from ..taxonomy import VIEWS, UnknownCategoryError, normalize_category

_VIEW_ALIASES = {"f": "front", "b": "back", "r1": "random1", "r2": "random2", "random-1": "random1", "random-2": "random2"}


@dataclass(frozen=True)
class ScanConfig:
    # regex with named groups project, texture, view, matched on the file name without its extension; a pattern
    # with a "/" is matched on the path below the category folder instead (e.g. "p01/t0042_front" where projects
    # have folders of their own)
    pattern: str = DEFAULT_PATTERN
    metadata: Path | None = None  # sidecar (CSV/JSONL keyed by file_name); auto-detected at the root if None
    max_pixels: int = DEFAULT_MAX_PIXELS
    validate: str = "structure"  # or "decode": see imagecheck

    def __post_init__(self) -> None:
        if self.validate not in VALIDATION_LEVELS:
            raise ValueError(f"--validate must be one of {', '.join(VALIDATION_LEVELS)}, got {self.validate!r}")
        # Groups the pattern lacks may still come from a sidecar, so only the regex itself is checked here.
        try:
            re.compile(self.pattern)
        except re.error as e:
            raise ValueError(f"--pattern {self.pattern!r} is not a valid regex: {e}") from None


@dataclass(frozen=True)
class Rejected:
    source_path: str
    reason: str  # empty | not-an-image | corrupt | too-large | unparseable-name | duplicate | unreadable | sidecar-*
    detail: str

    def as_dict(self) -> dict:
        return {"source_path": self.source_path, "reason": self.reason, "detail": self.detail}


@dataclass
class ScanResult:
    root: Path
    records: list[RenderRecord] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)
    sidecar: str | None = None
    # source_path -> (size, mtime_ns) when its bytes were hashed: the build checks it before copying the bytes, so a
    # file changed after the scan is caught without hashing every source a second time
    stamps: dict[str, tuple[int, int]] = field(default_factory=dict)
    # source_path -> what reading it found (hash, image facts or verdict), for the build's scan cache
    checked: dict[str, "CheckResult"] = field(default_factory=dict)


class ReleaseLayoutError(ValueError):
    """The release folder itself is unusable (not a folder, unknown category folder, bad sidecar)."""


def _read_sidecar(path: Path) -> dict[str, dict]:
    """file_name -> row, from JSONL or CSV. Raises naming the file and line on malformed content."""
    rows: dict[str, dict] = {}
    if not path.is_file():
        raise ReleaseLayoutError(f"metadata sidecar {path} does not exist")
    if path.suffix.lower() == ".jsonl":
        parsed = []
        with path.open(encoding="utf-8") as f:
            for n, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    parsed.append((n, json.loads(line)))
                except json.JSONDecodeError as e:
                    raise ReleaseLayoutError(f"{path}:{n}: not valid JSON ({e.msg})") from None
        lines: Iterable[tuple[int, dict]] = parsed
    elif path.suffix.lower() == ".csv":
        with path.open(encoding="utf-8", newline="") as f:
            lines = list(enumerate(csv.DictReader(f), 2))
    else:
        raise ReleaseLayoutError(f"metadata sidecar {path} must be .jsonl or .csv")
    for n, row in lines:
        name = row.get("file_name")
        if not isinstance(name, str) or not name:
            raise ReleaseLayoutError(f"{path}:{n}: row has no 'file_name' (the path relative to the release root)")
        name = name.replace("\\", "/").lstrip("./")
        if name in rows:
            raise ReleaseLayoutError(f"{path}:{n}: file_name {name!r} appears twice")
        rows[name] = row
    return rows


def _list_files(root: Path) -> list[str]:
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(filenames):
            out.append(Path(dirpath, name).relative_to(root).as_posix())
    return out


@dataclass(frozen=True)
class _Candidate:
    source_path: str
    category: str
    project: str
    texture: str
    view: str
    extra: dict


def file_stamp(st: os.stat_result) -> tuple[int, int]:
    return st.st_size, st.st_mtime_ns


# (source path, sha256, (size, mtime_ns), what the bytes are or why they cannot be packaged)
CheckResult = tuple[str, str, tuple[int, int], ImageInfo | ImageRejected]


def _check_file(args: tuple[str, str, int, str]) -> CheckResult:
    """Worker: read, hash, validate one file (module-level so process pools can pickle it)."""
    root, rel, max_pixels, validate = args
    try:
        with open(Path(root, rel), "rb") as f:
            stamp = file_stamp(os.fstat(f.fileno()))
            data = f.read()
    except OSError as e:
        return rel, "", (0, 0), ImageRejected("unreadable", str(e))
    if len(data) != stamp[0]:
        return rel, "", stamp, ImageRejected("unreadable", "file changed size while it was being read")
    digest = hashlib.sha256(data).hexdigest()
    try:
        return rel, digest, stamp, inspect_image(data, max_pixels=max_pixels, validate=validate)
    except ImageRejected as e:
        return rel, digest, stamp, e


def scan_release(
    root: str | Path,
    config: ScanConfig = ScanConfig(),
    *,
    workers: int = 1,
    progress: bool = True,
    cache: Mapping[str, CheckResult] | None = None,
    pool: Executor | None = None,
) -> ScanResult:
    """`cache` (see scan_cache): earlier results, reused for every file whose (size, mtime_ns) still matches.
    `pool` (see parallel.worker_pool): a caller's process pool to check the files in."""
    root = Path(root)
    if not root.is_dir():
        raise ReleaseLayoutError(f"release folder {root} does not exist or is not a folder")
    sidecar_path = config.metadata
    if sidecar_path is None:
        sidecar_path = next((root / n for n in SIDECAR_NAMES if (root / n).is_file()), None)
    sidecar = _read_sidecar(Path(sidecar_path)) if sidecar_path is not None else {}
    sidecar_rel = None
    if sidecar_path is not None:
        try:
            sidecar_rel = Path(sidecar_path).resolve().relative_to(root.resolve()).as_posix()
        except ValueError:
            sidecar_rel = None
    result = ScanResult(root=root, sidecar=str(sidecar_path) if sidecar_path else None)

    pattern = re.compile(config.pattern)
    by_path = "/" in config.pattern
    candidates: list[_Candidate] = []
    seen_files: set[str] = set()
    for rel in _list_files(root):
        parts = rel.split("/")
        if rel == sidecar_rel or any(p.startswith(".") for p in parts) or len(parts) == 1:
            result.ignored.append(rel)  # sidecars, hidden files, README/LICENSE at the root
            continue
        try:
            category = normalize_category(parts[0])
        except UnknownCategoryError as e:
            raise ReleaseLayoutError(f"{root / parts[0]}: {e}") from None
        seen_files.add(rel)
        stem = ("/".join(parts[1:]) if by_path else parts[-1]).rsplit(".", 1)[0]
        fields: dict[str, str] = {}
        m = pattern.fullmatch(stem) or pattern.match(stem)
        if m:
            fields.update({k: v for k, v in m.groupdict().items() if v is not None})
        extra: dict = {}
        if rel in sidecar:
            row = sidecar[rel]
            for k, v in row.items():
                if k in ("project", "texture", "view") and v not in (None, ""):
                    fields[k] = str(v)
                elif k != "file_name":
                    extra[k] = v
        missing = [k for k in ("project", "texture", "view") if not fields.get(k)]
        if missing:
            how = "matches no sidecar row and " if sidecar else ""
            result.rejected.append(
                Rejected(rel, "unparseable-name", f"{how}name {stem!r} does not give {', '.join(missing)} "
                         f"with pattern {config.pattern!r}")
            )
            continue
        view = fields["view"].strip().lower()
        view = _VIEW_ALIASES.get(view, view)
        if view not in VIEWS:
            result.rejected.append(
                Rejected(rel, "unparseable-name", f"view {fields['view']!r} is not one of {', '.join(VIEWS)}")
            )
            continue
        candidates.append(_Candidate(rel, category, fields["project"], fields["texture"], view, extra))

    for name in sorted(set(sidecar) - seen_files):
        result.rejected.append(Rejected(name, "sidecar-missing-file", f"listed in {sidecar_path} but not found"))

    cache = cache or {}
    checked: dict[str, CheckResult] = {}
    todo = []
    for c in candidates:
        hit = cache.get(c.source_path)
        if hit is not None:
            with contextlib.suppress(OSError):
                if file_stamp(os.stat(root / c.source_path)) == tuple(hit[2]):
                    checked[c.source_path] = hit
                    continue
        todo.append((str(root), c.source_path, config.max_pixels, config.validate))
    for r in parallel_map(_check_file, todo, workers=workers, description="validating images", progress=progress,
                          pool=pool):
        checked[r[0]] = r
    result.checked = checked
    by_identity: dict[str, str] = {}
    by_content: dict[str, str] = {}
    for cand in candidates:
        rel, digest, stamp, info = checked[cand.source_path]
        if isinstance(info, ImageRejected):
            result.rejected.append(Rejected(rel, info.reason, info.detail))
            continue
        key = make_key(cand.category, cand.project, cand.texture, cand.view)
        if key in by_identity:
            result.rejected.append(Rejected(rel, "duplicate", f"same category/project/texture/view as {by_identity[key]}"))
            continue
        if digest in by_content:
            result.rejected.append(Rejected(rel, "duplicate", f"byte-identical to {by_content[digest]}"))
            continue
        by_identity[key] = rel
        by_content[digest] = rel
        result.records.append(
            RenderRecord(
                key=key, category=cand.category, project=cand.project, texture=cand.texture, view=cand.view,
                source_path=rel, width=info.width, height=info.height, mode=info.mode, format=info.format,
                orientation=info.orientation, sha256=digest, num_bytes=stamp[0], extra=cand.extra,
            )
        )
        result.stamps[rel] = stamp
    result.rejected.sort(key=lambda r: r.source_path)
    return result
