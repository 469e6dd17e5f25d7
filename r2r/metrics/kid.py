"""Kernel Inception Distance: unbiased MMD^2 with a cubic polynomial kernel, over random subsets of two feature sets.

Protocol of torch-fidelity 0.3.0 (the paper's): kernel k(a, b) = (a.b / D + 1)^3 (degree 3, gamma 1/D, coef0 1);
per subset the unbiased estimator (mean of K_XX and K_YY off the diagonal, minus twice the mean of K_XY over all
pairs); 100 subsets of 1000 drawn without replacement by numpy's legacy `RandomState(2020)`, each subset first
from the translated ("input1") then from the real ("input2") features, as torch-fidelity draws them; the result
is the mean and the population std (ddof 0) over subsets. Two deliberate differences, both recorded by
`r2r evaluate`: when a set has fewer images than the subset size, every subset uses `min(subset_size, n_real,
n_fake)` images (torch-fidelity refuses; clean-fid does the same as here), and the kernel sums run in float64
(torch-fidelity computes in the features' dtype, float32, whose rounding shows in the 5th-6th digit of KID).

Hand-written because torch-fidelity imports torchvision (which does not load here) and torchmetrics' KID draws
subsets with torch's generator, so it cannot reproduce torch-fidelity's numbers. No file I/O.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

# Above this many rows in both sets together, kernels are computed per subset instead of once from the Gram
# matrix of all features (which would take (n_fake + n_real)^2 * 8 bytes).
GRAM_MAX_ROWS = 6000


@dataclass(frozen=True)
class KIDConfig:
    subsets: int = 100
    subset_size: int = 1000
    seed: int = 2020
    degree: int = 3
    gamma: float | None = None  # None: 1 / feature dimension
    coef0: float = 1.0


@dataclass(frozen=True)
class KIDResult:
    mean: float
    std: float
    subset_size: int  # the size actually used (smaller than asked when a set is smaller)
    mmds: tuple[float, ...]


def _mmd2_unbiased(k_xx: torch.Tensor, k_yy: torch.Tensor, k_xy: torch.Tensor) -> float:
    m = k_xx.shape[0]
    within = (k_xx.sum() - k_xx.diagonal().sum()) + (k_yy.sum() - k_yy.diagonal().sum())
    return float(within / (m * (m - 1)) - 2 * k_xy.sum() / (m * m))


def kid_subsets(real: torch.Tensor, fake: torch.Tensor, config: KIDConfig = KIDConfig()) -> KIDResult:
    """KID with every per-subset MMD^2 kept (see the module docstring for the protocol)."""
    if real.ndim != 2 or fake.ndim != 2 or real.shape[1] != fake.shape[1]:
        raise ValueError(f"KID needs two [N, D] feature sets of one D, got {tuple(real.shape)} and {tuple(fake.shape)}")
    n_real, n_fake = real.shape[0], fake.shape[0]
    m = min(config.subset_size, n_real, n_fake)
    if m < 2:
        raise ValueError(f"KID needs at least 2 images in each set (got {n_fake} translated, {n_real} real)")
    if config.subsets < 1:
        raise ValueError(f"KID needs at least one subset, got {config.subsets}")
    gamma = config.gamma if config.gamma is not None else 1.0 / real.shape[1]
    x = fake.to(torch.float64)
    y = real.to(torch.float64)

    def kernel(dot: torch.Tensor) -> torch.Tensor:
        return (dot * gamma + config.coef0) ** config.degree

    # torch-fidelity's sampling: numpy's legacy generator, `choice(n, m, replace=False)` for input1 then input2.
    rng = np.random.RandomState(config.seed)
    draws = [(rng.choice(n_fake, m, replace=False), rng.choice(n_real, m, replace=False))
             for _ in range(config.subsets)]
    mmds = []
    if n_fake + n_real <= GRAM_MAX_ROWS:
        z = torch.cat([x, y])
        gram = z @ z.T
        for i_fake, i_real in draws:
            ix = torch.from_numpy(i_fake).to(z.device)
            iy = torch.from_numpy(i_real).to(z.device) + n_fake
            mmds.append(_mmd2_unbiased(kernel(gram[ix][:, ix]), kernel(gram[iy][:, iy]), kernel(gram[ix][:, iy])))
    else:
        for i_fake, i_real in draws:
            a = x[torch.from_numpy(i_fake).to(x.device)]
            b = y[torch.from_numpy(i_real).to(y.device)]
            mmds.append(_mmd2_unbiased(kernel(a @ a.T), kernel(b @ b.T), kernel(a @ b.T)))
    values = np.asarray(mmds, dtype=np.float64)
    return KIDResult(mean=float(values.mean()), std=float(values.std()), subset_size=m, mmds=tuple(mmds))


def kid_from_features(
    real: torch.Tensor, fake: torch.Tensor, subsets: int = 100, subset_size: int = 1000, seed: int = 2020,
    *, degree: int = 3, gamma: float | None = None, coef0: float = 1.0,
) -> tuple[float, float]:
    """(mean, std) of KID between [N, D] real and fake features (raw, not x1000)."""
    r = kid_subsets(real, fake, KIDConfig(subsets=subsets, subset_size=subset_size, seed=seed, degree=degree,
                                          gamma=gamma, coef0=coef0))
    return r.mean, r.std


__all__ = ["KIDConfig", "KIDResult", "kid_from_features", "kid_subsets"]
