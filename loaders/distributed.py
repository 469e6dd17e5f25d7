"""Who am I in a distributed run: rank and world size, and which DataLoader worker.

The same resolution order everywhere: explicit arguments, then the launcher's environment (torchrun and
accelerate both export RANK and WORLD_SIZE), then an initialised torch.distributed group, else a single
process. Splitting the data itself is done by the samplers (map-style) and the stream stages (iterable); this
module only answers "which slot out of how many", so every source splits the same way.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch.utils.data


@dataclass(frozen=True)
class DistInfo:
    """This process's place among the ranks of a run (rank in [0, world_size))."""

    rank: int = 0
    world_size: int = 1

    def __post_init__(self) -> None:
        if self.world_size < 1 or not 0 <= self.rank < self.world_size:
            raise ValueError(f"need 0 <= rank < world_size, got rank={self.rank} world_size={self.world_size}")

    @classmethod
    def resolve(cls, rank: int | None = None, world_size: int | None = None) -> "DistInfo":
        """Explicit values win; then RANK/WORLD_SIZE; then torch.distributed; else (0, 1)."""
        if (rank is None) != (world_size is None):
            raise ValueError("pass both rank and world_size, or neither (to read them from the launcher)")
        if rank is not None:
            return cls(int(rank), int(world_size))
        env_rank, env_world = os.environ.get("RANK"), os.environ.get("WORLD_SIZE")
        if env_rank is not None and env_world is not None:
            return cls(int(env_rank), int(env_world))
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            return cls(dist.get_rank(), dist.get_world_size())
        return cls()


@dataclass(frozen=True)
class ReaderSlot:
    """One reader (a worker of a rank) among all readers of the run; `index` is unique across the run."""

    rank: int
    world_size: int
    worker: int
    num_workers: int

    @property
    def index(self) -> int:
        return self.rank * self.num_workers + self.worker

    @property
    def count(self) -> int:
        return self.world_size * self.num_workers


def current_worker() -> tuple[int, int]:
    """(worker id, number of workers) of the calling DataLoader worker; (0, 1) in the main process."""
    info = torch.utils.data.get_worker_info()
    return (0, 1) if info is None else (info.id, info.num_workers)


def reader_slot(dist: DistInfo) -> ReaderSlot:
    worker, num_workers = current_worker()
    return ReaderSlot(dist.rank, dist.world_size, worker, num_workers)
