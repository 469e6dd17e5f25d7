"""DKI output folders: a non-empty --out needs --resume or --overwrite; --overwrite removes only what a training run
wrote; --resume takes the newest intact checkpoint of the run it continues (never another run's), falling back past
damaged ones; the folder is locked for the run (ranks of one run share it)."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from r2r.dki import DataConfig, DKIError, NegativeConfig, NegativeTrainer, RunConfig, TrainConfig, list_checkpoints
from r2r.dki.checkpoint import STATE_FILE, checkpoint_dir, checkpoint_problem
from r2r.dki.outdir import STATE_DIR, run_lock
from synfashion.fs.locks import FolderBusyError
from tests.conftest import random_pngs

RES = 64

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # see conftest.py


@pytest.fixture(scope="module")
def model(tiny_dki_model):
    return tiny_dki_model  # conftest.py: made once per test process


@pytest.fixture(scope="module")
def renders(tmp_path_factory):
    return random_pngs(tmp_path_factory.mktemp("imgs") / "renders", 4)


def _run(model, src, out, steps=3, resume=None, overwrite=False, **method) -> RunConfig:
    return RunConfig(
        model=str(model), out=str(out), data=DataConfig(source=str(src), resolution=RES, num_workers=0),
        train=TrainConfig(steps=steps, batch_size=2, lr=1e-2, checkpoint_every=1, progress=False),
        method=NegativeConfig(**method), resume=resume, overwrite=overwrite,
    )


def _steps(out):
    return [s for s, _ in list_checkpoints(out)]


def test_non_empty_folder_needs_resume_or_overwrite(model, renders, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    for overwrite in (False, True):  # a folder of the user's: never a training run's, whatever the flags
        with pytest.raises(DKIError, match=rf"{out} is not empty and holds no r2r train-negative / train-positive "
                                           r"output: it holds files no command of this project wrote \(notes\.txt\)"):
            NegativeTrainer(_run(model, renders, out, overwrite=overwrite)).setup()
    with pytest.raises(DKIError, match="exclude each other"):
        _run(model, renders, out, resume="latest", overwrite=True)
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]  # nothing written by the refused run


def test_overwrite_removes_only_what_a_run_wrote_and_resume_takes_this_runs_checkpoint(model, renders, tmp_path,
                                                                                        capsys):
    out = tmp_path / "out"
    NegativeTrainer(_run(model, renders, out, steps=3)).fit()  # run A: checkpoints 2 and 3 kept
    assert _steps(out) == [2, 3] and (out / "learned_embeds.safetensors").is_file()
    (out / "notes.txt").write_text("the user's")
    (out / "mine").mkdir()
    (out / "mine" / "data.bin").write_bytes(b"user data")
    a3 = tmp_path / "a-checkpoint-3"
    shutil.copytree(checkpoint_dir(out) / "checkpoint-00000003", a3)

    with pytest.raises(DKIError, match="not empty"):  # run B without a flag
        NegativeTrainer(_run(model, renders, out, steps=2)).fit()
    b = NegativeTrainer(_run(model, renders, out, steps=2, overwrite=True))
    b.fit()
    assert "overwrite" in capsys.readouterr().err
    assert _steps(out) == [1, 2]  # A's checkpoints went, B's are there
    assert (out / "notes.txt").read_text() == "the user's" and (out / "mine" / "data.bin").read_bytes() == b"user data"
    assert (out / "learned_embeds.safetensors").is_file() and (out / "README.md").is_file()

    # a checkpoint of run A turns up again (a sync, a copy): a resume of B must never pick it, though it is newer
    shutil.copytree(a3, checkpoint_dir(out) / "checkpoint-00000003")
    resumed = NegativeTrainer(_run(model, renders, out, steps=2, resume="latest")).setup()
    err = capsys.readouterr().err
    assert resumed.resumed_from.name == "checkpoint-00000002" and resumed.state.step == 2
    assert resumed.state.run_id == b.state.run_id != json.loads((a3 / STATE_FILE).read_text())["run_id"]
    assert "ignored checkpoint-00000003: it belongs to another run" in err
    assert "from " + str(checkpoint_dir(out) / "checkpoint-00000002") in err  # says which one is resumed
    resumed.close()


def test_overwrite_keeps_a_changed_output_and_refuses_to_write_over_it(model, renders, tmp_path):
    out = tmp_path / "out"
    NegativeTrainer(_run(model, renders, out, steps=1)).fit()
    (out / "README.md").write_text("my own notes on this model")  # the user edited the card
    with pytest.raises(DKIError, match=r"README\.md is in the way .* not recorded as written by a training run"):
        NegativeTrainer(_run(model, renders, out, steps=1, overwrite=True)).setup()
    assert (out / "README.md").read_text() == "my own notes on this model"
    assert (out / "learned_embeds.safetensors").is_file() and _steps(out) == [1]  # a refused run removed nothing
    # a folder of the user's with a file at an output path: refused before any training, nothing removed
    other = tmp_path / "other"
    other.mkdir()
    (other / "learned_embeds.safetensors").write_bytes(b"the user's own")
    with pytest.raises(DKIError, match=r"holds no r2r train-negative .* \(learned_embeds\.safetensors\)"):
        NegativeTrainer(_run(model, renders, other, steps=1, overwrite=True)).setup()
    assert (other / "learned_embeds.safetensors").read_bytes() == b"the user's own"


def test_resume_falls_back_past_damaged_checkpoints(model, renders, tmp_path, capsys):
    out = tmp_path / "out"
    NegativeTrainer(_run(model, renders, out, steps=3)).fit()
    c2, c3 = (checkpoint_dir(out) / f"checkpoint-0000000{i}" for i in (2, 3))
    (c3 / "model.safetensors").write_bytes(b"")  # zero bytes (a crash, a full disk)
    assert checkpoint_problem(c3) == "model.safetensors is empty (0 bytes)" and checkpoint_problem(c2) is None
    t = NegativeTrainer(_run(model, renders, out, steps=3, resume="latest")).setup()
    assert t.resumed_from == c2 and t.state.step == 2
    assert "skipped checkpoint-00000003: model.safetensors is empty (0 bytes)" in capsys.readouterr().err
    t.close()

    # an optimizer state that is a zip archive whose pickle weights_only refuses: found at load time, skipped too
    torch.save({"state": {}, "param_groups": [], "payload": _Payload()}, c3 / "optimizer.bin")
    _fix_sizes(c3)
    (c3 / "model.safetensors").write_bytes((c2 / "model.safetensors").read_bytes())
    _fix_sizes(c3)
    assert checkpoint_problem(c3) is None
    t = NegativeTrainer(_run(model, renders, out, steps=3, resume="latest")).setup()
    assert t.resumed_from == c2
    err = capsys.readouterr().err
    assert "skipped checkpoint-00000003: UnpicklingError" in err, err
    t.close()

    # an explicit checkpoint starts a new folder from it (a copy elsewhere), and a damaged one is refused by name
    t = NegativeTrainer(_run(model, renders, tmp_path / "elsewhere", steps=3, resume=str(c2))).setup()
    assert t.resumed_from == c2 and t.state.step == 2
    t.close()
    with pytest.raises(DKIError, match=r"checkpoint-00000003: cannot resume from this checkpoint: model\.safetensors"):
        (c3 / "model.safetensors").write_bytes(b"")
        NegativeTrainer(_run(model, renders, tmp_path / "elsewhere2", steps=3, resume=str(c3))).setup()
    assert not (tmp_path / "elsewhere2").exists()  # a refused run leaves no empty folder behind

    # a pickle where the safetensors weights belong, in every checkpoint: a clear error, nothing resumed
    for c in (c2, c3):
        torch.save({"w": torch.zeros(2)}, c / "model.safetensors")
    with pytest.raises(DKIError, match=r"no intact checkpoint of run \w+ .*model\.safetensors.*pickle"):
        NegativeTrainer(_run(model, renders, out, steps=3, resume="latest")).setup()


class _Payload:
    """A class weights_only=True refuses to rebuild (it is not a tensor or plain container)."""


def _fix_sizes(ckpt):
    state = json.loads((ckpt / STATE_FILE).read_text())
    state["files"] = {name: (ckpt / name).stat().st_size for name in state["files"]}
    (ckpt / STATE_FILE).write_text(json.dumps(state))


def test_folder_is_locked_for_the_run_and_ranks_share_it(model, renders, tmp_path):
    out = tmp_path / "out"
    first = NegativeTrainer(_run(model, renders, out, steps=1)).setup()  # holds the folder until fit/close
    with pytest.raises(FolderBusyError, match=str(out)):
        NegativeTrainer(_run(model, renders, out, steps=1, resume="latest")).setup()
    first.close()
    NegativeTrainer(_run(model, renders, out, steps=1, resume="latest")).setup().close()  # free again
    # a multi-process run: every rank takes a slot of the shared lock; a second run of any rank is refused
    shared = tmp_path / "shared"
    with run_lock(shared, 0, 2), run_lock(shared, 1, 2):
        assert (shared / STATE_DIR / "locks" / "rank-1.lock").is_file()
        with pytest.raises(FolderBusyError):
            with run_lock(shared, 0, 1):
                pass
        with pytest.raises(FolderBusyError):
            with run_lock(shared, 1, 2):
                pass
