"""A full disk during DKI training (checkpoint, artifacts) or translate-images is one NoSpaceError naming the folder
("no space left on OUT: N MB needed, M MB free"), printed by `r2r` as one line with exit status 2; the space a
checkpoint needs is checked before it is written. Simulated by writes that raise ENOSPC (or torch's C++ stream
message), and for real on a small tmpfs where the machine lets us mount one."""

from __future__ import annotations

import errno
import subprocess

import pytest
import torch

import synfashion.fs.space
from r2r.cli import main
from r2r.dki import DataConfig, NegativeConfig, NegativeTrainer, RunConfig, TrainConfig, list_checkpoints
from synfashion.fs.space import NoSpaceError
from tests.conftest import random_pngs

RES = 64

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # see conftest.py


@pytest.fixture(scope="module")
def model(tiny_dki_model):
    return tiny_dki_model  # conftest.py: made once per test process


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    return random_pngs(tmp_path_factory.mktemp("imgs") / "renders", 2, size=(RES, RES))


def _run(model, src, out, steps=2, resume=None) -> RunConfig:
    return RunConfig(model=str(model), out=str(out), data=DataConfig(source=str(src), resolution=RES, num_workers=0),
                     train=TrainConfig(steps=steps, batch_size=2, lr=1e-2, checkpoint_every=1, progress=False),
                     method=NegativeConfig(), resume=resume)


def _error_lines(err: str) -> list[str]:
    assert "Traceback" not in err and "basic_ios" not in err, err
    return [line for line in err.splitlines() if line.startswith("error")]


def test_checkpoint_save_on_a_full_disk_is_one_error_and_resume_continues(model, images, tmp_path, monkeypatch,
                                                                          capsys):
    out = tmp_path / "out"
    real_save = torch.save

    def full_disk(obj, f, *a, **kw):  # what torch.save reports when its C++ stream hits ENOSPC
        if "checkpoint-00000002" in str(f):
            raise RuntimeError("basic_ios::clear: iostream error")
        return real_save(obj, f, *a, **kw)

    monkeypatch.setattr(torch, "save", full_disk)
    args = ["train-negative", "--model", str(model), "--renders", str(images), "--out", str(out), "--steps", "2",
            "--resolution", str(RES), "--batch-size", "2", "--num-workers", "0", "--checkpoint-every", "1",
            "--no-progress"]
    assert main(args) == 2
    lines = _error_lines(capsys.readouterr().err)
    assert len(lines) == 1 and lines[0].startswith(f"error: no space left on {out} while writing checkpoint "
                                                   "checkpoint-00000002"), lines
    assert "MB free" in lines[0]
    assert [s for s, _ in list_checkpoints(out)] == [1]  # the previous checkpoint is intact
    monkeypatch.setattr(torch, "save", real_save)  # space freed: the same command with --resume finishes
    assert main([*args, "--resume"]) == 0
    assert "from " + str(out / "checkpoints" / "checkpoint-00000001") in capsys.readouterr().err
    assert (out / "learned_embeds.safetensors").is_file()


def test_checkpoint_space_is_checked_up_front(model, images, tmp_path, monkeypatch):
    monkeypatch.setattr(synfashion.fs.space, "free_bytes", lambda path: 1000)
    out = tmp_path / "out"
    with pytest.raises(NoSpaceError, match=rf"no space left on {out} while writing checkpoint checkpoint-00000001: "
                                           r"[\d.]+ MB needed, 0\.0 MB free"):
        NegativeTrainer(_run(model, images, out, steps=1)).fit()
    assert not list((out / "checkpoints").iterdir())  # refused before accelerate wrote anything


def test_artifact_export_on_a_full_disk(model, images, tmp_path, monkeypatch):
    import r2r.dki.negative

    def full_disk(*a, **kw):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(r2r.dki.negative, "save_file", full_disk)
    out = tmp_path / "out"
    with pytest.raises(NoSpaceError, match=rf"no space left on {out} while writing the trained artifacts"):
        NegativeTrainer(_run(model, images, out, steps=1)).fit()
    assert not (out / "learned_embeds.safetensors").exists() and not list(out.glob("*.tmp-*"))


def test_translate_on_a_full_disk(model, images, tmp_path, monkeypatch, capsys):
    import synfashion.fs.atomic

    real = synfashion.fs.atomic.write_bytes_atomic

    def full_disk(final, data, **kw):
        if str(final).endswith(".png"):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(final, data, **kw)

    monkeypatch.setattr(synfashion.fs.atomic, "write_bytes_atomic", full_disk)
    out = tmp_path / "translated"
    args = ["translate-images", "--model", str(model), "--input", str(images), "--output", str(out), "--steps", "4",
            "--strength", "0.5", "--no-progress"]
    assert main(args) == 2
    lines = _error_lines(capsys.readouterr().err)
    assert len(lines) == 1 and lines[0].startswith(f"error: no space left on {out} while writing im0.png: "), lines


@pytest.fixture()
def full_tmpfs(tmp_path):
    """A 1 MB tmpfs filled to the last byte; skipped where mounting is not allowed (it needs root)."""
    mnt = tmp_path / "tmpfs"
    mnt.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mnt)], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({(done.stderr or done.stdout).strip() or done.returncode}); the "
                    "ENOSPC cases above are simulated")
    try:
        (mnt / "out").mkdir()
        with open(mnt / "filler", "wb", buffering=0) as f:
            try:
                while f.write(b"\0" * 4096):
                    pass
            except OSError as e:
                assert e.errno == errno.ENOSPC
        yield mnt
    finally:
        subprocess.run(["umount", str(mnt)], check=False)


def test_real_full_disk(model, images, full_tmpfs, capsys):
    out = full_tmpfs / "out" / "translated"
    assert main(["translate-images", "--model", str(model), "--input", str(images), "--output", str(out),
                 "--steps", "4", "--strength", "0.5", "--no-progress"]) == 2
    lines = _error_lines(capsys.readouterr().err)
    assert len(lines) == 1 and lines[0].startswith(f"error: no space left on {out}") and "MB free" in lines[0]
    neg = full_tmpfs / "out" / "neg"
    assert main(["train-negative", "--model", str(model), "--renders", str(images), "--out", str(neg), "--steps", "1",
                 "--resolution", str(RES), "--batch-size", "2", "--num-workers", "0", "--no-progress"]) == 2
    lines = _error_lines(capsys.readouterr().err)
    assert len(lines) == 1 and lines[0].startswith(f"error: no space left on {neg}"), lines
