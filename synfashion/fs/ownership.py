"""Whose folder is this: the one answer every command that writes a folder gets before it writes anything.

A command writes only into a folder that does not exist, is empty, or already bears that command's mark. Anything
else is refused with one line naming the folder and its owner, whatever the flags (`--overwrite` replaces only an
earlier output of the same command, and each command removes only what it provably wrote). The marks, read at the
top of the folder (`owner_of`):

| writer (`WRITERS` key) | its mark |
|---|---|
| `build` (synfashion build) | manifest.json of kind "synfashion", or `.synfashion-build/` of that kind (interrupted) |
| `translate-dataset` | manifest.json of kind "translated", or `.synfashion-build/` of that kind |
| `dki` (train-negative / -positive) | `.r2r-dki/run.json` of a training method, or a `checkpoints/*/trainer_state.json` |
| `downstream` | `.r2r-dki/run.json` of method "downstream" |
| `ablate` | ablation.json |
| `translate-images` | r2r_run.json |
| `report`, `study-page`, `tiny-model` | `OWNER_FILE` naming the command: they keep no record of their own |

A built folder gets no marker (verify accounts for every file in it; its manifest is its mark). A state folder that
holds only lock files (ranks starting side by side) marks nothing. `check_apart` is the other half: the folders a run
reads (its source, real photos, evaluation files, model) are never, never contain and never sit inside its output.

`OwnedFolder` is the mark of the three commands without a record: `OWNER_FILE` names the command and keeps a ledger
(size and sha256) of the files it wrote, plus the settings the command compares on a rerun; a file is the command's
only while its bytes still match. This module reads marks and removes only ledger files whose bytes still match.
Imports nothing else of the project but `filehash` and `atomic`.
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from .atomic import TMP_MARK, write_json_atomic
from .filehash import file_sha256

OWNER_FILE = ".owner.json"
OWNER_FORMAT = "synfashion-owner/1"


@dataclass(frozen=True)
class Writer:
    key: str
    command: str  # as the user types it
    what: str  # what its folder holds, after "a" / "an"


WRITERS: dict[str, Writer] = {w.key: w for w in (
    Writer("build", "synfashion build", "SynFashion build (synfashion build)"),
    Writer("translate-dataset", "r2r translate-dataset", "translated dataset (r2r translate-dataset)"),
    Writer("dki", "r2r train-negative / train-positive", "DKI training run (r2r train-negative / train-positive)"),
    Writer("downstream", "r2r downstream", "downstream comparison (r2r downstream)"),
    Writer("ablate", "r2r ablate", "ablation (r2r ablate)"),
    Writer("translate-images", "r2r translate-images", "translate-images output (r2r translate-images)"),
    Writer("report", "r2r report", "report page (r2r report)"),
    Writer("study-page", "r2r study-page", "study page (r2r study-page)"),
    Writer("tiny-model", "r2r tiny-model", "tiny model (r2r tiny-model)"),
)}
BUILD_KINDS = {"synfashion": "build", "translated": "translate-dataset"}  # manifest kind -> writer

# the marks (names shared with the modules that write them; kept here so that reading a mark imports nothing)
MANIFEST = "manifest.json"
BUILD_STATE = ".synfashion-build"
DKI_STATE = ".r2r-dki"
DKI_RECORD = "run.json"
ABLATION_RECORD = "ablation.json"
TRANSLATE_IMAGES_RECORD = "r2r_run.json"


class OwnershipError(RuntimeError):
    """A folder this command may not write (another command's output, a user's files, or one of its inputs)."""


@dataclass(frozen=True)
class Owner:
    """Who wrote a non-empty folder: `writer` (a `WRITERS` key, None: no command of this project) and how we know."""

    writer: str | None
    evidence: str
    finished: bool = True  # False: an interrupted run (its state folder, no result yet)

    def describe(self) -> str:
        if self.writer is None:
            return f"files no command of this project wrote ({self.evidence})"
        state = "a finished" if self.finished else "an interrupted"
        return f"{state} {WRITERS[self.writer].what}"


def _read_json(path: Path) -> object:
    """A small JSON file's content, None when it is missing, not a regular file or not JSON (never blocks)."""
    try:
        st = os.lstat(path)
        if not stat.S_ISREG(st.st_mode) or st.st_size > 64 * 2**20:
            return None
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _build_state_kind(state: Path) -> str | None:
    """The kind of the interrupted build in `.synfashion-build/` (None: only lock files, no build yet)."""
    with contextlib.suppress(OSError):
        return (state / "kind").read_text().strip()
    if (state / "fingerprint").is_file():  # written before kinds were recorded: translate-dataset kept settings.json
        return "translated" if (state / "settings.json").is_file() else "synfashion"
    return None


def _shown(names: Iterable[str], n: int = 5) -> str:
    names = sorted(names)
    return ", ".join(names[:n]) + (f" and {len(names) - n} more" if len(names) > n else "")


def owner_of(folder: str | Path) -> Owner | None:
    """Who wrote `folder`; None when it does not exist or holds nothing (lock-only state folders do not count).

    Raises `OwnershipError` when `folder` exists but is not a folder."""
    folder = Path(folder)
    if not folder.exists() and not folder.is_symlink():
        return None
    if not folder.is_dir():
        raise OwnershipError(f"output {folder} exists and is not a folder")
    names = {p.name for p in folder.iterdir()}
    marker = _read_json(folder / OWNER_FILE)
    if isinstance(marker, dict) and marker.get("format") == OWNER_FORMAT and marker.get("writer") in WRITERS:
        return Owner(marker["writer"], OWNER_FILE)
    manifest = _read_json(folder / MANIFEST)
    if isinstance(manifest, dict) and manifest.get("kind") in BUILD_KINDS:
        return Owner(BUILD_KINDS[manifest["kind"]], f"{MANIFEST} of kind {manifest['kind']!r}")
    if BUILD_STATE in names:
        kind = _build_state_kind(folder / BUILD_STATE)
        if kind in BUILD_KINDS:
            return Owner(BUILD_KINDS[kind], f"{BUILD_STATE}/ of kind {kind!r}", finished=False)
        if kind is None:
            names.discard(BUILD_STATE)
    record = _read_json(folder / DKI_STATE / DKI_RECORD)
    if isinstance(record, dict):
        writer = "downstream" if record.get("method") == "downstream" else "dki"
        return Owner(writer, f"{DKI_STATE}/{DKI_RECORD} of method {record.get('method')!r}")
    if DKI_STATE in names and not (folder / DKI_STATE / DKI_RECORD).exists():
        names.discard(DKI_STATE)  # lock slots only
    if any((folder / "checkpoints").glob("*/trainer_state.json")):
        return Owner("dki", "checkpoints/ of a DKI training run (no run record)")
    if isinstance(_read_json(folder / ABLATION_RECORD), dict):
        return Owner("ablate", ABLATION_RECORD)
    if isinstance(_read_json(folder / TRANSLATE_IMAGES_RECORD), dict):
        return Owner("translate-images", TRANSLATE_IMAGES_RECORD)
    if not names:
        return None
    return Owner(None, _shown(names))


def check_apart(out: str | Path, inputs: Mapping[str, str | Path | None]) -> None:
    """Refuse an output folder that is, contains or lies inside one of `inputs` (name -> a folder or file the run
    reads; None and non-paths such as Hub ids are skipped): writing there could replace or mix with what the run
    reads. Symbolic links are resolved first."""
    target = Path(out).resolve()
    for name, where in inputs.items():
        if where is None or not Path(where).exists():
            continue
        src = Path(where).resolve()
        if target == src or src.is_relative_to(target) or target.is_relative_to(src):
            how = "is" if target == src else "contains" if src.is_relative_to(target) else "lies inside"
            raise OwnershipError(f"output folder {out} {how} the {name} {where}; choose a folder of its own (nothing "
                                 "was changed)")


def claim(out: str | Path, writer: str, *, inputs: Mapping[str, str | Path | None] | None = None) -> Owner | None:
    """Read-only: refuse (`OwnershipError`, one line) unless `out` is new, empty or `writer`'s own, and apart from
    `inputs` (see `check_apart`). Returns the folder's owner (None: new or empty). Call it before any other work."""
    if writer not in WRITERS:
        raise ValueError(f"unknown writer {writer!r}; one of {sorted(WRITERS)}")
    if inputs:
        check_apart(out, inputs)
    owner = owner_of(out)
    if owner is None or owner.writer == writer:
        return owner
    mine = WRITERS[writer]
    if owner.writer is None:
        raise OwnershipError(f"output folder {out} is not empty and holds no {mine.command} output: it holds "
                             f"{owner.describe()}; it is never written from here, --overwrite or not. Choose another "
                             "folder (nothing in it was changed)")
    raise OwnershipError(f"{out} holds {owner.describe()} ({owner.evidence}), not an output of {mine.command}; it is "
                         "never replaced from here, --overwrite or not. Choose another folder (nothing in it was "
                         "changed)")


# ------------------------------------------------------------------------------------------------ the marker
def _regular_size(path: Path) -> int | None:
    try:
        st = os.lstat(path)
    except OSError:
        return None
    return st.st_size if stat.S_ISREG(st.st_mode) else None


def prune_empty_parents(folder: Path, root: Path) -> None:
    """Remove `folder` and its parents while they are empty, up to (not including) `root`: what is left of a file
    this code removed, never a folder holding anything."""
    while folder != root and root in folder.parents:
        try:
            folder.rmdir()
        except OSError:
            return
        folder = folder.parent


class OwnedFolder:
    """The folder of a command that keeps no record of its own (`report`, `study-page`, `tiny-model`), marked by
    `OWNER_FILE`: {"format", "writer", "files": {relative path: {"size", "sha256"} or {"pending": true}},
    "settings"}. Usage: `claim` (read-only), then `begin` (the mark, before the first write), `writing(names)`
    around the writes, `remove_owned` for an overwrite."""

    def __init__(self, folder: str | Path, writer: str):
        if writer not in WRITERS:
            raise ValueError(f"unknown writer {writer!r}")
        self.folder, self.writer = Path(folder), writer
        self.record: dict = {"format": OWNER_FORMAT, "writer": writer, "files": {}, "settings": None}

    @property
    def path(self) -> Path:
        return self.folder / OWNER_FILE

    def claim(self, *, inputs: Mapping[str, str | Path | None] | None = None) -> bool:
        """`claim(folder, writer)`; True when the folder already was ours (its ledger is then loaded)."""
        owner = claim(self.folder, self.writer, inputs=inputs)
        if owner is None:
            return False
        data = _read_json(self.path)
        if isinstance(data, dict) and isinstance(data.get("files"), dict):
            self.record.update(files=dict(data["files"]), settings=data.get("settings"))
        return True

    @property
    def settings(self) -> object:
        return self.record.get("settings")

    def owns(self, rel: str) -> bool:
        """`rel` is a file this command wrote here and its bytes are still what it wrote (or its write was under
        way: a pending entry)."""
        entry = self.record["files"].get(rel)
        if not isinstance(entry, dict):
            return False
        path = self.folder / rel
        if entry.get("pending"):  # written by an earlier run of ours that stopped before recording it
            return _regular_size(path) is not None
        size = _regular_size(path)
        return size is not None and size == entry.get("size") and file_sha256(path) == entry.get("sha256")

    def in_the_way(self, rels: Iterable[str]) -> list[str]:
        """Those of `rels` that exist here but are not (or no longer) this command's."""
        return sorted(rel for rel in rels
                      if (os.path.lexists(self.folder / rel)) and not self.owns(rel))

    def refuse_in_the_way(self, rels: Iterable[str]) -> None:
        bad = self.in_the_way(rels)
        if bad:
            raise OwnershipError(f"{self.folder}: {_shown(bad)} {'is' if len(bad) == 1 else 'are'} where "
                                 f"{WRITERS[self.writer].command} writes, but not recorded as written by it (or changed "
                                 "since): move them away, or choose another folder (nothing was changed)")

    def _save(self) -> None:
        write_json_atomic(self.path, self.record, durable=False)

    def begin(self, settings: object = None) -> None:
        """Mark the folder as this command's (before its first write), with the settings a rerun compares."""
        self.folder.mkdir(parents=True, exist_ok=True)
        self.record["settings"] = settings
        self._save()

    @contextlib.contextmanager
    def writing(self, rels: Iterable[str], settings: object = None) -> Iterator[None]:
        """`rels` recorded as pending while the block writes them, with size and sha256 once it finished (a crash
        in between leaves them attributable to this command); `settings`, when given, are recorded with them (what
        the folder now holds was made with those)."""
        rels = list(rels)
        self.refuse_in_the_way(rels)
        for rel in rels:
            self.record["files"][rel] = {"pending": True}
        self._save()
        yield
        if settings is not None:
            self.record["settings"] = settings
        self.record_files(rels)

    def record_files(self, rels: Iterable[str]) -> None:
        """Record what is now at `rels` as written by this command (files that are not there are forgotten)."""
        for rel in rels:
            path = self.folder / rel
            size = _regular_size(path)
            if size is None:
                self.record["files"].pop(rel, None)
            else:
                self.record["files"][rel] = {"size": size, "sha256": file_sha256(path)}
        self._save()

    def remove_owned(self, keep: Iterable[str] = ()) -> list[str]:
        """Remove the files this command provably wrote here (ledger entries whose bytes still match), but `keep`;
        folders they leave empty go too. Returns what was removed."""
        keep, removed = set(keep), []
        for rel in sorted(self.record["files"]):
            if rel in keep:
                continue
            path = self.folder / rel
            if os.path.lexists(path):
                if not self.owns(rel):
                    continue  # changed since: not provably ours, kept (and kept in the ledger)
                path.unlink()
                removed.append(rel)
            del self.record["files"][rel]
            prune_empty_parents(path.parent, self.folder)
        for p in self.folder.glob(f"{OWNER_FILE}{TMP_MARK}*"):
            p.unlink(missing_ok=True)
        self._save()
        return removed

    def abandon(self) -> None:
        """After a run that failed: the mark goes when the folder holds nothing else (empty folders aside), so the
        corrected command finds the folder as it was; anything written keeps it marked (and attributable)."""
        with contextlib.suppress(OSError):
            for p in sorted(self.folder.rglob("*"), key=lambda p: -len(p.parts)):
                if p.is_dir() and not p.is_symlink():
                    with contextlib.suppress(OSError):
                        p.rmdir()
            if [p.name for p in self.folder.iterdir()] == [OWNER_FILE]:
                self.path.unlink()
