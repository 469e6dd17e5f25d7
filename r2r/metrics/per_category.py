"""KID and FD per garment category, each with its n and its spread, small categories marked: never averaged away.

One entry per category: `{"metric", "n", "n_real", "n_fake", "value", "std", "spread", "trusted", "why", ...}`.
n is the smaller of the two sets. Spread: KID's is the std (ddof 0) over its subsets (kid.py's protocol; every
subset holds `subset_size` = min(config size, n_real, n_fake) images, recorded in the entry); FD's is a bootstrap
std (frechet.FDBootstrap: 100 resamples of both sets with replacement, numpy `RandomState(2020)`). A category with
n below `min_n` (default 10) still gets its numbers but `trusted: False` and `why: "n=3 < 10"`; one that cannot
be computed at all (n < 2, or no real images) gets `value: None`. This module returns per-category entries only:
there is deliberately no average across categories (a mean of a 3-image and a 300-image KID means nothing);
score the pooled features for an overall figure. No file I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import torch

from .frechet import FDBootstrap, fd_bootstrap, frechet_distance
from .kid import KIDConfig, kid_subsets

MIN_N = 10


@dataclass(frozen=True)
class CategoryConfig:
    min_n: int = MIN_N
    kid: KIDConfig = field(default_factory=KIDConfig)
    bootstrap: FDBootstrap = field(default_factory=FDBootstrap)
    fd_method: str = "auto"  # frechet.frechet_distance's method for the value itself


def category_entry(real: torch.Tensor, fake: torch.Tensor, metric: str,
                   config: CategoryConfig = CategoryConfig()) -> dict:
    """The entry for one category's [n_real, D] and [n_fake, D] features (see the module docstring)."""
    n_real, n_fake = int(real.shape[0]), int(fake.shape[0])
    n = min(n_real, n_fake)
    entry: dict = {"metric": metric, "n": n, "n_real": n_real, "n_fake": n_fake, "value": None, "std": None}
    if metric == "kid":
        entry["spread"] = "std (ddof 0) over KID subsets"
        entry["subsets"] = config.kid.subsets
        entry["subset_size"] = min(config.kid.subset_size, n_real, n_fake)
    elif metric == "fd":
        entry["spread"] = (f"bootstrap std (ddof 0), {config.bootstrap.resamples} resamples of both sets, "
                           f"RandomState({config.bootstrap.seed})")
        entry["resamples"] = config.bootstrap.resamples
    else:
        raise ValueError(f"metric must be 'kid' or 'fd', got {metric!r}")
    if n < 2:
        side = "real" if n_real < 2 else "translated"
        entry.update(trusted=False, why=f"n={n} ({side}): too few to compute")
        return entry
    if metric == "kid":
        r = kid_subsets(real, fake, config.kid)
        entry.update(value=r.mean, std=r.std, subset_size=r.subset_size)
    else:
        entry["value"] = frechet_distance(real, fake, method=config.fd_method)
        entry["std"], _ = fd_bootstrap(real, fake, config.bootstrap)
    trusted = n >= config.min_n
    entry.update(trusted=trusted, why=None if trusted else f"n={n} < {config.min_n}")
    return entry


def per_category(real: Mapping[str, torch.Tensor] | torch.Tensor, fake: Mapping[str, torch.Tensor],
                 metric: str = "kid", config: CategoryConfig = CategoryConfig()) -> dict[str, dict]:
    """{category: entry} for each category of `fake`; `real` per category, or one tensor shared by all.

    A category with translated images but no real ones gets `value: None, why: "no real images"`."""
    out: dict[str, dict] = {}
    for category in sorted(fake):
        f = fake[category]
        r = real if isinstance(real, torch.Tensor) else real.get(category)
        if r is None or r.shape[0] == 0:
            out[category] = {"metric": metric, "n": 0, "n_real": 0, "n_fake": int(f.shape[0]), "value": None,
                             "std": None, "trusted": False, "why": "no real images"}
            continue
        out[category] = category_entry(r, f, metric, config)
    return out


__all__ = ["CategoryConfig", "MIN_N", "category_entry", "per_category"]
