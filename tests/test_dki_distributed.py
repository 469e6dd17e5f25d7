"""DKI training across two CPU processes (torchrun, gloo) is one run: one output folder written by rank 0, the images
split between the ranks by the loaders' EpochSampler (disjoint draws, recorded), gradients reduced (both ranks end
with the same weights), as many optimizer steps as one process with the doubled batch, and an exact resume with the
same number of processes (a different number is refused by name).

torchrun and its two ranks are processes of the suite's warm interpreter (tests/conftest.py `warm`): each fresh one
would import torch and diffusers again (about 30 s a launch on a busy 2-core machine).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import numpy as np
import pytest
from safetensors.torch import load_file

from r2r.dki import DataConfig, DKIError, NegativeConfig, NegativeTrainer, RunConfig, TrainConfig, list_checkpoints
from r2r.dki.checkpoint import TrainerState, checkpoint_dir
from tests.conftest import random_pngs

RES = 64
STEPS = 3

pytestmark = [pytest.mark.usefixtures("one_torch_thread"), pytest.mark.slow]


@pytest.fixture(scope="module")
def model(tiny_dki_model):
    return tiny_dki_model  # conftest.py: made once per test process


@pytest.fixture(scope="module")
def renders(tmp_path_factory):
    return random_pngs(tmp_path_factory.mktemp("imgs") / "renders", 4)


def _args(model, renders, out, *, batch_size: int, steps: int = STEPS, resume: str | None = None) -> list[str]:
    args = ["train-negative", "--model", str(model), "--renders", str(renders), "--out", str(out),
            "--resolution", str(RES), "--steps", str(steps), "--batch-size", str(batch_size), "--lr", "5e-2",
            "--checkpoint-every", "1", "--num-workers", "0", "--no-progress", "--log-every", "1"]
    return args + (["--resume", resume] if resume else [])


def _torchrun(python: str, args: list[str]) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [python, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "r2r.cli",
           *args]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=420)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return proc


@pytest.fixture(scope="module")
def two_process_run(model, renders, tmp_path_factory, warm):
    out = tmp_path_factory.mktemp("two") / "out"
    _torchrun(warm.python, _args(model, renders, out, batch_size=1))
    return out


def test_two_processes_train_one_run_on_disjoint_images(two_process_run, model, renders, tmp_path):
    out = two_process_run
    record = json.loads((out / "training_run.json").read_text())
    assert record["processes"] == 2 and record["steps"] == STEPS
    split = record["distributed"]
    assert split["processes"] == 2 and split["per_process_batch"] == 1 and split["global_batch"] == 2
    ranks = split["ranks"]
    assert [r["rank"] for r in ranks] == [0, 1]
    drawn = [set(r["keys_drawn"]) for r in ranks]
    assert drawn[0] and drawn[1] and not drawn[0] & drawn[1]  # every rank's samples are its own
    assert drawn[0] | drawn[1] == {f"im{i}" for i in range(4)}  # 3 draws from a share of 2: every image was used
    assert [r["samples_drawn"] for r in ranks] == [STEPS, STEPS] and split["keys_drawn_by_several_ranks"] == 0
    assert [r["share_images"] for r in ranks] == [2, 2]
    assert ranks[0]["trained_sha256"] == ranks[1]["trained_sha256"]  # gradients were all-reduced
    # one output folder: one set of outputs, the run recorded once, both ranks' lock slots, rank 0's checkpoints
    assert sorted(p.name for p in out.iterdir()) == [".r2r-dki", "README.md", "checkpoints",
                                                     "learned_embeds.safetensors", "loss_curve.png",
                                                     "training_run.json"]
    assert sorted(p.name for p in (out / ".r2r-dki" / "locks").iterdir()) == ["rank-0.lock", "rank-1.lock"]
    assert [s for s, _ in list_checkpoints(out)] == [2, 3]
    state = TrainerState.from_file(checkpoint_dir(out) / "checkpoint-00000003" / "trainer_state.json")
    assert len(state.losses) == STEPS and state.samples == STEPS * 2 and state.fingerprint["processes"] == 2

    # one process with the doubled batch: the same number of optimizer steps and samples
    single = NegativeTrainer(RunConfig(
        model=str(model), out=str(tmp_path / "one"),
        data=DataConfig(source=str(renders), resolution=RES, num_workers=0),
        train=TrainConfig(steps=STEPS, batch_size=2, lr=5e-2, checkpoint_every=0, progress=False, log_every=1),
        method=NegativeConfig()))
    result = single.fit()
    one = json.loads((tmp_path / "one" / "training_run.json").read_text())
    assert result.steps == record["steps"] and len(result.losses) == len(state.losses)
    assert one["distributed"]["global_batch"] == split["global_batch"] and single.state.samples == state.samples

    # the same checkpoint in one process is refused, naming the number of processes
    with pytest.raises(DKIError, match=r"run of 2 process\(es\) and this run has 1: resume with 2"):
        NegativeTrainer(RunConfig(
            model=str(model), out=str(out), data=DataConfig(source=str(renders), resolution=RES, num_workers=0),
            train=TrainConfig(steps=STEPS + 1, batch_size=1, lr=5e-2, checkpoint_every=1, progress=False),
            method=NegativeConfig(), resume="latest")).setup()


def test_two_process_resume_continues_exactly(two_process_run, model, renders, tmp_path, warm):
    copy = tmp_path / "copy"
    shutil.copytree(two_process_run, copy)
    shutil.rmtree(checkpoint_dir(copy) / "checkpoint-00000003")  # as if killed after step 2
    proc = _torchrun(warm.python, _args(model, renders, copy, batch_size=1, resume="latest"))
    assert "from " in proc.stderr and "checkpoint-00000002 (step 2)" in proc.stderr
    straight = load_file(str(two_process_run / "learned_embeds.safetensors"))
    resumed = load_file(str(copy / "learned_embeds.safetensors"))
    assert resumed.keys() == straight.keys()
    for k in straight:
        assert np.allclose(resumed[k].numpy(), straight[k].numpy(), atol=1e-6)
    a = json.loads((two_process_run / "training_run.json").read_text())
    b = json.loads((copy / "training_run.json").read_text())
    assert b["resumed_from"].endswith("checkpoint-00000002") and b["processes"] == 2
    assert b["final_loss"] == pytest.approx(a["final_loss"], abs=1e-6)
