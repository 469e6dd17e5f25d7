"""SynFashion WebDataset shards (local paths, globs, brace patterns or URLs) as a torch IterableDataset.

A pipeline of named stages, each a small generator: shard list (shuffled per (seed, epoch)) -> split across
readers (ranks x workers: whole shards when there are enough, else every N-th sample) -> tar members grouped
into samples (webdataset's tar iterator) -> metadata filter (the JSON only, before any decode) -> shuffle buffer
-> resume skip -> decode. Every stage is deterministic for (seed, epoch, reader), so a finite read yields each
sample exactly once across all readers and resuming is an exact replay that skips what was already delivered.
"""

from __future__ import annotations

import glob
import json
import os
import random
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import braceexpand
import torch.utils.data
from webdataset.tariterators import tarfile_samples

from synfashion.schema import IMAGE_EXTENSIONS

from .distributed import DistInfo, ReaderSlot, reader_slot
from .errors import OnError, ShardReadError, SkippedSample
from .loader import STATE_FIELD, LoaderConfig, end_marker, SharedEpoch, SynDataLoader
from .records import RawSample, make_sample, orientation_of, synfashion_meta
from .selection import Selection
from .transforms import TRAIN_512, ImageTransform, TransformConfig

SplitBy = Literal["auto", "shards", "examples"]
# "auto" splits by whole shards when there are at least this many per reader (at most 1/8 imbalance).
AUTO_SHARDS_PER_READER = 8
IMAGE_SUFFIXES: tuple[str, ...] = tuple(sorted(e.lstrip(".") for e in IMAGE_EXTENSIONS))
_URL_SCHEMES = ("http://", "https://", "pipe:", "gs://", "s3://", "file:")


def resolve_shards(source: str | Path | Iterable[str | Path], split: str = "train") -> list[str]:
    """Shard URLs from: a built folder (its webdataset/<split>/), a folder of tars, a brace pattern, a glob,
    a URL, or a list of any of these. Local results are sorted; order of a given list is kept."""
    if not isinstance(source, (str, Path)):
        return [u for item in source for u in resolve_shards(item, split)]
    text = str(source)
    if text.startswith(_URL_SCHEMES):
        return list(braceexpand.braceexpand(text))
    path = Path(text)
    if path.is_dir():
        manifest = path / "manifest.json"
        if (path / "webdataset").is_dir():
            if manifest.is_file():
                shards = json.loads(manifest.read_text()).get("shards", [])
                found = sorted(
                    str(path / s["path"]) for s in shards if s.get("format") == "webdataset" and s.get("split") == split
                )
                if found:
                    return found
            path = path / "webdataset" / split
        found = sorted(str(p) for p in path.glob("*.tar"))
        if not found:
            raise ShardReadError(f"no .tar shards under {path}")
        return found
    expanded = list(braceexpand.braceexpand(text))
    out: list[str] = []
    for item in expanded:
        if any(c in item for c in "*?["):
            out += sorted(glob.glob(item))
        else:
            out.append(item)
    missing = [u for u in out if not os.path.exists(u)]
    if missing or not out:
        raise ShardReadError(f"shard(s) not found: {', '.join(missing[:5]) or text}")
    return out


def manifest_samples(source: str | Path, split: str) -> list[dict] | None:
    """The per-sample metadata of a built folder's manifest (for evaluation subsets), or None."""
    if isinstance(source, (str, Path)) and Path(source, "manifest.json").is_file():
        samples = json.loads(Path(source, "manifest.json").read_text()).get("samples", [])
        return [s for s in samples if s.get("split") == split]
    return None


@dataclass(frozen=True)
class StreamPlan:
    """What one pass reads: the shard list and how it is divided (fixed for the dataset's lifetime)."""

    shards: tuple[str, ...]
    split_by: SplitBy = "auto"
    shuffle: bool = True
    seed: int = 0
    shuffle_buffer: int = 256

    def mode(self, slot: ReaderSlot) -> str:
        """"auto": whole shards when they divide evenly among the readers (or are many enough that the
        uneven remainder costs little), else every reader reads every shard and keeps its own samples."""
        if self.split_by != "auto":
            return self.split_by
        n = len(self.shards)
        return "shards" if n % slot.count == 0 or n >= AUTO_SHARDS_PER_READER * slot.count else "examples"


# ------------------------------------------------------------------------------------------------ stages
def stage_shards(plan: StreamPlan, epoch: int, slot: ReaderSlot) -> list[str]:
    shards = list(plan.shards)
    if plan.shuffle:
        random.Random(f"{plan.seed}\x00{epoch}\x00shards").shuffle(shards)
    if plan.mode(slot) == "shards":
        return shards[slot.index :: slot.count]
    return shards


def stage_read(shards: list[str], on_error: OnError, skipped: list[SkippedSample]) -> Iterator[dict]:
    """Tar members grouped into samples; a shard that cannot be read raises naming it, or is recorded."""

    def handler(exn: Exception) -> bool:
        where = next((a for a in reversed(exn.args) if isinstance(a, str) and a in shards), None)
        where = where or next((s for s in shards if any(s in str(a) for a in exn.args)), "an unknown shard")
        if on_error == "skip":
            reason = f"shard unreadable: {type(exn).__name__}: {exn.args[0] if exn.args else ''}"
            skipped.append(SkippedSample(where, "*", reason))
            return True
        raise ShardReadError(
            f"cannot read WebDataset shard {where}: {type(exn).__name__}: {exn.args[0] if exn.args else exn}. "
            "Check the file (re-download or rebuild it), or pass on_error='skip' to skip it "
            "(reported in loader.skipped)."
        ) from exn

    yield from tarfile_samples(({"url": u} for u in shards), handler=handler)


def stage_split_examples(samples: Iterator[dict], slot: ReaderSlot, mode: str) -> Iterator[dict]:
    if mode == "shards" or slot.count == 1:
        yield from samples
        return
    for j, s in enumerate(samples):
        if j % slot.count == slot.index:
            yield s


def stage_filter(samples: Iterator[dict], selection: Selection | None) -> Iterator[dict]:
    """Parse each sample's JSON once; keep those the selection matches (no image decoded yet)."""
    for s in samples:
        meta = json.loads(s["json"]) if "json" in s else {}
        s["__meta__"] = meta
        if selection is not None and meta:
            key = meta.get("key", s["__key__"])
            if not selection.matches(key, meta.get("category", ""), meta.get("view", ""), meta.get("project", "")):
                continue
        yield s


def stage_shuffle(samples: Iterator, bufsize: int, rng: random.Random) -> Iterator:
    """A buffer shuffle with a seeded RNG, so the order is a function of (seed, epoch, reader); webdataset's
    own `shuffle` seeds from time and pid unless told otherwise."""
    if bufsize <= 1:
        yield from samples
        return
    buf: list = []
    for s in samples:
        buf.append(s)
        if len(buf) >= bufsize:
            k = rng.randrange(len(buf))
            buf[k], buf[-1] = buf[-1], buf[k]
            yield buf.pop()
    rng.shuffle(buf)
    yield from buf


def to_raw(s: dict) -> RawSample:
    meta = s.get("__meta__", {})
    ext = next((e for e in IMAGE_SUFFIXES if e in s), None)
    key = meta.get("key", s["__key__"])
    source = f"{s.get('__url__')} member {s['__key__']}.{ext or '?'}"
    out_meta = synfashion_meta(meta, meta.get("split", "")) if "category" in meta else {}
    data = s.get(ext) if ext else None
    return RawSample(data=data, key=key, source=source, meta=out_meta, orientation=orientation_of(meta))


class WebDatasetStream(torch.utils.data.IterableDataset):
    """Samples of `plan.shards` for this reader; `epochs` passes per iteration (None: endless)."""

    def __init__(
        self,
        plan: StreamPlan,
        *,
        transform: ImageTransform,
        dist: DistInfo = DistInfo(),
        selection: Selection | None = None,
        epochs: int | None = 1,
        on_error: OnError = "raise",
        to_raw: Callable[[dict], RawSample] = to_raw,
    ):
        self.plan, self.transform, self.dist, self.selection = plan, transform, dist, selection
        self.epochs, self.on_error, self.to_raw = epochs, on_error, to_raw
        self.epoch = SharedEpoch()
        self._resume: dict | None = None

    def set_resume(self, resume: dict | None) -> None:
        self._resume = resume

    def _pass(self, epoch: int, slot: ReaderSlot, skip: int) -> Iterator[tuple[dict, int]]:
        skipped: list[SkippedSample] = []
        samples = stage_read(stage_shards(self.plan, epoch, slot), self.on_error, skipped)
        samples = stage_split_examples(samples, slot, self.plan.mode(slot))
        samples = stage_filter(samples, self.selection)
        if self.plan.shuffle:
            rng = random.Random(f"{self.plan.seed}\x00{epoch}\x00{slot.index}\x00buffer")
            samples = stage_shuffle(samples, self.plan.shuffle_buffer, rng)
        n = 0
        for s in samples:
            n += 1
            if n <= skip:  # resuming: replayed, already delivered (and so were skips reported before it)
                skipped.clear()
                continue
            while skipped:
                yield skipped.pop(0).as_marker(), n - 1
            raw = self.to_raw(s)
            yield make_sample(raw, self.transform, seed=self.plan.seed, epoch=epoch, on_error=self.on_error), n
        while skipped:
            yield skipped.pop(0).as_marker(), n

    def __iter__(self) -> Iterator[dict]:
        slot = reader_slot(self.dist)
        base = self.epoch.value
        first_pass, skip = 0, 0
        resume = self._resume
        if resume and resume["epoch"] == base and slot.worker in resume["workers"]:
            first_pass, skip = resume["workers"][slot.worker]
        k = first_pass
        while self.epochs is None or k < self.epochs:
            epoch = base * (self.epochs or 1) + k  # distinct pass numbers across loader epochs
            for sample, n in self._pass(epoch, slot, skip if k == first_pass else 0):
                sample[STATE_FIELD] = (slot.worker, (k, n))
                yield sample
            k += 1
        yield end_marker(slot.worker, (k, 0))


def webdataset_dataset(
    source: str | Path | Iterable[str | Path],
    selection: Selection = Selection(),
    transform: TransformConfig | ImageTransform = TRAIN_512,
    loader: LoaderConfig = LoaderConfig(),
    *,
    epochs: int | None = 1,
    split_by: SplitBy = "auto",
) -> WebDatasetStream:
    """The IterableDataset behind `webdataset_loader`."""
    if loader.balanced:
        raise ValueError("balanced sampling needs random access; use synfashion_loader (map-style)")
    tf = transform if isinstance(transform, ImageTransform) else ImageTransform(transform)
    shards = resolve_shards(source, selection.split)
    if selection.eval_per_category is not None:
        rows = manifest_samples(source, selection.split) if isinstance(source, (str, Path)) else None
        if rows is None:
            raise ValueError(
                "eval_per_category needs every sample's metadata: pass the built folder (it has manifest.json) "
                "or Selection(keys=...)"
            )
        picked = selection.select_rows([(r["key"], r["category"], r["view"], r["project"]) for r in rows])
        selection = Selection(split=selection.split, keys=frozenset(rows[i]["key"] for i in picked))
    plan = StreamPlan(tuple(shards), split_by, loader.shuffle, loader.seed, loader.shuffle_buffer)
    return WebDatasetStream(
        plan, transform=tf, dist=loader.dist(), selection=selection if selection.filters_metadata else None,
        epochs=epochs, on_error=loader.on_error,
    )


def webdataset_loader(
    source: str | Path | Iterable[str | Path],
    selection: Selection = Selection(),
    transform: TransformConfig | ImageTransform = TRAIN_512,
    loader: LoaderConfig = LoaderConfig(),
    *,
    epochs: int | None = 1,
    split_by: SplitBy = "auto",
) -> SynDataLoader:
    """A DataLoader over SynFashion WebDataset shards.

    `source`: a built folder (reads webdataset/<split>/), a folder of tars, "shards-{00000..00009}.tar", a glob,
    URLs ("https://...", "pipe:curl -s ..."), or a list. `epochs` passes per iteration (None: endless, for
    step-based training); the shard order and buffers reshuffle every pass.
    """
    ds = webdataset_dataset(source, selection, transform, loader, epochs=epochs, split_by=split_by)
    return SynDataLoader(ds, loader, epoch_counter=ds.epoch)
