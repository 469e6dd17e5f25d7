"""RIG's DDIM schedule and the two inversion orders (no model: a recording noise predictor)."""

from __future__ import annotations

import pytest
import torch
from diffusers import DDIMInverseScheduler, DDIMScheduler

from r2r.rig.inversion import ddim_invert
from r2r.rig.schedule import RIG_SCHEDULER_CONFIG, RIGSchedule, denoise_update, rig_scheduler


def test_schedule_matches_reference_rig():
    s = RIGSchedule.create(50, 0.3)
    sched = rig_scheduler()
    sched.set_timesteps(50)
    assert sched.timesteps[0] == 981 and sched.timesteps[-1] == 1
    assert s.timesteps == tuple(range(281, 0, -20)) and s.k == 15 and s.delta == 20
    assert s.tac_steps(0.9) == 13 and s.tac_steps(0.0) == 0 and s.tac_steps(1.0) == 15
    assert float(s.final_alpha_cumprod) == float(s.alphas_cumprod[0])  # set_alpha_to_one off
    a, b = s.inversion_alphas(1)
    assert float(a) == float(s.alphas_cumprod[0]) and float(b) == float(s.alphas_cumprod[1])
    a, b = s.inversion_alphas(281)
    assert float(a) == float(s.alphas_cumprod[261]) and float(b) == float(s.alphas_cumprod[281])
    a, b = s.denoise_alphas(21)
    assert float(a) == float(s.alphas_cumprod[21]) and float(b) == float(s.alphas_cumprod[1])
    assert RIGSchedule.create(10, 1.0).timesteps == tuple(range(901, 0, -100))


def test_schedule_errors_are_clear():
    with pytest.raises(ValueError, match="leaves no step"):
        RIGSchedule.create(3, 0.3)
    with pytest.raises(ValueError, match="strength"):
        RIGSchedule.create(50, 0.0)
    with pytest.raises(ValueError, match="inversion_order"):
        RIGSchedule.create(50, 0.3).inversion_timesteps("ascending")


def _recording_predictor(calls):
    def predict(z, t):
        calls.append(t)
        return torch.sin(z * 3 + t / 100.0)  # any deterministic function of (z, t)

    return predict


def test_inversion_orders_walk_the_timesteps():
    s = RIGSchedule.create(50, 0.3)
    z0 = torch.randn(2, 4, 3, 5)
    calls_ref, calls_std = [], []
    ref = ddim_invert(_recording_predictor(calls_ref), z0, s, "reference")
    std = ddim_invert(_recording_predictor(calls_std), z0, s, "standard")
    assert calls_ref == list(range(281, 0, -20)) and calls_std == list(range(1, 282, 20))
    assert len(ref) == len(std) == 16 and ref[0] is z0 and std[0] is z0
    assert not torch.allclose(ref[-1], std[-1])


def test_standard_order_equals_diffusers_ddim_inverse_scheduler():
    s = RIGSchedule.create(50, 0.3)
    z0 = torch.randn(1, 4, 6, 4)
    predict = _recording_predictor([])
    ours = ddim_invert(predict, z0, s, "standard")
    inv = DDIMInverseScheduler(**{k: v for k, v in RIG_SCHEDULER_CONFIG.items() if k != "timestep_spacing"})
    inv.set_timesteps(50)
    z = z0
    for i, t in enumerate(inv.timesteps[: s.k]):
        z = inv.step(predict(z, int(t)), int(t), z).prev_sample
        assert torch.allclose(z, ours[i + 1], rtol=1e-5, atol=1e-6)


def test_denoise_update_equals_diffusers_ddim_step():
    s = RIGSchedule.create(50, 0.3)
    sched = DDIMScheduler(**RIG_SCHEDULER_CONFIG)
    sched.set_timesteps(50)
    z = torch.randn(2, 4, 3, 3)
    for t in s.timesteps:
        eps = torch.cos(z + t)
        assert torch.allclose(denoise_update(z, eps, t, s), sched.step(eps, t, z).prev_sample, atol=1e-6)
