"""DKI on the libraries' conventions: diffusers' learning-rate schedules, EMAModel and compute_snr (resume stays
exact with all of them), accelerate's trackers (TensorBoard events written and read back), and the launch rules
(CPU process groups, the `accelerate launch --cpu` note)."""

from __future__ import annotations

import importlib.util
import math
import types

import pytest
import torch

from r2r.dki import DataConfig, DKIError, PositiveConfig, PositiveTrainer, RunConfig, TrainConfig
from r2r.dki.launch import launched_processes, lone_cpu_launch
from r2r.dki.trainer import DKITrainer
from tests.conftest import random_pngs

RES = 64

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # see conftest.py


@pytest.fixture(scope="module")
def model(tiny_dki_model):
    return tiny_dki_model  # conftest.py: made once per test process


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    return random_pngs(tmp_path_factory.mktemp("photos"), 4, seed=3, prefix="p")


def _run(model, photos, out, *, steps, resume=None, **train) -> RunConfig:
    base = dict(steps=steps, batch_size=2, lr=1e-2, checkpoint_every=2, progress=False, log_every=1,
                lr_scheduler="cosine", warmup_steps=1, snr_gamma=5.0)
    base.update(train)
    return RunConfig(model=str(model), out=str(out),
                     data=DataConfig(source=str(photos), resolution=RES, num_workers=0, captions="none"),
                     train=TrainConfig(**base), method=PositiveConfig(lora_rank=2, ema=True, ema_decay=0.9),
                     resume=resume)


def test_schedule_ema_and_snr_resume_exactly(model, photos, tmp_path):
    straight = PositiveTrainer(_run(model, photos, tmp_path / "a", steps=4))
    straight.fit()
    assert type(straight.lr_scheduler.scheduler).__name__ == "LambdaLR"  # diffusers' get_scheduler
    assert type(straight.ema).__module__ == "diffusers.training_utils"
    # cosine with one warm-up step: 0 at step 0 (diffusers' warm-up starts at 0), the peak at step 1, then down
    lrs = [straight.lr_scheduler.scheduler.lr_lambdas[0](s) * 1e-2 for s in range(4)]
    assert lrs[0] == 0 and lrs[1] == pytest.approx(1e-2) and lrs[1] > lrs[2] > lrs[3] > 0

    first = PositiveTrainer(_run(model, photos, tmp_path / "b", steps=2))
    first.fit()
    resumed = PositiveTrainer(_run(model, photos, tmp_path / "b", steps=4, resume="latest"))
    resumed.fit()
    assert resumed.resumed_from.name == "checkpoint-00000002"
    assert resumed.lr_scheduler.scheduler.last_epoch == straight.lr_scheduler.scheduler.last_epoch == 4
    assert resumed.state.losses == pytest.approx(straight.state.losses, abs=1e-6)
    for a, b in zip(straight.ema.shadow_params, resumed.ema.shadow_params):
        assert torch.allclose(a, b, atol=1e-6)
    assert resumed.ema.optimization_step == straight.ema.optimization_step == 4
    for a, b in zip(straight.params, resumed.params):
        assert torch.allclose(a, b, atol=1e-6)


def test_noise_targets_and_min_snr_weights_follow_the_formulas(model):
    """The trainer's noising and Min-SNR weights, checked against the closed forms (not against diffusers' code)."""
    from diffusers import DDPMScheduler

    sched = DDPMScheduler.from_pretrained(str(model), subfolder="scheduler")
    ac = sched.alphas_cumprod.double()
    latents = torch.randn(6, 4, 8, 8, generator=torch.Generator().manual_seed(0))
    for prediction in ("epsilon", "v_prediction"):
        fake = types.SimpleNamespace(noise_scheduler=sched, num_timesteps=1000, device=torch.device("cpu"),
                                     prediction_type=prediction, cfg=types.SimpleNamespace(snr_gamma=5.0))
        noisy, t, target, weights = DKITrainer._noised(fake, latents, torch.Generator().manual_seed(1))
        gen = torch.Generator().manual_seed(1)
        t_again = torch.randint(0, 1000, (6,), generator=gen)
        noise = torch.randn(latents.shape, generator=gen)
        a, s = ac[t].sqrt().view(-1, 1, 1, 1), (1 - ac[t]).sqrt().view(-1, 1, 1, 1)
        assert torch.equal(t, t_again)
        assert torch.allclose(noisy.double(), a * latents.double() + s * noise.double(), atol=1e-5)
        want = noise.double() if prediction == "epsilon" else a * noise.double() - s * latents.double()
        assert torch.allclose(target.double(), want, atol=1e-5)
        snr = ac[t] / (1 - ac[t])
        expect = torch.minimum(snr, torch.full_like(snr, 5.0)) / (snr + 1 if prediction == "v_prediction" else snr)
        assert torch.allclose(weights.double(), expect, rtol=1e-4)
        assert (weights <= 1.0 + 1e-6).all()  # never up-weights a step


def test_constant_schedule_with_warmup_is_refused_and_names_are_diffusers():
    from diffusers.optimization import SchedulerType

    from r2r.dki.config import LR_SCHEDULERS

    assert set(LR_SCHEDULERS) <= {s.value for s in SchedulerType}
    with pytest.raises(DKIError, match="constant_with_warmup"):
        TrainConfig(lr_scheduler="constant", warmup_steps=10)
    with pytest.raises(DKIError, match="lr_scheduler"):
        TrainConfig(lr_scheduler="exponential")


def test_launch_environment_is_read():
    assert launched_processes({}) == 1
    assert launched_processes({"WORLD_SIZE": "2", "RANK": "1"}) == 2
    assert launched_processes({"PMI_SIZE": "4"}) == 4
    # `accelerate launch --cpu --num_processes 2` runs one process with these set (see r2r/dki/launch.py)
    assert lone_cpu_launch({"ACCELERATE_USE_CPU": "True", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "29500"})
    assert not lone_cpu_launch({"ACCELERATE_USE_CPU": "True", "MASTER_ADDR": "127.0.0.1", "WORLD_SIZE": "2"})
    assert not lone_cpu_launch({"ACCELERATE_USE_CPU": "False", "MASTER_ADDR": "127.0.0.1"})


@pytest.mark.parametrize("tracker", ["tensorboard", "wandb"])
def test_report_to_a_tracker_that_is_not_installed_is_one_clear_error(model, photos, tmp_path, tracker):
    if importlib.util.find_spec(tracker) is not None:
        pytest.skip(f"{tracker} is installed")
    run = _run(model, photos, tmp_path / "tb", steps=1, report_to=tracker)
    with pytest.raises(DKIError, match=rf"--report-to {tracker} needs the {tracker} package"):
        PositiveTrainer(run).setup()
    assert not (tmp_path / "tb").exists()


@pytest.mark.skipif(importlib.util.find_spec("tensorboard") is None,
                    reason="tensorboard is not installed (optional: pip install 'synfashion[tensorboard]')")
def test_tensorboard_events_are_written_and_read_back(model, photos, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out = tmp_path / "tb"
    trainer = PositiveTrainer(_run(model, photos, out, steps=3, report_to="tensorboard"))
    result = trainer.fit()
    runs = sorted(p.parent for p in (out / "logs").rglob("events.out.tfevents.*"))
    assert runs, list((out / "logs").rglob("*"))
    scalars = {}
    for run in runs:
        acc = EventAccumulator(str(run))
        acc.Reload()
        for tag in acc.Tags()["scalars"]:
            scalars[tag] = [(e.step, e.value) for e in acc.Scalars(tag)]
    assert [s for s, _ in scalars["train/loss"]] == [1, 2, 3]
    assert [v for _, v in scalars["train/loss"]] == pytest.approx(result.losses, rel=1e-5)
    lrs = [v for _, v in scalars["train/lr"]]
    assert lrs[0] == 0 and lrs[1] == pytest.approx(1e-2) and lrs[2] < lrs[1]  # the schedule, as applied
    assert math.isclose(scalars["eval/fixed_batch_loss_after"][0][1], result.eval_loss_after, rel_tol=1e-5)
    # the logs are this run's outputs: --overwrite removes them, and nothing else is left behind
    record = trainer.folder.read_record()
    assert any(name.startswith("logs/") for name in record["outputs"])
    again = PositiveTrainer(RunConfig(**{**_run(model, photos, out, steps=1).__dict__, "overwrite": True}))
    again.fit()
    assert not (out / "logs").exists()
