"""The DataLoader every entry point returns: batching, workers, epochs, skip accounting and resume state.

`SynDataLoader` is a plain torch DataLoader plus bookkeeping done in the main process as batches arrive:
skipped samples are removed from batches, counted in `loader.skipped` and warned about at the end of the epoch
(never dropped silently); `state_dict()` / `load_state_dict()` resume mid-epoch (a sampler offset for map-style
datasets, per-worker stream states for iterable ones). It does not read data itself.
"""

from __future__ import annotations

import warnings
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch.utils.data import DataLoader, Dataset, IterableDataset, default_collate

from .decode import tune_decoder
from .distributed import DistInfo
from .errors import SKIPPED_FIELD, OnError, SkippedSample, check_on_error
from .samplers import BalancedSampler, EpochSampler

STATE_FIELD = "__state__"  # (worker id, stream state after this sample or None), from iterable datasets
END_FIELD = "__end__"  # on the item an iterable dataset's worker yields after its last sample
SIZE_FIELD = "__size__"  # real samples in a batch (skip and end markers removed)


@dataclass(frozen=True)
class LoaderConfig:
    """How samples are batched and delivered.

    batch_size: samples per batch; None yields single samples.
    num_workers: DataLoader worker processes (decoding is CPU-bound: about one per core).
    shuffle / seed: the order (and augmentation) is a function of (seed, epoch) only.
    shuffle_buffer: sample-level shuffle buffer of streaming sources (0 disables; shard order is still shuffled).
    balanced: map-style SynFashion only: draw categories equally often (`num_samples` per epoch).
    even: map-style: drop up to world_size-1 samples so every rank gets the same count (DDP step parity).
    rank / world_size: explicit distributed slot; default from RANK/WORLD_SIZE or torch.distributed.
    on_error: "raise" (default) or "skip" undecodable or malformed samples and unreadable shards (counted in
        `loader.skipped`).
    pin_memory: None pins when CUDA is available.
    """

    batch_size: int | None = 16
    num_workers: int = 2
    shuffle: bool = True
    seed: int = 0
    shuffle_buffer: int = 256
    balanced: bool = False
    num_samples: int | None = None
    even: bool = False
    drop_last: bool = False
    rank: int | None = None
    world_size: int | None = None
    on_error: OnError = "raise"
    pin_memory: bool | None = None
    prefetch_factor: int | None = None
    persistent_workers: bool = False
    multiprocessing_context: str | None = None

    def __post_init__(self) -> None:
        check_on_error(self.on_error)
        if self.batch_size is not None and self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1 or None, got {self.batch_size}")
        if self.num_workers < 0:
            raise ValueError(f"num_workers must be >= 0, got {self.num_workers}")
        if self.shuffle_buffer < 0:
            raise ValueError(f"shuffle_buffer must be >= 0, got {self.shuffle_buffer}")

    def dist(self) -> DistInfo:
        return DistInfo.resolve(self.rank, self.world_size)


class SharedEpoch:
    """An epoch counter that DataLoader workers (persistent ones included) read from shared memory."""

    def __init__(self, value: int = 0):
        self._t = torch.zeros((), dtype=torch.int64).share_memory_()
        self._t.fill_(value)

    @property
    def value(self) -> int:
        return int(self._t)

    def set(self, value: int) -> None:
        self._t.fill_(int(value))


def end_marker(worker: int, state: object) -> dict:
    """What an iterable dataset yields after its last sample, so the loader knows that worker has finished."""
    return {END_FIELD: True, STATE_FIELD: (worker, state)}


def collate(samples: list[dict]) -> dict:
    """Stack images, tensor-ise ints and floats, list everything else; pull out skip/end markers and stream state."""
    skipped = [s[SKIPPED_FIELD] for s in samples if SKIPPED_FIELD in s]
    states = [s[STATE_FIELD] for s in samples if STATE_FIELD in s]
    real = [s for s in samples if SKIPPED_FIELD not in s and END_FIELD not in s]
    batch: dict = {}
    if real:
        for name in real[0]:
            if name == STATE_FIELD:
                continue
            values = [s.get(name) for s in real]
            first = values[0]
            if isinstance(first, torch.Tensor) and all(
                isinstance(v, torch.Tensor) and v.shape == first.shape for v in values
            ):
                # default_collate stacks straight into shared memory inside a worker: no copy on the way out
                batch[name] = default_collate(values)
            elif all(type(v) is int for v in values):
                batch[name] = torch.tensor(values, dtype=torch.int64)
            elif all(type(v) is float for v in values):
                batch[name] = torch.tensor(values, dtype=torch.float64)
            else:
                batch[name] = values
    batch[SKIPPED_FIELD] = skipped
    batch[SIZE_FIELD] = len(real)
    if any(END_FIELD in s for s in samples):
        batch[END_FIELD] = True
    if states:  # a batch of an iterable dataset comes from one worker, in order: keep its latest state
        batch[STATE_FIELD] = (states[-1][0], next((st for _, st in reversed(states) if st is not None), None))
    return batch


def _init_worker(worker_id: int) -> None:
    tune_decoder()


def _single(sample: dict) -> dict:
    """batch_size=None: the same bookkeeping fields as a batch, around one sample."""
    out = dict(sample)
    skipped = out.pop(SKIPPED_FIELD, None)
    out[SKIPPED_FIELD] = [skipped] if skipped is not None else []
    out[SIZE_FIELD] = 0 if (skipped is not None or END_FIELD in out) else 1
    return out


class _RoundRobin:
    """Re-establishes the worker round-robin of an iterable dataset's batches from a given worker on.

    torch delivers batches of iterable datasets round-robin over the workers that still have data, always
    starting at worker 0. After a resume the next batch is due from some other worker; holding at most one
    batch per worker back restores the uninterrupted order exactly. Each batch names its worker (STATE_FIELD)
    and a worker's last batch carries END_FIELD.
    """

    def __init__(self, num_workers: int, next_worker: int = 0, ended: frozenset[int] = frozenset()):
        self.n = num_workers
        self.ended = set(ended)
        self.next = next_worker if next_worker not in self.ended else self._after(next_worker)

    def _after(self, w: int) -> int | None:
        for step in range(1, self.n + 1):
            c = (w + step) % self.n
            if c not in self.ended:
                return c
        return None

    def __call__(self, batches: Iterator[dict]) -> Iterator[dict]:
        queues: dict[int, deque] = {w: deque() for w in range(self.n)}
        for b in batches:
            w = b[STATE_FIELD][0] if STATE_FIELD in b else None
            if w is None or w in self.ended:  # nothing to order, or a finished worker's end marker on resume
                yield b
                continue
            queues[w].append(b)
            while self.next is not None and queues[self.next]:
                out = queues[self.next].popleft()
                if out.get(END_FIELD):
                    self.ended.add(self.next)
                self.next = self._after(self.next)
                yield out
        for w in range(self.n):  # only reached with leftovers if a worker died without its end marker
            yield from queues[w]


class SynDataLoader(DataLoader):
    """A torch DataLoader with epoch handling, skip accounting and resume.

    `loader.skipped` lists every `SkippedSample` so far; `loader.epoch` is the epoch the next iteration runs:
    it advances after each complete pass (an iteration abandoned early runs the same epoch again next time), or
    set it with `set_epoch`. Iterable sources: batches of different workers arrive round-robin, as torch
    delivers them; a resumed loader restores that order exactly.
    """

    def __init__(
        self, dataset: Dataset, config: LoaderConfig, *, sampler=None, epoch_counter: SharedEpoch | None = None
    ):
        pin = torch.cuda.is_available() if config.pin_memory is None else config.pin_memory
        self._iterable = isinstance(dataset, IterableDataset)
        kwargs = {}
        if config.num_workers > 0:
            kwargs["worker_init_fn"] = _init_worker
            kwargs["persistent_workers"] = config.persistent_workers
            if config.prefetch_factor is not None:
                kwargs["prefetch_factor"] = config.prefetch_factor
            if config.multiprocessing_context is not None:
                kwargs["multiprocessing_context"] = config.multiprocessing_context
        super().__init__(
            dataset,
            batch_size=config.batch_size,
            sampler=sampler,
            num_workers=config.num_workers,
            collate_fn=collate if config.batch_size is not None else _single,
            pin_memory=pin,
            # Iterable datasets: a worker's last, partial batch carries its end marker, so it is dropped here.
            drop_last=config.drop_last and config.batch_size is not None and not self._iterable,
            **kwargs,
        )
        self.config = config
        self.skipped: list[SkippedSample] = []
        self.epoch = 0
        self._epoch_counter = epoch_counter
        self._consumed = 0  # indices (delivered + skipped) of the current epoch, for map-style resume
        self._worker_states: dict[int, object] = {}
        self._order: _RoundRobin | None = None
        self._resume: dict | None = None

    # -------------------------------------------------------------------------------------------- epochs
    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def _start_epoch(self) -> bool:
        """Set up the epoch; True when it starts fresh (not resumed mid-way)."""
        resume = self._resume if self._resume and self._resume["epoch"] == self.epoch else None
        self._resume = None
        if resume is None:  # a fresh epoch
            self._consumed, self._worker_states = 0, {}
            if hasattr(self.sampler, "set_start"):
                self.sampler.set_start(0)
            if hasattr(self.dataset, "set_resume"):
                self.dataset.set_resume(None)
        if hasattr(self.sampler, "set_epoch"):
            self.sampler.set_epoch(self.epoch)
        if self._epoch_counter is not None:
            self._epoch_counter.set(self.epoch)
        self._order = None
        if self._iterable and self.num_workers > 1:
            nxt, ended = (resume["next_worker"], frozenset(resume["ended"])) if resume else (0, frozenset())
            self._order = _RoundRobin(self.num_workers, nxt, ended)
        return resume is None

    def __iter__(self) -> Iterator:
        fresh = self._start_epoch()
        skipped_before = len(self.skipped)
        if fresh and self.config.dist().rank == 0:
            # shards and rows the dataset left out before reading (refused schemas, malformed map-style rows): every
            # rank leaves them out, rank 0 reports them, once per epoch like any other skip
            self.skipped.extend(getattr(self.dataset, "preskipped", ()))
        batches = super().__iter__()
        if self._order is not None:
            batches = self._order(batches)
        for batch in batches:
            skipped = batch.pop(SKIPPED_FIELD)
            size = batch.pop(SIZE_FIELD)
            ended = batch.pop(END_FIELD, False)
            if STATE_FIELD in batch:
                wid, state = batch.pop(STATE_FIELD)
                if state is not None:
                    self._worker_states[wid] = state
            self.skipped.extend(skipped)
            self._consumed += size + len(skipped)
            if not size:
                continue
            if self.config.batch_size is None:
                yield batch
            elif ended and self.config.drop_last and size + len(skipped) < self.config.batch_size:
                continue  # drop_last for a worker's partial final batch
            else:
                yield batch
        new = self.skipped[skipped_before:]
        if new:
            shown = "; ".join(f"{s.key} ({s.source}): {s.reason}" for s in new[:5])
            more = f"; ... and {len(new) - 5} more" if len(new) > 5 else ""
            warnings.warn(f"epoch {self.epoch}: skipped {len(new)} undecodable or malformed sample(s): {shown}{more}",
                          stacklevel=2)
        self.epoch += 1
        self._consumed, self._worker_states = 0, {}

    # -------------------------------------------------------------------------------------------- resume
    def state_dict(self) -> dict:
        """Where the current epoch stands; valid to resume with the same dataset, seed and worker count."""
        order = self._order
        return {
            "epoch": self.epoch,
            "consumed": self._consumed,
            "num_workers": self.num_workers,
            "world_size": self.config.dist().world_size,
            "workers": dict(self._worker_states),
            "next_worker": order.next if order is not None else 0,
            "ended": sorted(order.ended) if order is not None else [],
            "skipped": len(self.skipped),
        }

    def load_state_dict(self, state: dict) -> None:
        """Continue the saved epoch at the next unseen sample (call before iterating)."""
        workers = {int(k): v for k, v in state["workers"].items()}  # JSON turns the worker ids into strings
        if self._iterable:
            if state["num_workers"] != self.num_workers:
                raise ValueError(
                    f"the checkpoint was taken with num_workers={state['num_workers']}; a streaming reader resumes "
                    f"per worker, so build the loader with num_workers={state['num_workers']} (got {self.num_workers})"
                )
            if not hasattr(self.dataset, "set_resume"):
                raise ValueError(f"{type(self.dataset).__name__} cannot resume mid-epoch")
            self.dataset.set_resume({"epoch": state["epoch"], "workers": workers})
        else:
            if not hasattr(self.sampler, "set_start"):
                raise ValueError("this loader's sampler cannot resume mid-epoch")
            self.sampler.set_start(state["consumed"])
        self.epoch = state["epoch"]
        self._consumed = state["consumed"]
        self._worker_states = workers
        self._resume = {
            "epoch": state["epoch"], "next_worker": state.get("next_worker", 0), "ended": state.get("ended", []),
        }


def map_style_loader(dataset: Dataset, config: LoaderConfig, *, labels=None) -> SynDataLoader:
    """A loader over a map-style dataset: exactly once per epoch per the rank split, or category-balanced."""
    dist = config.dist()
    if config.balanced:
        if labels is None:
            raise ValueError("balanced sampling needs per-sample category labels (a SynFashion source)")
        sampler = BalancedSampler(labels, num_samples=config.num_samples, dist=dist, seed=config.seed)
    else:
        sampler = EpochSampler(len(dataset), dist=dist, shuffle=config.shuffle, seed=config.seed, even=config.even)
    return SynDataLoader(dataset, config, sampler=sampler)
