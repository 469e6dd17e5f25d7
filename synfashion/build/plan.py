"""Shard planning: which records go to which shard, decided before anything is written.

A plan depends only on the records and the parameters, so every output file of every shard is an independent job
(see output_jobs): workers can write them in any order, a resumed build skips the ones already on disk, and many
machines could each take a range. Shards never split a textured garment, so a garment's `garments` row lands in
the shard that holds its four `renders` rows and tar samples.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from ..schema import GARMENTS_CONFIG, RENDERS_CONFIG, SPLITS, RenderRecord


@dataclass(frozen=True)
class ShardPlan:
    split: str
    index: int
    count: int  # shards in this split
    keys: tuple[str, ...]  # record keys, in write order (sorted, so a garment's views are adjacent)

    def paths(self, formats: tuple[str, ...], *, garments: bool = True) -> dict[str, str]:
        """output name -> relative path of each file this shard produces."""
        stem = f"{self.split}-{self.index:05d}-of-{self.count:05d}"
        out = {}
        if "parquet" in formats:
            out[RENDERS_CONFIG] = f"data/{RENDERS_CONFIG}/{stem}.parquet"
            if garments:
                out[GARMENTS_CONFIG] = f"data/{GARMENTS_CONFIG}/{stem}.parquet"
        if "webdataset" in formats:
            out["webdataset"] = f"webdataset/{self.split}/{self.split}-{self.index:05d}.tar"
        return out


def plan_shards(records: list[RenderRecord], shard_size: int) -> list[ShardPlan]:
    """Greedy in-order partition per split: a shard closes when the next garment would take it past shard_size."""
    if shard_size <= 0:
        raise ValueError(f"shard size must be positive, got {shard_size}")
    by_split: dict[str, list[RenderRecord]] = defaultdict(list)
    for r in records:
        by_split[r.split].append(r)
    plans: list[ShardPlan] = []
    for split in SPLITS:
        garments: dict[str, list[RenderRecord]] = defaultdict(list)
        for r in sorted(by_split.get(split, []), key=lambda r: r.key):
            garments[r.garment_id].append(r)
        shards: list[list[str]] = []
        size = 0
        for gid in sorted(garments):
            nbytes = sum(r.num_bytes for r in garments[gid])
            if not shards or (size + nbytes > shard_size and shards[-1]):
                shards.append([])
                size = 0
            shards[-1] += [r.key for r in garments[gid]]
            size += nbytes
        plans += [ShardPlan(split, i, len(shards), tuple(keys)) for i, keys in enumerate(shards)]
    return plans
