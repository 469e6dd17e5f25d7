"""Index samplers for the map-style datasets: exactly-once epochs split across ranks, and category balancing.

Unlike torch's DistributedSampler, `EpochSampler` never pads: every index of the dataset is yielded exactly
once per epoch across all ranks (ranks may differ by one sample; use `even=True` to drop the few extra indices
when every rank must take the same number of steps). DataLoader workers then share a rank's indices without
overlap, so the worker x rank grid is covered exactly once. Both samplers yield `(index, epoch)` so that
persistent workers see the epoch without shared state, and both can resume `start` samples into an epoch.
The order depends only on (seed, epoch, world size).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
from torch.utils.data import Sampler

from .distributed import DistInfo


class _EpochMixin:
    epoch: int = 0
    start: int = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def set_start(self, start: int) -> None:
        """Resume: skip the first `start` indices of this rank's epoch."""
        self.start = int(start)


class EpochSampler(_EpochMixin, Sampler):
    """This rank's share of a (shuffled) permutation of range(n)."""

    def __init__(
        self, n: int, *, dist: DistInfo = DistInfo(), shuffle: bool = True, seed: int = 0, even: bool = False
    ):
        self.n, self.dist, self.shuffle, self.seed, self.even = n, dist, shuffle, seed, even
        self.epoch, self.start = 0, 0

    def indices(self) -> np.ndarray:
        if self.shuffle:
            order = np.random.default_rng([self.seed, self.epoch]).permutation(self.n)
        else:
            order = np.arange(self.n)
        if self.even:
            order = order[: self.n - self.n % self.dist.world_size]
        return order[self.dist.rank :: self.dist.world_size]

    def __iter__(self) -> Iterator[tuple[int, int]]:
        epoch = self.epoch
        for i in self.indices()[self.start :]:
            yield int(i), epoch

    def __len__(self) -> int:
        return max(0, len(self.indices()) - self.start)


class BalancedSampler(_EpochMixin, Sampler):
    """Each step draws the categories round-robin (in a fresh random order every round), so every category is
    seen equally often whatever its size; small categories are revisited (reshuffled) as needed.

    `num_samples` is the epoch length over all ranks (default: the dataset size); each rank takes every
    world_size-th position of the same global sequence, so ranks never draw the same position.
    """

    def __init__(
        self,
        labels: Sequence[int],
        *,
        num_samples: int | None = None,
        dist: DistInfo = DistInfo(),
        seed: int = 0,
    ):
        labels = np.asarray(labels)
        self.groups = [np.flatnonzero(labels == c) for c in np.unique(labels)]
        if not self.groups:
            raise ValueError("BalancedSampler needs at least one sample")
        self.num_samples = len(labels) if num_samples is None else int(num_samples)
        self.dist, self.seed = dist, seed
        self.epoch, self.start = 0, 0

    def global_sequence(self) -> np.ndarray:
        rng = np.random.default_rng([self.seed, self.epoch, 1])
        pools = [rng.permutation(g) for g in self.groups]
        cursor = [0] * len(pools)
        out = np.empty(self.num_samples, dtype=np.int64)
        order = rng.permutation(len(pools))
        for j in range(self.num_samples):
            if j and j % len(pools) == 0:
                order = rng.permutation(len(pools))
            c = order[j % len(pools)]
            if cursor[c] == len(pools[c]):
                pools[c], cursor[c] = rng.permutation(self.groups[c]), 0
            out[j] = pools[c][cursor[c]]
            cursor[c] += 1
        return out

    def __iter__(self) -> Iterator[tuple[int, int]]:
        epoch = self.epoch
        for i in self.global_sequence()[self.dist.rank :: self.dist.world_size][self.start :]:
            yield int(i), epoch

    def __len__(self) -> int:
        mine = len(range(self.dist.rank, self.num_samples, self.dist.world_size))
        return max(0, mine - self.start)
