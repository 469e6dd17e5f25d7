"""Shard planning: which records go to which shard, decided before anything is written.

A plan depends only on the records and the parameters, so every output file of every shard is an independent job
(see output_jobs): workers can write them in any order, a resumed build skips the ones already on disk, and many
machines could each take a range. Shards never split a textured garment, so a garment's `garments` row lands in
the shard that holds its four `renders` rows and tar samples.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ..fs.safepath import check_key
from ..schema import SPLITS, Layout, garment_key


@dataclass(frozen=True)
class ShardPlan:
    split: str
    index: int
    count: int  # shards in this split
    keys: tuple[str, ...]  # record keys, in write order (sorted, so a garment's views are adjacent)

    def paths(self, layout: Layout, formats: tuple[str, ...]) -> dict[str, str]:
        """output name (a Parquet config, or "webdataset") -> relative path of each file this shard produces."""
        stem = f"{self.split}-{self.index:05d}-of-{self.count:05d}"
        out = {}
        if "parquet" in formats:
            for schema in layout.configs:
                out[schema.config] = f"data/{schema.config}/{stem}.parquet"
        if "webdataset" in formats:
            out["webdataset"] = f"webdataset/{self.split}/{self.split}-{self.index:05d}.tar"
        return out


def garment_of(meta: dict) -> str:
    return garment_key(meta["category"], meta["project"], meta["texture"])


def plan_shards(samples: Sequence[dict], shard_size: int,
                size: Callable[[dict], int] = lambda meta: meta["num_bytes"]) -> list[ShardPlan]:
    """Greedy in-order partition per split: a shard closes when the next garment would take it past shard_size
    bytes (`size` of each sample: its bytes, or an estimate when they are not made yet)."""
    if shard_size <= 0:
        raise ValueError(f"shard size must be positive, got {shard_size}")
    by_split: dict[str, list[dict]] = defaultdict(list)
    for meta in samples:
        check_key(meta["key"], where="shard plan")  # the writers' key rule, before any output is written
        by_split[meta["split"]].append(meta)
    plans: list[ShardPlan] = []
    for split in SPLITS:
        garments: dict[str, list[dict]] = defaultdict(list)
        for meta in sorted(by_split.get(split, []), key=lambda m: m["key"]):
            garments[garment_of(meta)].append(meta)
        shards: list[list[str]] = []
        total = 0
        for gid in sorted(garments):
            nbytes = sum(size(m) for m in garments[gid])
            if not shards or (total + nbytes > shard_size and shards[-1]):
                shards.append([])
                total = 0
            shards[-1] += [m["key"] for m in garments[gid]]
            total += nbytes
        plans += [ShardPlan(split, i, len(shards), tuple(keys)) for i, keys in enumerate(shards)]
    return plans
