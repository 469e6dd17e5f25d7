"""The DDIM arithmetic of RIG: its own scheduler, the used timesteps, and the two latent updates.

Why a module of its own: the published code builds its DDIM scheduler itself, whatever the model folder ships, and
its inversion and denoising updates are plain formulas (REFERENCE_RIG.md). Keeping them here, written exactly
like that page, lets inversion, generation and the tests share one source of truth. Latent updates are done in
float32 whatever the UNet dtype. Nothing here calls a model.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from ..config import RIGParams

# DDIM as the published code constructs it; `steps_offset=1` is what diffusers' pipeline constructor forces on it.
RIG_SCHEDULER_CONFIG: dict[str, Any] = {
    "num_train_timesteps": 1000,
    "beta_start": 0.00085,
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "clip_sample": False,
    "set_alpha_to_one": False,
    "steps_offset": 1,
    "timestep_spacing": "leading",
    "prediction_type": "epsilon",
}


def rig_scheduler():
    """A fresh DDIMScheduler with the RIG configuration (independent of any model folder)."""
    from diffusers import DDIMScheduler

    return DDIMScheduler(**RIG_SCHEDULER_CONFIG)


@dataclass(frozen=True)
class RIGSchedule:
    """The part of a `num_inference_steps` DDIM schedule that RIG walks, and its alpha-bar table.

    `timesteps` are the last `k = min(int(N * strength), N)` timesteps in the scheduler's (descending) order:
    for N=50, strength=0.3: 281, 261, ..., 1.
    """

    num_inference_steps: int
    strength: float
    timesteps: tuple[int, ...]
    delta: int
    alphas_cumprod: torch.Tensor  # float32, [num_train_timesteps]
    final_alpha_cumprod: torch.Tensor  # float32 scalar (alpha-bar[0], set_alpha_to_one is off)

    @classmethod
    def create(cls, num_inference_steps: int = RIGParams.num_inference_steps,
               strength: float = RIGParams.strength) -> RIGSchedule:
        if num_inference_steps < 1:
            raise ValueError(f"num_inference_steps must be >= 1, got {num_inference_steps}")
        if not 0.0 < strength <= 1.0:
            raise ValueError(f"strength must be in (0, 1], got {strength}")
        sched = rig_scheduler()
        sched.set_timesteps(num_inference_steps)
        k = min(int(num_inference_steps * strength), num_inference_steps)
        if k < 1:
            raise ValueError(
                f"strength {strength} with {num_inference_steps} steps leaves no step to run "
                f"(int({num_inference_steps} * {strength}) = 0); raise --strength or --steps"
            )
        used = tuple(int(t) for t in sched.timesteps[num_inference_steps - k:])
        return cls(
            num_inference_steps=num_inference_steps,
            strength=strength,
            timesteps=used,
            delta=sched.config.num_train_timesteps // num_inference_steps,
            alphas_cumprod=sched.alphas_cumprod.to(torch.float32),
            final_alpha_cumprod=torch.as_tensor(sched.final_alpha_cumprod, dtype=torch.float32),
        )

    @property
    def k(self) -> int:
        """Number of inversion steps = number of denoising steps."""
        return len(self.timesteps)

    def tac_steps(self, ratio: float) -> int:
        """Denoising steps with attention control: the first int(k * ratio) (13 of 15 at the defaults)."""
        if not 0.0 <= ratio <= 1.0:
            raise ValueError(f"tac_ratio must be in [0, 1], got {ratio}")
        return int(self.k * ratio)

    def inversion_timesteps(self, order: str) -> tuple[int, ...]:
        """`reference`: the published descending walk; `standard`: ascending (MasaCtrl, DDIMInverseScheduler)."""
        if order == "reference":
            return self.timesteps
        if order == "standard":
            return tuple(reversed(self.timesteps))
        raise ValueError(f"inversion_order must be 'reference' or 'standard', got {order!r}")

    def _alpha(self, t: int) -> torch.Tensor:
        return self.alphas_cumprod[t] if t >= 0 else self.final_alpha_cumprod

    def inversion_alphas(self, t: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(from, to) for the inversion update at t: from level min(t - delta, 999) to level t."""
        s = min(t - self.delta, self.alphas_cumprod.numel() - 1)
        return self._alpha(s), self.alphas_cumprod[t]

    def denoise_alphas(self, t: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(from, to) for the denoising update at t: from level t to level t - delta (alpha-bar[0] below 1)."""
        p = t - self.delta
        return self.alphas_cumprod[t], (self.alphas_cumprod[p] if p > 0 else self.final_alpha_cumprod)

    def to(self, device: torch.device | str) -> RIGSchedule:
        """The same schedule with its tables on `device` (scalar lookups then stay on the device)."""
        return RIGSchedule(
            self.num_inference_steps, self.strength, self.timesteps, self.delta,
            self.alphas_cumprod.to(device), self.final_alpha_cumprod.to(device),
        )


def ddim_move(z: torch.Tensor, eps: torch.Tensor, alpha_from: torch.Tensor, alpha_to: torch.Tensor) -> torch.Tensor:
    """Deterministic DDIM (eta=0) move of `z` from noise level alpha_from to alpha_to along the predicted noise.

    x0 = (z - sqrt(1 - a) eps) / sqrt(a);  z' = sqrt(a') x0 + sqrt(1 - a') eps   (both directions).
    """
    pred_x0 = (z - (1 - alpha_from) ** 0.5 * eps) / alpha_from ** 0.5
    return alpha_to ** 0.5 * pred_x0 + (1 - alpha_to) ** 0.5 * eps


def inversion_update(z: torch.Tensor, eps: torch.Tensor, t: int, schedule: RIGSchedule) -> torch.Tensor:
    return ddim_move(z, eps, *schedule.inversion_alphas(t))


def denoise_update(z: torch.Tensor, eps: torch.Tensor, t: int, schedule: RIGSchedule) -> torch.Tensor:
    return ddim_move(z, eps, *schedule.denoise_alphas(t))
