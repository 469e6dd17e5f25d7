"""The output folder of a DKI training run: whether this run may write there, and what in it is ours.

Why: a second `r2r train-...` into the same `--out` used to overwrite the first one silently, and `--resume` then
picked whichever checkpoint had the highest step, whoever wrote it. The rules here:

- a folder that is not new, empty or a DKI run's (`.r2r-dki/run.json`, or checkpoints of ours) is refused
  whatever the flags, and so is one that is, holds or sits in the run's data or model (`synfashion.fs.ownership`);
- a non-empty folder needs `resume` (continue the run recorded there) or `overwrite` (start a new one);
- every run has an id, kept in `OUT/.r2r-dki/run.json` and in each of its checkpoints, so a resume only ever
  takes a checkpoint of the run it continues;
- `overwrite` removes only what a training run provably wrote: checkpoint folders (recognised by their
  `trainer_state.json`; only the files their save listed, or accelerate's own file names), the outputs in the run
  record's ledger whose size and sha256 still match, and `.r2r-dki/`. A file the user changed or put there stays;
- a file at a path the run will write that is not ours is refused by name before any training;
- the folder is locked for the run (synfashion.fs.locks.folder_lock): one process holds it exclusively; the ranks
  of one multi-process run share it and each holds a slot of its own, so they never refuse each other while a
  second run is refused.

`TrainingFolder` holds these rules; `FolderClaim` is a run's hold on the folder (the lock, the decision taken on
every rank, and undoing a fresh claim whose setup failed). This module deletes nothing it cannot attribute to a run;
it never touches other files of the folder.
"""

from __future__ import annotations

import contextlib
import json
import re
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from synfashion.fs.filehash import file_sha256
from synfashion.fs.ownership import prune_empty_parents

from .checkpoint import CHECKPOINTS, STATE_FILE, TMP_PREFIX, TrainerState
from .errors import DKIError

STATE_DIR = ".r2r-dki"
RECORD = "run.json"
LOCKS = "locks"
# What accelerate's save_state and our CheckpointManager write into a checkpoint folder (checkpoints saved before
# their file list was recorded are cleared by these names only).
_CHECKPOINT_FILES = re.compile(
    r"^(model(_\d+)?\.safetensors|optimizer(_\d+)?\.bin|scheduler(_\d+)?\.bin|sampler(_\d+)?\.bin|"
    r"dl_state_dict(_\d+)?\.bin|random_states_\d+\.pkl|scaler\.pt|custom_checkpoint_\d+\.pkl|\w+\.safetensors|"
    + re.escape(STATE_FILE) + r")$")


def _is_ours_checkpoint(path: Path) -> TrainerState | None:
    """The state of a checkpoint folder we wrote (its trainer_state.json has our fields), else None."""
    try:
        state = TrainerState.from_file(path / STATE_FILE)
    except (OSError, ValueError, TypeError):
        return None
    return state if isinstance(state.fingerprint, dict) and "method" in state.fingerprint else None


def _remove_checkpoint(path: Path, state: TrainerState | None) -> bool:
    """Remove a checkpoint folder's files that its save wrote; the folder goes if nothing else is left."""
    names = set(state.files) | {STATE_FILE} if state is not None and state.files else None
    for f in path.iterdir():
        if f.is_file() and (f.name in names if names is not None else bool(_CHECKPOINT_FILES.match(f.name))):
            f.unlink()
    with contextlib.suppress(OSError):
        path.rmdir()
    return not path.exists()


@dataclass
class Decision:
    """What the run does with its folder: the run id, and the checkpoints to try for a resume (newest first)."""

    run_id: str
    fresh: bool  # a new run (new id), as opposed to continuing the recorded one
    candidates: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # what the user should read (skipped checkpoints, ...)


class TrainingFolder:
    """One run's view of its output folder. `planned`: relative paths the run writes (a trailing '/' = a folder).
    `inputs`: what the run reads (name -> path: training data, model), never the folder's neighbours."""

    def __init__(self, out: str | Path, method: str, planned: list[str], inputs: dict | None = None):
        self.out = Path(out)
        self.method = method
        self.planned = list(planned)
        self.inputs = dict(inputs or {})

    def check_owner(self) -> None:
        """Refuse, whatever the flags, a folder that is not new, empty or a run of this command (DKI training or
        `r2r downstream`: `synfashion.fs.ownership`), or one that is, holds or sits in one of the run's inputs."""
        from synfashion.fs.ownership import OwnershipError, claim

        try:
            claim(self.out, "downstream" if self.method == "downstream" else "dki", inputs=self.inputs)
        except OwnershipError as e:
            raise DKIError(str(e)) from None

    # ------------------------------------------------------------------------------------------ record
    @property
    def record_path(self) -> Path:
        return self.out / STATE_DIR / RECORD

    def read_record(self) -> dict | None:
        try:
            data = json.loads(self.record_path.read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as e:
            raise DKIError(f"{self.record_path}: unreadable run record ({e}); pass --overwrite to start a new run")
        if not isinstance(data, dict) or not isinstance(data.get("run_id"), str):
            raise DKIError(f"{self.record_path}: not a run record of r2r; pass --overwrite to start a new run")
        data.setdefault("outputs", {})
        return data

    def _write_record(self, record: dict) -> None:
        from synfashion.fs.atomic import write_json_atomic

        write_json_atomic(self.record_path, record)

    # ------------------------------------------------------------------------------------------ deciding
    def decide(self, *, resume: str | None, overwrite: bool, fingerprint: dict) -> Decision:
        """Read-only: may this run use the folder, under which run id, from which checkpoints? Same on every rank."""
        from .checkpoint import check_fingerprint, checkpoint_problem, list_checkpoints

        if resume is not None and overwrite:
            raise DKIError("--resume and --overwrite exclude each other")
        self.check_owner()
        busy = self.out.is_dir() and any(self.out.iterdir())
        if self.out.exists() and not self.out.is_dir():
            raise DKIError(f"--out {self.out} is a file, not a folder")
        if busy and resume is None and not overwrite:
            raise DKIError(f"{self.out} is not empty: pass --resume to continue the training run in it, --overwrite to "
                           "start a new one (removes only what a training run wrote there), or choose another --out")
        if resume is not None and resume != "latest":  # an explicit checkpoint folder (here or elsewhere)
            path = Path(resume)
            if not (path / STATE_FILE).is_file():
                raise DKIError(f"{path}: not a complete DKI checkpoint (no {STATE_FILE}); pass --resume without a "
                               f"value to continue from the newest intact checkpoint in {self.out / CHECKPOINTS}")
            problem = checkpoint_problem(path)
            if problem:
                raise DKIError(f"{path}: cannot resume from this checkpoint: {problem}")
            state = TrainerState.from_file(path / STATE_FILE)
            return Decision(run_id=state.run_id or uuid.uuid4().hex, fresh=False, candidates=[path])
        if overwrite or not busy:
            return Decision(run_id=uuid.uuid4().hex, fresh=True)
        record = self.read_record()
        found = list_checkpoints(self.out)
        if record is None:
            if found:
                raise DKIError(f"{self.out / CHECKPOINTS} holds checkpoints but {self.out} has no run record "
                               f"({STATE_DIR}/{RECORD}: written by an older r2r, or copied in), so which run they "
                               "belong to is unknown: pass --resume CHECKPOINT_FOLDER to choose one, or --overwrite")
            return Decision(run_id=uuid.uuid4().hex, fresh=True)
        run_id = record["run_id"]
        decision = Decision(run_id=run_id, fresh=False)
        for step, path in reversed(found):
            state = _is_ours_checkpoint(path)
            if state is None:
                decision.notes.append(f"skipped {path.name}: {STATE_FILE} is unreadable")
                continue
            if state.run_id != run_id:
                decision.notes.append(f"ignored {path.name}: it belongs to another run ({state.run_id or 'no id'})")
                continue
            problem = checkpoint_problem(path)
            if problem:
                decision.notes.append(f"skipped {path.name}: {problem}")
                continue
            decision.candidates.append(path)
        damaged = [n for n in decision.notes if n.startswith("skipped")]
        if not decision.candidates and damaged:
            raise DKIError(f"no intact checkpoint of run {run_id} in {self.out / CHECKPOINTS} ({'; '.join(damaged)}); "
                           "start a new run with --overwrite")
        if not decision.candidates:  # the run stopped before its first checkpoint: start it again from step 0
            check_fingerprint(record.get("fingerprint", {}), fingerprint, self.record_path)
        return decision

    def collisions(self, record: dict | None, names: list[str] | None = None) -> list[str]:
        """Planned paths (or `names`) that hold a file which is not a recorded, unchanged output of ours."""
        ours = (record or {}).get("outputs", {})
        bad = []
        for rel in self.planned if names is None else names:
            target = self.out / rel
            files = [p for p in target.rglob("*") if p.is_file()] if target.is_dir() else \
                [target] if target.exists() else []
            for f in files:
                name = f.relative_to(self.out).as_posix()
                if not self._owned(name, ours):
                    bad.append(name)
        return bad

    def _owned(self, name: str, ours: dict) -> bool:
        entry = ours.get(name)
        if entry is None:  # under a folder recorded as pending (a write that was under way)?
            return any(k.endswith("/") and v.get("pending") and name.startswith(k) for k, v in ours.items())
        if entry.get("pending"):
            return True
        path = self.out / name
        return path.stat().st_size == entry.get("size") and file_sha256(path) == entry.get("sha256")

    # ------------------------------------------------------------------------------------------ applying
    def apply(self, decision: Decision, *, overwrite: bool, fingerprint: dict) -> list[str]:
        """Main process: clear an earlier run (overwrite), refuse foreign files at planned paths, write the record.

        Returns what was removed (relative paths)."""
        self.check_owner()  # again, holding the folder: never another command's folder or a user's
        try:
            before = self.read_record()
        except DKIError:
            before = None
        bad = self.collisions(before)  # checked before anything is removed: a refused run changes nothing
        if bad:
            hint = "" if before else \
                f" ({self.out} has no run record: written by hand, or by an r2r older than run records)"
            raise DKIError(f"{self.out}: {', '.join(bad[:5])} {'is' if len(bad) == 1 else 'are'} in the way of this "
                           "run's outputs and not recorded as written by a training run here (or changed since): "
                           f"move them away, or choose another --out{hint}")
        removed = self.remove_ours() if overwrite else []
        record = None if decision.fresh else self.read_record()
        if record is None or record.get("run_id") != decision.run_id:
            outputs = (record or {}).get("outputs", {}) if not decision.fresh else {}
            record = {"run_id": decision.run_id, "method": self.method, "fingerprint": fingerprint,
                      "outputs": outputs}
        self.out.mkdir(parents=True, exist_ok=True)
        self._write_record(record)
        return removed

    def remove_ours(self) -> list[str]:
        """Remove what training runs provably wrote here (see the module docstring); returns what went."""
        removed: list[str] = []
        ckpts = self.out / CHECKPOINTS
        if ckpts.is_dir():
            for p in sorted(ckpts.iterdir()):
                if p.is_dir() and p.name.startswith(TMP_PREFIX):
                    shutil.rmtree(p)
                    removed.append(p.relative_to(self.out).as_posix())
                elif p.is_dir() and (state := _is_ours_checkpoint(p)) is not None:
                    if _remove_checkpoint(p, state):
                        removed.append(p.relative_to(self.out).as_posix())
            with contextlib.suppress(OSError):
                ckpts.rmdir()
        try:
            record = self.read_record()
        except DKIError:
            record = None
        for name, entry in sorted(((record or {}).get("outputs") or {}).items()):
            targets = [p for p in (self.out / name).rglob("*") if p.is_file()] if name.endswith("/") else \
                [self.out / name]
            for f in targets:
                rel = f.relative_to(self.out).as_posix()
                if f.is_file() and (name.endswith("/") or self._owned(rel, record["outputs"])):
                    f.unlink()
                    removed.append(rel)
                    prune_empty_parents(f.parent, self.out)
        state_dir = self.out / STATE_DIR
        self.record_path.unlink(missing_ok=True)
        for lock in (state_dir / LOCKS).glob("rank-*.lock"):
            lock.unlink()
        for d in (state_dir / LOCKS, state_dir):
            with contextlib.suppress(OSError):
                d.rmdir()
        return removed

    def undo_claim(self) -> None:
        """Forget a fresh run that wrote nothing but its record: the record and the lock slots."""
        self.record_path.unlink(missing_ok=True)
        for lock in (self.out / STATE_DIR / LOCKS).glob("rank-*.lock"):
            lock.unlink()
        for d in (self.out / STATE_DIR / LOCKS, self.out / STATE_DIR):
            with contextlib.suppress(OSError):
                d.rmdir()

    # ------------------------------------------------------------------------------------------ outputs
    @contextlib.contextmanager
    def writing(self, names: list[str]) -> Iterator[None]:
        """Record `names` (relative; '/' = a folder) as pending before they are written, and with their size and
        sha256 once the block finishes, so that a crash in between still leaves them attributable to this run."""
        record = self.read_record()
        if record is None:
            raise DKIError(f"{self.record_path} vanished during the run")
        bad = self.collisions(record, names)
        if bad:
            raise DKIError(f"{self.out}: {', '.join(bad[:5])} appeared during training and is not ours; move it away "
                           "and run again with --resume")
        for name in names:
            record["outputs"][name] = {"pending": True}
        self._write_record(record)
        yield
        for name in names:
            del record["outputs"][name]
            target = self.out / name
            files = sorted(p for p in target.rglob("*") if p.is_file()) if name.endswith("/") else [target]
            for f in files:
                if f.is_file():
                    record["outputs"][f.relative_to(self.out).as_posix()] = {"size": f.stat().st_size,
                                                                             "sha256": file_sha256(f)}
        self._write_record(record)


@contextlib.contextmanager
def run_lock(out: str | Path, rank: int, world: int) -> Iterator[None]:
    """The folder lock of one process of a run: exclusive for a single process, a per-rank slot otherwise."""
    from synfashion.fs.locks import folder_lock

    if world == 1:
        with folder_lock(out, "DKI training run"):
            yield
    else:
        with folder_lock(out, "DKI training run", slot=Path(out) / STATE_DIR / LOCKS / f"rank-{rank}.lock"):
            yield


class FolderClaim:
    """One run's hold on its output folder, from `claim` to `release`: the lock, the fresh / overwrite / resume
    decision, and undoing a claim that never trained.

    Why apart from `TrainingFolder`: that class is the folder's rules, file reads and writes only; this one is the
    protocol of a (possibly multi-process) run around them: who applies the decision while the others wait, which
    lock slot each rank holds, what the user is told, and what a run that failed before training leaves behind.
    """

    def __init__(self, out: str | Path):
        self.out = Path(out)
        self.folder: TrainingFolder | None = None
        self.decision: Decision | None = None
        self._existed = True
        self._main = True
        self._held = contextlib.ExitStack()

    def claim(self, method: str, planned: list[str], accelerator, *, resume: str | None, overwrite: bool,
              fingerprint: dict, inputs: dict | None = None) -> Decision:
        """Lock the folder and settle fresh / overwrite / resume; a resume's checkpoints must have our settings."""
        from r2r.progress import stderr_console

        from .checkpoint import check_fingerprint

        acc = accelerator
        rank, world, self._main = acc.process_index, acc.num_processes, acc.is_main_process
        self._existed = self.out.exists()
        if self.out.exists() and not self.out.is_dir():
            raise DKIError(f"--out {self.out} is a file, not a folder")
        self.folder = TrainingFolder(self.out, method, planned, inputs)
        kw = {"overwrite": overwrite, "fingerprint": fingerprint}
        removed: list[str] = []
        if world == 1:
            self._held.enter_context(run_lock(self.out, 0, 1))
            decision = self.folder.decide(resume=resume, **kw)
            removed = self.folder.apply(decision, **kw)
        else:
            decision = self.folder.decide(resume=resume, **kw)  # read-only: the same answer on every rank
            acc.wait_for_everyone()
            if acc.is_main_process:
                with run_lock(self.out, 0, 1):  # exclusive while the folder is cleared and the run recorded
                    removed = self.folder.apply(decision, **kw)
            acc.wait_for_everyone()
            self._held.enter_context(run_lock(self.out, rank, world))  # ranks share it, slot each
            decision.run_id = self.folder.read_record()["run_id"]  # a fresh id was drawn on the main process
        if acc.is_main_process:
            console = stderr_console()
            if removed:
                console.print(f"[yellow]overwrite[/]: removed {len(removed)} item(s) an earlier training run wrote "
                              f"in {self.out}", highlight=False)
            for note in decision.notes:
                console.print(f"[yellow]resume[/]: {note}", highlight=False)
        self.decision = decision  # applied: from here a failed setup undoes a fresh claim
        for path in decision.candidates:
            saved = TrainerState.from_file(path / STATE_FILE)
            check_fingerprint(saved.fingerprint, fingerprint, path)
        return decision

    def writing(self, names: list[str]) -> contextlib.AbstractContextManager[None]:
        """`TrainingFolder.writing`: `names` recorded as this run's outputs (call on the main process)."""
        return self.folder.writing(names)

    def release(self) -> None:
        """Unlock the folder (the end of the run, or of a failed setup)."""
        self._held.close()

    def abandon(self) -> None:
        """After a setup that failed before training (bad model, bad data): a fresh run's record goes, so the
        corrected command runs without --overwrite; the lock is released; a folder the lock created is removed."""
        if self.decision is not None and self.decision.fresh and self._main:
            self.folder.undo_claim()
        self.release()
        if not self._existed and self._main:  # the lock created it; an empty folder is not worth keeping
            with contextlib.suppress(OSError):
                self.out.rmdir()
