"""Shard planning: which records go to which shard file, decided before anything is written.

A plan depends only on the records and the parameters, so every shard is an independent job: workers can write
them in any order, a resumed build skips the ones already on disk, and many machines could each take a range.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from .schema import GARMENTS_CONFIG, RENDERS_CONFIG, SPLITS, RenderRecord


@dataclass(frozen=True)
class ShardPlan:
    config: str  # renders | garments
    split: str
    index: int
    count: int  # shards of this (config, split)
    keys: tuple[str, ...]  # record keys (renders) or garment ids (garments), in write order

    @property
    def parquet_path(self) -> str:
        return f"data/{self.config}/{self.split}-{self.index:05d}-of-{self.count:05d}.parquet"

    @property
    def wds_path(self) -> str:
        return f"webdataset/{self.split}/{self.split}-{self.index:05d}.tar"

    def paths(self, formats: tuple[str, ...]) -> dict[str, str]:
        """format -> relative path of each file this shard produces (garments exist only as Parquet)."""
        out = {}
        if "parquet" in formats:
            out["parquet"] = self.parquet_path
        if "webdataset" in formats and self.config == RENDERS_CONFIG:
            out["webdataset"] = self.wds_path
        return out


def _partition(items: list[tuple[str, int]], max_bytes: int) -> list[list[str]]:
    """Greedy in-order partition: a shard closes when adding the next item would pass max_bytes."""
    shards: list[list[str]] = []
    current: list[str] = []
    size = 0
    for key, nbytes in items:
        if current and size + nbytes > max_bytes:
            shards.append(current)
            current, size = [], 0
        current.append(key)
        size += nbytes
    if current:
        shards.append(current)
    return shards


def plan_shards(records: list[RenderRecord], shard_size: int, *, garments: bool = True) -> list[ShardPlan]:
    if shard_size <= 0:
        raise ValueError(f"shard size must be positive, got {shard_size}")
    by_split: dict[str, list[RenderRecord]] = defaultdict(list)
    for r in records:
        by_split[r.split].append(r)
    plans: list[ShardPlan] = []
    for split in SPLITS:
        recs = sorted(by_split.get(split, []), key=lambda r: r.key)
        if not recs:
            continue
        parts = _partition([(r.key, r.num_bytes) for r in recs], shard_size)
        plans += [ShardPlan(RENDERS_CONFIG, split, i, len(parts), tuple(p)) for i, p in enumerate(parts)]
        if garments:
            sizes: dict[str, int] = defaultdict(int)
            for r in recs:
                sizes[r.garment_id] += r.num_bytes
            gparts = _partition(sorted(sizes.items()), shard_size)
            plans += [ShardPlan(GARMENTS_CONFIG, split, i, len(gparts), tuple(p)) for i, p in enumerate(gparts)]
    return plans
