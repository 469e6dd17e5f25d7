"""Scanning a release folder into validated records, and a report of every input that did not become one.

Category comes from the top-level folder; project, texture and view from a file-name pattern and/or a metadata
sidecar that overrides it. Every entry under the root ends up in exactly one of: `records`, `rejected` (could
not be packaged, with the reason) or `ignored` (not release content: sidecars, hidden files and folders, root-level
docs). Only regular files are ever opened (never a FIFO, socket or device, so nothing can block or stream forever);
symbolic links are followed only while they stay inside the release (`follow_outside_links` to allow more), each
folder is listed once (no loop), and only names with an image extension can become records.
This module reads files but writes nothing.
"""

from __future__ import annotations

import contextlib
import csv
import errno
import hashlib
import io
import json
import os
import re
import stat
import unicodedata
from collections.abc import Iterable, Mapping
from concurrent.futures import Executor
from dataclasses import dataclass, field
from pathlib import Path

from ..cliutil import option, printable  # noqa: F401 - printable: re-exported (release names)
from .imagecheck import DEFAULT_MAX_PIXELS, VALIDATION_LEVELS, ImageInfo, ImageRejected, inspect_image
from ..parallel import parallel_map
from ..fs.safepath import key_problem, path_problem
from ..schema import DEFAULT_PATTERN, IMAGE_EXTENSIONS, RESERVED_COLUMNS, SIDECAR_NAMES, RenderRecord, make_key
from ..taxonomy import VIEWS, UnknownCategoryError, normalize_category

_VIEW_ALIASES = {"f": "front", "b": "back", "r1": "random1", "r2": "random2", "random-1": "random1", "random-2": "random2"}
IDENTITY_FIELDS = ("project", "texture", "view")  # what the pattern and/or the sidecar must give for every image
# A file is read whole into memory to hash and check it; anything bigger cannot be a release image (64 Mpx of 16-bit
# RGBA stored without compression is 512 MB) and would only exhaust a worker's memory.
DEFAULT_MAX_BYTES = 2**30


def reserved_sidecar_columns() -> frozenset[str]:
    """Sidecar columns that would shadow a column of ours once the build passes sidecar extras on to the manifest and
    Parquet (`RenderRecord.extra`): schema.RESERVED_COLUMNS, every field and column of every config; names starting
    "__" are WebDataset's (__key__, __url__) and are refused as well. project/texture/view are read, not passed on,
    and file_name is the sidecar's own key."""
    return RESERVED_COLUMNS - set(IDENTITY_FIELDS) - {"file_name"}


@dataclass(frozen=True)
class ScanConfig:
    # regex with named groups project, texture, view, matched on the file name without its extension; a pattern
    # with a "/" is matched on the path below the category folder instead (e.g. "p01/t0042_front" where projects
    # have folders of their own). A group the pattern lacks must come from the sidecar, for every row of it.
    pattern: str = option("--pattern", default=DEFAULT_PATTERN, parse=lambda text: text or DEFAULT_PATTERN,
                          help=f"file-stem regex with groups project/texture/view; with a '/' it is matched on the "
                               f"path below the category folder (default {DEFAULT_PATTERN!r})")
    # sidecar (CSV/JSONL keyed by file_name); auto-detected at the root if None
    metadata: Path | None = option("--metadata", default=None, parse=lambda text: Path(text) if text else None,
                                   help="CSV/JSONL sidecar keyed by file_name (overrides the pattern)")
    max_pixels: int = DEFAULT_MAX_PIXELS
    validate: str = option("--validate", default="structure", choices=VALIDATION_LEVELS,  # see imagecheck
                           help="structure: PNG CRCs, JPEG marker/scan structure (default); decode: also decode "
                                "every pixel")
    # a symbolic link whose target lies outside the release is rejected ("outside-release") unless this is set; then
    # what it leads to is packaged, and ScanResult.outside_links / notes name every such link
    follow_outside_links: bool = option(
        "--follow-outside-links", default=False,
        help="package what symbolic links leading outside the release point to (default: reject them); every such "
             "link is named in the build's notes")
    max_bytes: int = DEFAULT_MAX_BYTES  # bigger files are rejected ("too-large") before they are read

    def __post_init__(self) -> None:
        if self.validate not in VALIDATION_LEVELS:
            raise ValueError(f"--validate must be one of {', '.join(VALIDATION_LEVELS)}, got {self.validate!r}")
        # Groups the pattern lacks may still come from a sidecar, so scan_release checks those once it has read it.
        try:
            re.compile(self.pattern)
        except re.error as e:
            raise ValueError(f"--pattern {self.pattern!r} is not a valid regex: {e}") from None

    def missing_groups(self) -> list[str]:
        """The identity fields the pattern has no named group for (they must then all come from the sidecar)."""
        groups = re.compile(self.pattern).groupindex
        return [k for k in IDENTITY_FIELDS if k not in groups]


@dataclass(frozen=True)
class Rejected:
    source_path: str
    # empty | not-an-image | corrupt | too-large | unparseable-name | unsupported-extension | duplicate |
    # key-collision | unreadable | special-file | broken-link | link-loop | outside-release | bad-name | sidecar-*
    reason: str
    detail: str

    def as_dict(self) -> dict:
        return {"source_path": self.source_path, "reason": self.reason, "detail": self.detail}


@dataclass
class ScanResult:
    root: Path
    records: list[RenderRecord] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)  # folders end in "/" (a hidden folder is not entered)
    sidecar: str | None = None
    # source_path -> (size, mtime_ns) when its bytes were hashed: the build checks it before copying the bytes, so a
    # file changed after the scan is caught without hashing every source a second time
    stamps: dict[str, tuple[int, int]] = field(default_factory=dict)
    # source_path -> what reading it found (hash, image facts or verdict), for the build's scan cache
    checked: dict[str, "CheckResult"] = field(default_factory=dict)
    # files under category folders with an image extension: the images the scan tried to make records of. With no
    # records, 0 means "no images found" and more means "every image was rejected" (`no_records_message`)
    candidates: int = 0
    # what the user should know although nothing is wrong (the sidecar overrides --pattern, links followed outside):
    # one line each, for the CLI and the manifest
    notes: list[str] = field(default_factory=list)
    outside_links: list[str] = field(default_factory=list)  # links followed out of the release (follow_outside_links)

    def no_records_message(self) -> str:
        """Why there is nothing to build, worded by what the scan saw."""
        if self.candidates:
            return (f"all {self.candidates} image file(s) under {self.root} were rejected (each is listed with its "
                    "reason)")
        return f"no images found under {self.root}: expected <category>/<image files>"


class ReleaseLayoutError(ValueError):
    """The release folder itself is unusable (not a folder, unknown category folder, bad sidecar or pattern)."""


def _portable(name: str) -> str:
    """A name the OS gave us as a str that JSON and UTF-8 can carry: bytes that were not UTF-8 (surrogate escapes)
    become backslash escapes. Only used to *report* such a name; the file itself is rejected."""
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def _name_problem(name: str) -> str | None:
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return "is not valid UTF-8"
    if any(unicodedata.category(c) == "Cc" for c in name):
        return "contains a control character"
    return None


def _nfc(text: str) -> str:
    """Names are compared in NFC: "ä" typed as one code point (Linux, most tools) or as a + combining mark (macOS
    file names) is the same project, texture and sidecar row."""
    return unicodedata.normalize("NFC", text)


def open_regular_file(path: str | Path) -> tuple[int, os.stat_result]:
    """Open `path` for reading only if it is a regular file: O_NONBLOCK, so a FIFO that replaced the file since it
    was listed cannot block the open, then fstat to prove what was opened. Raises ImageRejected otherwise."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NOCTTY", 0))
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise ImageRejected("special-file", f"is {_file_kind(st.st_mode)}, not a regular file")
    except BaseException:
        os.close(fd)
        raise
    return fd, st


_SPECIAL = ((stat.S_ISFIFO, "a named pipe (FIFO)"), (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a character device"),
            (stat.S_ISBLK, "a block device"), (stat.S_ISDIR, "a folder"))


def _file_kind(mode: int) -> str:
    return next((what for test, what in _SPECIAL if test(mode)), "not a regular file")


def _read_sidecar(path: Path) -> dict[str, tuple[int, dict]]:
    """file_name (NFC) -> (line, row), from JSONL or CSV. Raises naming the file, line and problem on malformed
    content: a row that is not an object, a file_name that is not a plain relative path inside the release, a
    column that would shadow one of ours."""
    rows: dict[str, tuple[int, dict]] = {}
    try:
        fd, _ = open_regular_file(path)
    except FileNotFoundError:
        raise ReleaseLayoutError(f"metadata sidecar {path} does not exist") from None
    except ImageRejected as e:
        raise ReleaseLayoutError(f"metadata sidecar {path} {e.detail}") from None
    except OSError as e:
        raise ReleaseLayoutError(f"metadata sidecar {path} cannot be read: {e.strerror or e}") from None
    with open(fd, "rb") as f:
        raw = f.read()
    try:
        text = raw.decode("utf-8-sig")  # a BOM (Excel's "CSV UTF-8") is not part of the first column's name
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        raise ReleaseLayoutError(f"{path}:{line}: not UTF-8 text ({e.reason})") from None
    suffix = path.suffix.lower()
    if suffix == ".jsonl":
        parsed = []
        for n, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                raise ReleaseLayoutError(f"{path}:{n}: not valid JSON ({e.msg})") from None
            if not isinstance(row, dict):
                raise ReleaseLayoutError(f"{path}:{n}: row is a JSON {type(row).__name__}, not an object "
                                         '({"file_name": ..., "project": ..., ...})')
            parsed.append((n, row))
        lines: Iterable[tuple[int, dict]] = parsed
    elif suffix == ".csv":
        reader = csv.DictReader(io.StringIO(text, newline=""))
        try:
            lines = [(reader.line_num, row) for row in reader]
        except csv.Error as e:
            raise ReleaseLayoutError(f"{path}:{reader.line_num}: not valid CSV ({e})") from None
        if reader.fieldnames is None:
            lines = []
    else:
        raise ReleaseLayoutError(f"metadata sidecar {path} must be .jsonl or .csv")
    reserved = reserved_sidecar_columns()
    for n, row in lines:
        if None in row:  # csv.DictReader's key for fields beyond the header
            raise ReleaseLayoutError(f"{path}:{n}: row has more fields than the header names")
        for column, value in row.items():
            if column in reserved or column.startswith("__"):
                raise ReleaseLayoutError(
                    f"{path}:{n}: column {column!r} would shadow the dataset's own {column!r} field; rename it in "
                    "the sidecar (sidecar columns other than file_name, project, texture and view are kept as extra "
                    "metadata)")
            if column in IDENTITY_FIELDS and not (value is None or isinstance(value, (str, int))):
                raise ReleaseLayoutError(f"{path}:{n}: {column} is a JSON {type(value).__name__}, not a string")
        name = row.get("file_name")
        if not isinstance(name, str) or not name:
            raise ReleaseLayoutError(f"{path}:{n}: row has no 'file_name' (the path relative to the release root)")
        name = name.replace("\\", "/")  # a sidecar written on Windows
        if name.startswith("./"):
            name = name[2:]
        problem = path_problem(name)
        if problem is not None:
            raise ReleaseLayoutError(f"{path}:{n}: file_name {row['file_name']!r} {problem}; it must be a plain "
                                     "relative path inside the release, such as 'Coat/coat-p01_t0001_front.jpg'")
        name = _nfc(name)
        if name in rows:
            raise ReleaseLayoutError(f"{path}:{n}: file_name {name!r} appears twice (first on line {rows[name][0]})")
        rows[name] = (n, row)
    return rows


@dataclass
class _Listing:
    files: list[tuple[str, bool]] = field(default_factory=list)  # (rel, reached through a link leading outside)
    rejected: list[Rejected] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)
    outside_links: list[str] = field(default_factory=list)


def _category_folder(root: Path, name: str) -> None:
    try:
        normalize_category(name)
    except UnknownCategoryError as e:
        raise ReleaseLayoutError(f"{root / name}: {e}") from None


def _list_release(root: Path, follow_outside_links: bool) -> _Listing:
    """Every entry under `root`, classified without opening any file.

    Real folders are walked first (files of a folder before its subfolders, names sorted: the order decides which of
    two duplicates is kept), then symbolic links to folders, each folder listed once whatever the number of paths
    to it, so a link to an ancestor or a sibling cannot loop or list files twice.
    """
    out = _Listing()
    root_real = os.path.realpath(root)
    prefix = root_real.rstrip(os.sep) + os.sep

    def inside(real: str) -> bool:
        return real == root_real or real.startswith(prefix)

    listed: dict[tuple[int, int], str] = {}  # (st_dev, st_ino) of every folder listed -> its path
    pending: list[tuple[str, bool]] = []  # symbolic links to folders, followed once the real tree is listed

    def walk(top: str, st: os.stat_result, outside: bool) -> None:
        stack = [(top, st)]
        while stack:
            rel_dir, st = stack.pop()
            ident = (st.st_dev, st.st_ino)
            if ident in listed:
                first = listed[ident]
                loop = first == "" or (rel_dir + "/").startswith(first + "/")
                out.rejected.append(Rejected(rel_dir, "link-loop" if loop else "duplicate",
                                             f"leads to the folder {first or '(the release root)'!r}, listed already"))
                continue
            listed[ident] = rel_dir
            try:
                with os.scandir(os.path.join(root, rel_dir) if rel_dir else root) as it:
                    entries = sorted(it, key=lambda e: e.name)
            except OSError as e:
                out.rejected.append(Rejected(rel_dir or ".", "unreadable", f"folder cannot be listed: {e.strerror or e}"))
                continue
            subdirs = []
            for e in entries:
                rel = f"{rel_dir}/{e.name}" if rel_dir else e.name
                problem = _name_problem(e.name)
                if problem is not None:
                    out.rejected.append(Rejected(_portable(rel), "bad-name", f"the name {problem}"))
                    continue
                try:
                    lst = e.stat(follow_symlinks=False)
                except OSError as err:
                    out.rejected.append(Rejected(rel, "unreadable", err.strerror or str(err)))
                    continue
                if e.name.startswith("."):
                    out.ignored.append(rel + "/" if stat.S_ISDIR(lst.st_mode) else rel)
                    continue
                mode, through = lst.st_mode, outside
                if stat.S_ISLNK(mode):
                    full = os.path.join(root, rel)
                    try:
                        target = os.stat(full)
                    except OSError as err:
                        what = "a link loop" if err.errno == errno.ELOOP else "a target that does not exist"
                        out.rejected.append(Rejected(rel, "broken-link", f"symbolic link to {what}"))
                        continue
                    if not (stat.S_ISDIR(target.st_mode) or stat.S_ISREG(target.st_mode)):
                        out.rejected.append(Rejected(rel, "special-file", f"symbolic link to "
                                                     f"{_file_kind(target.st_mode)}; only regular files are read"))
                        continue
                    if not rel_dir and stat.S_ISREG(target.st_mode):
                        out.ignored.append(rel)  # a root-level doc: never read, wherever it leads
                        continue
                    if not inside(os.path.realpath(full)):
                        if not follow_outside_links:
                            what = "a folder" if stat.S_ISDIR(target.st_mode) else "a file"
                            out.rejected.append(Rejected(
                                rel, "outside-release", f"symbolic link to {what} outside the release folder; "
                                "pass --follow-outside-links to package what it leads to"))
                            continue
                        through = True
                        out.outside_links.append(rel)
                    mode = target.st_mode
                    if stat.S_ISDIR(mode):
                        if not rel_dir:
                            _category_folder(root, e.name)
                        pending.append((rel, through))
                        continue
                if stat.S_ISDIR(mode):
                    if not rel_dir:
                        _category_folder(root, e.name)
                    subdirs.append((rel, lst))
                elif stat.S_ISREG(mode):
                    if rel_dir:
                        out.files.append((rel, through))
                    else:
                        out.ignored.append(rel)  # README, LICENSE, the sidecar at the root
                else:
                    out.rejected.append(Rejected(rel, "special-file", f"is {_file_kind(mode)}, not a regular file; "
                                                 "only regular files are read"))
            stack.extend(reversed(subdirs))

    try:
        walk("", os.stat(root), False)
    except OSError as e:
        raise ReleaseLayoutError(f"release folder {root} cannot be listed: {e.strerror or e}") from None
    while pending:
        rel, through = pending.pop(0)
        try:
            walk(rel, os.stat(os.path.join(root, rel)), through)
        except OSError as e:
            out.rejected.append(Rejected(rel, "unreadable", f"folder cannot be listed: {e.strerror or e}"))
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


def _check_file(args: tuple[str, str, int, str, int]) -> CheckResult:
    """Worker: read, hash, validate one file (module-level so process pools can pickle it). Never raises for a bad
    file: the verdict comes back as an ImageRejected, which pickles (see its __reduce__)."""
    root, rel, max_pixels, validate, max_bytes = args
    try:
        fd, st = open_regular_file(Path(root, rel))
    except ImageRejected as e:
        return rel, "", (0, 0), e
    except OSError as e:
        return rel, "", (0, 0), ImageRejected("unreadable", e.strerror or str(e))
    stamp = file_stamp(st)
    if st.st_size > max_bytes:
        os.close(fd)
        return rel, "", stamp, ImageRejected("too-large", f"{st.st_size:,} bytes is more than the {max_bytes:,} "
                                                          "an image file may have")
    try:
        with open(fd, "rb") as f:
            data = f.read(st.st_size + 1)
    except OSError as e:
        return rel, "", stamp, ImageRejected("unreadable", e.strerror or str(e))
    if len(data) != stamp[0]:
        return rel, "", stamp, ImageRejected("unreadable", "file changed size while it was being read")
    digest = hashlib.sha256(data).hexdigest()
    try:
        return rel, digest, stamp, inspect_image(data, max_pixels=max_pixels, validate=validate)
    except ImageRejected as e:
        return rel, digest, stamp, e


def _sidecar_note(name: str, given: dict[str, int], images: int) -> str:
    fields = ", ".join(f"{k} for {v}" for k, v in given.items() if v)
    return (f"metadata sidecar {name} gives {fields} of {images} image file(s); where it gives a value it overrides "
            "--pattern")


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
    missing_groups = config.missing_groups()
    if missing_groups:  # said once, up front, rather than once per file
        lacking = [k for k in missing_groups if not sidecar or any(row.get(k) in (None, "") for _, row in sidecar.values())]
        if lacking:
            where = (f"and the sidecar {sidecar_path} does not give {', '.join(lacking)} on every row" if sidecar
                     else "and there is no metadata sidecar to give it")
            raise ReleaseLayoutError(
                f"--pattern {config.pattern!r} has no named group {', '.join(repr(k) for k in missing_groups)} "
                f"{where}; name the groups, e.g. (?P<project>...)_(?P<texture>...)_(?P<view>...)")
    result = ScanResult(root=root, sidecar=str(sidecar_path) if sidecar_path else None)

    listing = _list_release(root, config.follow_outside_links)
    result.rejected.extend(listing.rejected)
    result.outside_links = listing.outside_links
    pattern = re.compile(config.pattern)
    by_path = "/" in config.pattern
    candidates: list[_Candidate] = []
    seen = {_nfc(r.source_path) for r in listing.rejected} | {_nfc(i.rstrip("/")) for i in listing.ignored}
    result.ignored.extend(listing.ignored)
    from_sidecar = dict.fromkeys(IDENTITY_FIELDS, 0)
    outside_files = 0
    for rel, through_outside in listing.files:
        seen.add(_nfc(rel))
        parts = rel.split("/")
        if rel == sidecar_rel:
            result.ignored.append(rel)
            continue
        category = normalize_category(parts[0])  # checked when the folder was listed
        suffix = os.path.splitext(parts[-1])[1].lower()
        if suffix not in IMAGE_EXTENSIONS:
            detail = (f"extension {suffix!r} is not an image extension" if suffix else "the name has no extension")
            result.rejected.append(Rejected(rel, "unsupported-extension", f"{detail}; only "
                                            f"{', '.join(sorted(IMAGE_EXTENSIONS))} files become records"))
            continue
        result.candidates += 1
        outside_files += through_outside
        stem = ("/".join(parts[1:]) if by_path else parts[-1]).rsplit(".", 1)[0]
        fields: dict[str, str] = {}
        m = pattern.fullmatch(stem) or pattern.match(stem)
        if m:
            fields.update({k: v for k, v in m.groupdict().items() if v is not None and k in IDENTITY_FIELDS})
        extra: dict = {}
        line_row = sidecar.get(_nfc(rel))
        if line_row is not None:
            for k, v in line_row[1].items():
                if k in IDENTITY_FIELDS:
                    if v not in (None, ""):
                        fields[k] = str(v)
                        from_sidecar[k] += 1
                elif k != "file_name":
                    extra[k] = v
        fields = {k: _nfc(v) for k, v in fields.items()}
        missing = [k for k in IDENTITY_FIELDS if not fields.get(k)]
        if missing:
            how = "matches no sidecar row and " if sidecar and line_row is None else ""
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

    for name in sorted(set(sidecar) - seen):
        result.rejected.append(Rejected(name, "sidecar-missing-file", f"listed in {sidecar_path} but not found"))
    if any(from_sidecar.values()):
        result.notes.append(_sidecar_note(Path(sidecar_path).name, from_sidecar, result.candidates))
    if listing.outside_links:
        shown = ", ".join(listing.outside_links[:10]) + (", ..." if len(listing.outside_links) > 10 else "")
        result.notes.append(f"followed {len(listing.outside_links)} symbolic link(s) leading outside the release "
                            f"(--follow-outside-links), {outside_files} image file(s) reached through them: {shown}")

    cache = cache or {}
    checked: dict[str, CheckResult] = {}
    todo = []
    for c in candidates:
        hit = cache.get(c.source_path)
        if hit is not None:
            with contextlib.suppress(OSError):
                st = os.stat(root / c.source_path)
                if stat.S_ISREG(st.st_mode) and file_stamp(st) == tuple(hit[2]):
                    checked[c.source_path] = hit
                    continue
        todo.append((str(root), c.source_path, config.max_pixels, config.validate, config.max_bytes))
    for r in parallel_map(_check_file, todo, workers=workers, description="validating images", progress=progress,
                          pool=pool):
        checked[r[0]] = r
    result.checked = checked
    by_identity: dict[tuple[str, str, str, str], str] = {}
    by_key: dict[str, tuple[tuple[str, str, str, str], str]] = {}
    by_content: dict[str, str] = {}
    for cand in candidates:
        rel, digest, stamp, info = checked[cand.source_path]
        if isinstance(info, ImageRejected):
            result.rejected.append(Rejected(rel, info.reason, info.detail))
            continue
        identity = (cand.category, cand.project, cand.texture, cand.view)
        if identity in by_identity:
            result.rejected.append(Rejected(rel, "duplicate", f"same category/project/texture/view as {by_identity[identity]}"))
            continue
        key = make_key(*identity)
        if key_problem(key) is not None:  # only a name far longer than any real one: keys become file names
            result.rejected.append(Rejected(rel, "bad-name", f"its key {key[:60]!r}... {key_problem(key)}; "
                                            "shorten the project, texture or view name (or give one in --metadata)"))
            continue
        if key in by_key:  # make_key hashes non-ASCII names; two identities on one key must never merge silently
            result.rejected.append(Rejected(rel, "key-collision", f"key {key!r} is also the key of {by_key[key][1]} "
                                            f"({'/'.join(by_key[key][0])}); rename one of them"))
            continue
        if digest in by_content:
            result.rejected.append(Rejected(rel, "duplicate", f"byte-identical to {by_content[digest]}"))
            continue
        by_identity[identity] = rel
        by_key[key] = (identity, rel)
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
    result.ignored.sort()
    return result
