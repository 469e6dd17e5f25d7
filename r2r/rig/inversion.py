"""DDIM inversion of clean latents over the last `strength` of the schedule, keeping every level's latent.

Why: RIG's source branch is re-traced from these stored latents at each denoising step, and the target branch
starts from the last one. Two walk orders exist (REFERENCE_RIG.md):

- `"reference"` (default): the published code's walk over the used timesteps in descending order (281 first,
  1 last at the defaults). Its last latent sits at the *least* noisy level; this is what produced the paper's figures.
- `"standard"`: ascending (1 first, 281 last), as MasaCtrl and diffusers' DDIMInverseScheduler do; the last latent
  sits at the noisiest used level and stored latent L[-1-i] has the noise level of denoising step i.

The update formula is the same in both orders. The noise predictor is a callable, so this module knows nothing
about prompts, CFG or attention control (the pipeline passes a one-evaluation predictor for an empty source prompt).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from ..config import InversionOrder
from .schedule import RIGSchedule, inversion_update

NoisePredictor = Callable[[torch.Tensor, int], torch.Tensor]


def ddim_invert(
    predict_noise: NoisePredictor,
    z0: torch.Tensor,
    schedule: RIGSchedule,
    order: InversionOrder = "reference",
    on_step: Callable[[int, int], None] | None = None,
) -> list[torch.Tensor]:
    """Invert `z0` (float32 latents, any batch); returns the k+1 latents L with L[0] = z0 and L[-1] the start.

    `predict_noise(z, t)` returns the noise prediction (float32, same shape as z) at timestep t;
    `on_step(i, t)` is called after each step (progress bars).
    """
    latents = [z0]
    z = z0
    for i, t in enumerate(schedule.inversion_timesteps(order)):
        z = inversion_update(z, predict_noise(z, t), t, schedule)
        latents.append(z)
        if on_step is not None:
            on_step(i, t)
    return latents
