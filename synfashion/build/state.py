"""Resume and ownership of an output folder: the fingerprint, the done records, and what a build may remove.

A build (of a release, or of a translated variant) keeps its state in `OUT/.synfashion-build/`: the fingerprint of
what it is building, a done record per finished output (its sha256 and size), and whatever the build stages there.
A rerun with the same fingerprint resumes; a finished build of the same fingerprint is reused. Anything else in a
non-empty folder is refused, except a finished or interrupted build of ours with `overwrite`, and then only the
files that build provably wrote are removed: each one's bytes must still hash to what our manifest or done record
says (the card: to the manifest's `card_sha256`). A user's file is never deleted, and a foreign file where this
build would write, or under data/ or webdataset/, makes the build refuse rather than mix with it.

Each build has a kind, the manifest kind it writes ("synfashion": `synfashion build`; "translated":
`r2r translate-dataset`), kept in the state folder beside the fingerprint. `overwrite` replaces only a build of the
same kind: a translated dataset's `--overwrite` never removes an original build, and the reverse. Whose folder it
is (and `check_apart`: an output folder that is, contains or lies inside a folder the run reads) is
`synfashion.fs.ownership`'s answer, the one every writing command shares; here it is a `BuildError`.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
from collections.abc import Iterable
from pathlib import Path

from ..fs import ownership
from ..fs.atomic import TMP_MARK, write_bytes_atomic, write_json_atomic
from ..fs.filehash import file_sha256
from ..manifest import MANIFEST, Manifest, ManifestError
from ..fs.safepath import path_problem

STATE_DIR = ".synfashion-build"
SETTINGS = "settings.json"  # in the state folder: the settings of the build under way, to name what differs
# State-folder files that say what a build is making, not what it made: a run that left only these wrote no output
# (it failed at its start), so it is not an interrupted build, and the next run starts afresh whatever its settings.
_BOOKKEEPING = frozenset({"kind", "fingerprint", SETTINGS, "scan-cache.json"})
CARD = "README.md"
MANAGED_DIRS = ("data", "webdataset")  # every file under these belongs to the build that wrote them


KINDS = {"synfashion": "SynFashion build (synfashion build)", "translated": "translated dataset (r2r translate-dataset)"}


class BuildError(RuntimeError):
    pass


def check_apart(out: str | Path, inputs: dict[str, str | Path]) -> None:
    """`synfashion.fs.ownership.check_apart` (an output is never, never holds and never sits in a folder the run
    reads), as a `BuildError`."""
    try:
        ownership.check_apart(out, inputs)
    except ownership.OwnershipError as e:
        raise BuildError(str(e)) from None


def fingerprint_of(identity: dict) -> str:
    """The hash of everything that determines a build's output bytes."""
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()


def _matches(path: Path, num_bytes: int | None, sha256: str | None) -> bool:
    """The file is still exactly what a record of ours says it is."""
    try:
        return path.is_file() and not path.is_symlink() and path.stat().st_size == num_bytes \
            and file_sha256(path) == sha256
    except OSError:
        return False


class BuildState:
    """The state folder of one build in `out` (see the module docstring)."""

    def __init__(self, out: str | Path, fingerprint: str, *, kind: str = "synfashion", durable: bool = False):
        if kind not in KINDS:
            raise ValueError(f"build kind must be one of {sorted(KINDS)}, got {kind!r}")
        self.out, self.fingerprint, self.kind, self.durable = Path(out), fingerprint, kind, durable
        self.dir = self.out / STATE_DIR

    # ------------------------------------------------------------------------------------------- records
    def done_record(self, rel: str) -> Path:
        return self.dir / "done" / (rel.replace("/", "__") + ".json")

    def known_entries(self) -> dict[str, dict]:
        """rel path -> manifest entry of every output an earlier run of the same plan finished (the caller
        re-hashes before reusing one)."""
        known: dict[str, dict] = {}
        with contextlib.suppress(ManifestError, OSError):
            manifest = Manifest.read(self.out)
            if manifest.fingerprint == self.fingerprint:
                known.update({s.path: s.to_dict() for s in manifest.shards})
        for record in sorted((self.dir / "done").glob("*.json")):
            with contextlib.suppress(OSError, ValueError, KeyError, TypeError):  # a torn record: written again
                entry = json.loads(record.read_text())
                if path_problem(entry["path"]) is None:
                    known[entry["path"]] = entry
        return known

    def record_done(self, rel: str, entry: dict) -> None:
        write_json_atomic(self.done_record(rel), entry, durable=self.durable)

    # ------------------------------------------------------------------------------------------- the folder
    def _stored_fingerprint(self) -> str | None:
        with contextlib.suppress(OSError):
            return (self.dir / "fingerprint").read_text().strip()
        return None

    def stored_settings(self) -> dict | None:
        """The settings an interrupted build recorded at its start (`prepare(settings=...)`), or None."""
        with contextlib.suppress(OSError, ValueError):
            stored = json.loads((self.dir / SETTINGS).read_text())
            return stored if isinstance(stored, dict) else None
        return None

    def wrote_output(self) -> bool:
        """Whether an earlier run in this folder wrote anything beyond its bookkeeping (an output, a done record,
        a staged batch, a temp file): only then is it an interrupted build."""
        if not self.out.is_dir():
            return False
        if any(p.name != STATE_DIR for p in self.out.iterdir()):
            return True
        if not self.dir.is_dir():
            return False
        for p in self.dir.rglob("*"):
            rel = p.relative_to(self.dir)
            top = len(rel.parts) == 1
            if p.is_dir() or (top and (p.name in _BOOKKEEPING or p.suffix == ".lock")) or rel.parts[0] == "locks":
                continue
            return True
        return False

    def check_kind(self, manifest: Manifest | None = None) -> None:
        """Refuse, whatever the flags, a folder that is not new, empty or a build of this kind (finished or
        interrupted): another command's output, another kind of build, a user's files (`synfashion.fs.ownership`).
        Cheap: run it before any expensive work. `manifest` is accepted for callers that read it already."""
        try:
            ownership.claim(self.out, ownership.BUILD_KINDS[self.kind])
        except ownership.OwnershipError as e:
            raise BuildError(str(e)) from None

    def prepare(self, outputs: Iterable[str], *, overwrite: bool, what: str = "build",
                describe_difference=None, clean_temps: bool = True, settings: dict | None = None) -> str:
        """Make `out` ready for this build; returns "fresh", "resume" or "finished" (same fingerprint, complete).

        `outputs`: the relative paths of the shards this build writes (the card and manifest are added here).
        Under the same fingerprint, those paths are this build's own (a killed run may have renamed an output into
        place before recording it; it is re-hashed or rewritten). `describe_difference(old_manifest_or_None)`: a
        sentence saying how an earlier build differs, for the refusal message, when the caller can tell.
        `clean_temps=False` for a rank of a distributed run: the other ranks' temp files are in flight. `settings`:
        what this build's fingerprint covers, in words a refusal can name (kept in the state folder, compared with
        `synfashion.settings.differences`). A run that failed before writing any output is no interrupted build:
        its state is replaced, whatever its settings were.
        """
        out = self.out
        outputs = set(outputs) | {CARD, MANIFEST}
        self.check_kind()  # another command's folder, another kind of build or a user's files: refused here
        stored = self._stored_fingerprint()
        if stored is not None and stored != self.fingerprint and not self.wrote_output():
            for name in _BOOKKEEPING:  # a failed start (a bad --device, ...): nothing to resume (lock files stay)
                with contextlib.suppress(FileNotFoundError):
                    (self.dir / name).unlink()
            stored = None
        manifest, manifest_problem = None, None
        if (out / MANIFEST).exists():
            try:
                manifest = Manifest.read(out)
            except ManifestError as e:
                manifest_problem = str(e)
        if stored == self.fingerprint or (stored is None and manifest is not None
                                          and manifest.fingerprint == self.fingerprint):
            self._check_foreign(outputs, owned=outputs)
            if clean_temps:
                self.remove_stale_temps()
            return "resume" if stored is not None else "finished"
        # a state folder without a fingerprint (lock files of ranks starting side by side) is not an earlier build
        others = out.is_dir() and any(p.name != STATE_DIR for p in out.iterdir())
        if others or stored is not None:
            if stored is None and manifest is None:
                why = f" ({manifest_problem})" if manifest_problem else ""
                raise BuildError(f"output folder {out} is not empty and holds no synfashion {what}{why}; choose "
                                 "another folder (nothing in it was changed)")
            if not overwrite:
                differs = describe_difference(manifest) if describe_difference else None
                state = "a finished" if stored is None else "an interrupted"
                raise BuildError(f"{out} holds {state} {what} of different inputs or settings"
                                 + (f" ({differs})" if differs else "")
                                 + "; pass --overwrite to replace it (only files that build wrote are removed), or "
                                   "choose another folder")
            owned = self._owned(manifest) | ({MANIFEST} if manifest is not None else set())
            self._check_foreign(outputs, owned=owned)  # before anything is removed: refuse, or clear only ours
            self._clear_ours(manifest, owned)
        self.dir.mkdir(parents=True, exist_ok=True)
        write_bytes_atomic(self.dir / "kind", self.kind.encode(), durable=self.durable)
        write_bytes_atomic(self.dir / "fingerprint", self.fingerprint.encode(), durable=self.durable)
        if settings is not None:
            write_json_atomic(self.dir / SETTINGS, settings, durable=self.durable)
        return "fresh"

    def _owned(self, manifest: Manifest | None) -> set[str]:
        """Relative paths of the files in `out` that a build of ours provably wrote (bytes still match)."""
        owned: set[str] = set()
        if manifest is not None:
            for s in manifest.shards:
                if _matches(self.out / s.path, s.num_bytes, s.sha256):
                    owned.add(s.path)
            card = self.out / CARD
            if manifest.card_sha256 and card.is_file() and file_sha256(card) == manifest.card_sha256:
                owned.add(CARD)
        for record in sorted((self.dir / "done").glob("*.json")):
            with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
                entry = json.loads(record.read_text())
                if path_problem(entry["path"]) is None and _matches(self.out / entry["path"], entry["num_bytes"],
                                                                   entry["sha256"]):
                    owned.add(entry["path"])
        return owned

    def _check_foreign(self, outputs: set[str], owned: set[str]) -> None:
        """Refuse when a file we did not write sits where this build writes, or among the managed folders."""
        foreign = [rel for rel in sorted(outputs) if (self.out / rel).exists() and rel not in owned]
        for top in MANAGED_DIRS:
            base = self.out / top
            if base.is_dir():
                for p in sorted(base.rglob("*")):
                    rel = p.relative_to(self.out).as_posix()
                    if (p.is_file() or p.is_symlink()) and rel not in owned and TMP_MARK not in p.name:
                        foreign.append(rel)
        foreign = sorted(set(foreign))
        if foreign:
            shown = ", ".join(foreign[:5]) + (f" and {len(foreign) - 5} more" if len(foreign) > 5 else "")
            raise BuildError(
                f"{self.out} holds file(s) that no synfashion build of these inputs wrote: {shown}. They are left "
                "untouched; move them away (or choose another folder) and run again"
            )

    def _clear_ours(self, manifest: Manifest | None, owned: set[str]) -> None:
        """Remove what an earlier build of ours provably wrote (`owned`); leave everything else where it is."""
        self.remove_stale_temps()
        for rel in sorted(owned - {MANIFEST}):
            (self.out / rel).unlink()
        if manifest is not None:
            (self.out / MANIFEST).unlink()  # last: until here the folder still says whose files these are
        shutil.rmtree(self.dir, ignore_errors=True)
        for top in MANAGED_DIRS:  # folders the removed shards leave empty
            base = self.out / top
            if base.is_dir():
                for d in sorted((p for p in base.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)):
                    with contextlib.suppress(OSError):
                        d.rmdir()
                with contextlib.suppress(OSError):
                    base.rmdir()

    def remove_stale_temps(self) -> int:
        """Temp files an interrupted run of ours left (only in our folders, and only our temp names)."""
        n = 0
        places = [self.out / d for d in (*MANAGED_DIRS, STATE_DIR)]
        candidates = [p for base in places if base.is_dir() for p in base.rglob(f"*{TMP_MARK}*")]
        candidates += [p for name in (CARD, MANIFEST) for p in self.out.glob(f"{name}{TMP_MARK}*")]
        for p in candidates:
            if p.is_file() and not p.is_symlink():
                p.unlink()
                n += 1
        return n

    def finish(self) -> None:
        """The build is complete (its manifest is in place): the state folder goes."""
        shutil.rmtree(self.dir, ignore_errors=True)
        if self.durable:
            fd = os.open(self.out, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
