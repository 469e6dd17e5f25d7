"""SynFashion WebDataset shards (local paths, globs, brace patterns or URLs) as a torch IterableDataset.

A pipeline of named stages, each a small generator: shard list (shuffled per (seed, epoch)) -> split across
readers (ranks x workers: whole shards when there are enough, else every N-th sample) -> tar members grouped
into samples (webdataset's tar iterator) -> metadata filter (the JSON only, before any decode) -> shuffle buffer
-> resume skip -> decode. Every stage is deterministic for (seed, epoch, reader), so a finite read yields each
sample exactly once across all readers and resuming is an exact replay that skips what was already delivered.

Shards are opened here, not by webdataset's `gopen`: local files with `open`, http(s) URLs in-process with the Hub
token in a header (`loaders.http`), never through a shell. Shard paths read from a built folder's manifest are data
and must be plain relative paths inside the folder (`loaders.manifest`). A `pipe:` command runs only when the
caller wrote it and said so (`allow_pipe=True`); other URL schemes the caller gives (gs://, ...) go to webdataset's
`gopen`. A member whose JSON does not parse or whose metadata is malformed is an error naming the shard, the member
and the field, or a counted skip.
"""

from __future__ import annotations

import glob
import json
import os
import random
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Literal

import braceexpand
import torch.utils.data
from webdataset.tariterators import group_by_keys, tar_file_expander

from synfashion.schema import IMAGE_EXTENSIONS

from .distributed import DistInfo, ReaderSlot, reader_slot
from .errors import (
    FieldProblem,
    OnError,
    SampleMetadataError,
    ShardReadError,
    SkippedSample,
    UnsafeSourceError,
)
from .http import HttpAccess, http_failure, is_http, open_http
from .loader import STATE_FIELD, LoaderConfig, end_marker, SharedEpoch, SynDataLoader
from .manifest import manifest_samples, manifest_shards
from .records import (
    RawSample,
    make_sample,
    parse_category,
    parse_key,
    parse_orientation,
    scalar_extras,
    synfashion_meta,
)
from .selection import Selection
from .transforms import TRAIN_512, ImageTransform, TransformConfig

SplitBy = Literal["auto", "shards", "examples"]
# "auto" splits by whole shards when there are at least this many per reader (at most 1/8 imbalance).
AUTO_SHARDS_PER_READER = 8
IMAGE_SUFFIXES: tuple[str, ...] = tuple(sorted(e.lstrip(".") for e in IMAGE_EXTENSIONS))
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")  # a URL or a command prefix (pipe:), as safepath reads it


def _pipe_refused(text: str) -> UnsafeSourceError:
    return UnsafeSourceError(
        f"shard source {text[:80]!r} is a shell command (webdataset runs `pipe:` sources in a shell). Pass "
        "allow_pipe=True if you wrote this command yourself; never for a string read from a file, a card or the Hub. "
        "Hub shards need no command: pass the https URLs of synfashion.hub.webdataset_urls()."
    )


def resolve_shards(
    source: str | Path | Iterable[str | Path], split: str = "train", *, allow_pipe: bool = False
) -> list[str]:
    """Shard locations from: a built folder (its manifest's tars of `split`, else webdataset/<split>/*.tar), a
    folder of tars, a brace pattern, a glob, a URL, or a list of any of these. Local results are absolute paths,
    sorted; the order of a given list is kept. A `pipe:` source is refused unless `allow_pipe`."""
    if not isinstance(source, (str, Path)):
        return [u for item in source for u in resolve_shards(item, split, allow_pipe=allow_pipe)]
    text = str(source)
    if text.startswith("pipe:"):
        if not allow_pipe:
            raise _pipe_refused(text)
        return list(braceexpand.braceexpand(text))
    if _SCHEME.match(text) and not Path(text).exists():
        return list(braceexpand.braceexpand(text))
    path = Path(text).absolute()
    if path.is_dir():
        if (path / "webdataset").is_dir():
            found = manifest_shards(path, "webdataset", split)  # every shard path in it checked first
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
            out += sorted(os.path.abspath(p) for p in glob.glob(item))
        else:
            out.append(os.path.abspath(item))
    missing = [u for u in out if not os.path.exists(u)]
    if missing or not out:
        raise ShardReadError(f"shard(s) not found: {', '.join(missing[:5]) or text}")
    return out


@dataclass(frozen=True)
class StreamPlan:
    """What one pass reads: the shard list and how it is divided (fixed for the dataset's lifetime)."""

    shards: tuple[str, ...]
    split_by: SplitBy = "auto"
    shuffle: bool = True
    seed: int = 0
    shuffle_buffer: int = 256
    allow_pipe: bool = False  # the caller wrote the `pipe:` shards themselves
    http: HttpAccess = field(default_factory=HttpAccess)

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


def open_shard(url: str, plan: StreamPlan) -> IO[bytes]:
    """One shard as a binary stream; never a shell unless the caller allowed their own `pipe:` command."""
    if url.startswith("pipe:"):
        if not plan.allow_pipe:
            raise _pipe_refused(url)
        from webdataset.gopen import gopen

        return gopen(url)
    if is_http(url):
        return open_http(url, plan.http)
    if _SCHEME.match(url):  # a URL the caller gave (gs://, ...): webdataset's openers, which take no shell
        from webdataset.gopen import gopen

        return gopen(url)
    return open(url, "rb")


def stage_read(
    shards: list[str], on_error: OnError, skipped: list[SkippedSample], plan: StreamPlan | None = None
) -> Iterator[dict]:
    """Tar members grouped into samples; a shard that cannot be read raises naming it, or is recorded."""
    plan = plan or StreamPlan(tuple(shards))
    current = {"url": "an unknown shard"}

    def handler(exn: Exception) -> bool:
        if isinstance(exn, UnsafeSourceError):
            raise exn
        where = current["url"]
        http = http_failure(exn)
        if http is not None:
            detail, hint = http
        else:
            detail = f"{type(exn).__name__}: {exn.args[0] if exn.args else exn}"
            hint = ("Check the file (re-download or rebuild it), or pass on_error='skip' to skip it (reported in "
                    "loader.skipped).")
        detail = plan.http.scrub(detail)
        if on_error == "skip":
            skipped.append(SkippedSample(where, "*", f"shard unreadable: {detail}"))
            return True
        raise ShardReadError(f"cannot read WebDataset shard {where}: {detail}. {hint}") from exn

    def streams() -> Iterator[dict]:
        for url in shards:
            current["url"] = url
            try:
                stream = open_shard(url, plan)
            except Exception as exn:
                handler(exn)
                continue
            try:
                yield {"url": url, "stream": stream}
            finally:
                stream.close()

    yield from group_by_keys(tar_file_expander(streams(), handler=handler), handler=handler)


def stage_split_examples(samples: Iterator[dict], slot: ReaderSlot, mode: str) -> Iterator[dict]:
    if mode == "shards" or slot.count == 1:
        yield from samples
        return
    for j, s in enumerate(samples):
        if j % slot.count == slot.index:
            yield s


def member_meta(s: dict) -> dict:
    """A sample's JSON member as a dict ({} when it has none); `FieldProblem` when it does not parse or is not an
    object."""
    if "json" not in s:
        return {}
    try:
        meta = json.loads(s["json"])
    except (ValueError, RecursionError) as e:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise FieldProblem("json", f"not valid JSON ({type(e).__name__}: {e})") from None
    if not isinstance(meta, dict):
        raise FieldProblem("json", f"holds a {type(meta).__name__}, not a JSON object")
    return meta


def stage_filter(samples: Iterator[dict], selection: Selection | None) -> Iterator[dict]:
    """Parse each sample's JSON once; keep those the selection matches (no image decoded yet). A sample whose
    metadata cannot be read is kept, marked, so the decode stage reports it (it cannot be matched)."""
    for s in samples:
        try:
            meta = member_meta(s)
        except FieldProblem as e:
            s["__meta__"], s["__problem__"] = {}, e
            yield s
            continue
        s["__meta__"] = meta
        if selection is not None and meta:
            try:
                key = parse_key(meta.get("key", s["__key__"]))
                category = parse_category(meta["category"]) if "category" in meta else ""
            except FieldProblem:
                yield s  # reported when it is turned into a sample
                continue
            view, project = meta.get("view"), meta.get("project")
            if not selection.matches(key, category, view if isinstance(view, str) else "",
                                     project if isinstance(project, str) else ""):
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


def _image_ext(s: dict) -> str | None:
    return next((e for e in IMAGE_SUFFIXES if e in s), None)


def member_source(s: dict, ext: str | None = None) -> str:
    """Where a sample came from: its shard and member (the image, or `ext`), for errors and skip records."""
    ext = ext or _image_ext(s) or ("json" if "json" in s else "?")
    return f"{s.get('__url__')} member {s['__key__']}.{ext}"


def to_raw(s: dict) -> RawSample:
    """A grouped tar sample -> RawSample; `FieldProblem` when its metadata is malformed."""
    meta = s.get("__meta__", {})
    ext = _image_ext(s)
    key = parse_key(meta.get("key", s["__key__"]))
    out_meta = synfashion_meta(meta, "", extra=scalar_extras(meta)) if "category" in meta else {}
    data = s.get(ext) if ext else None
    return RawSample(data=data, key=key, source=member_source(s), meta=out_meta,
                     orientation=parse_orientation(meta.get("orientation")))


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
        samples = stage_read(stage_shards(self.plan, epoch, slot), self.on_error, skipped, self.plan)
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
            yield self._sample(s, epoch), n
        while skipped:
            yield skipped.pop(0).as_marker(), n

    def _sample(self, s: dict, epoch: int) -> dict:
        try:
            if "__problem__" in s:
                raise s["__problem__"]
            raw = self.to_raw(s)
        except FieldProblem as e:
            source, key = member_source(s, "json" if e.field == "json" else None), s["__key__"]
            if self.on_error == "skip":
                return SkippedSample(source, key, f"bad metadata: {e}").as_marker()
            raise SampleMetadataError.from_problem(e, source=source, key=key) from None
        return make_sample(raw, self.transform, seed=self.plan.seed, epoch=epoch, on_error=self.on_error)

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
    token: str | bool | None = None,
    endpoint: str | None = None,
    allow_pipe: bool = False,
) -> WebDatasetStream:
    """The IterableDataset behind `webdataset_loader`."""
    if loader.balanced:
        raise ValueError("balanced sampling needs random access; use synfashion_loader (map-style)")
    tf = transform if isinstance(transform, ImageTransform) else ImageTransform(transform)
    shards = resolve_shards(source, selection.split, allow_pipe=allow_pipe)
    if selection.eval_per_category is not None:
        rows = manifest_samples(source, selection.split) if isinstance(source, (str, Path)) else None
        if rows is None:
            raise ValueError(
                "eval_per_category needs every sample's metadata: pass the built folder (it has manifest.json) "
                "or Selection(keys=...)"
            )
        picked = selection.select_rows([(r["key"], r["category"], r["view"], r["project"]) for r in rows])
        selection = Selection(split=selection.split, keys=frozenset(rows[i]["key"] for i in picked))
    plan = StreamPlan(tuple(shards), split_by, loader.shuffle, loader.seed, loader.shuffle_buffer,
                      allow_pipe=allow_pipe, http=HttpAccess(token, endpoint))
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
    token: str | bool | None = None,
    endpoint: str | None = None,
    allow_pipe: bool = False,
) -> SynDataLoader:
    """A DataLoader over SynFashion WebDataset shards.

    `source`: a built folder (the tars its manifest lists, else webdataset/<split>/), a folder of tars,
    "shards-{00000..00009}.tar", a glob, http(s) URLs (e.g. `synfashion.hub.webdataset_urls(repo, split)`), or a
    list. URLs are streamed in-process; Hub URLs (HF_ENDPOINT, or `endpoint`) carry the token (`token`, else HF_TOKEN
    or the saved login; False: none) in a header, so private repos work without curl or a shell. `epochs` passes
    per iteration (None: endless, for step-based training); the shard order and buffers reshuffle every pass.

    `allow_pipe=True` lets a `pipe:` source of your own run in a shell, as webdataset does (say, `pipe:aws s3 cp
    s3://bucket/shard.tar -`); it is refused by default so that a string from a file, a card or the Hub never
    becomes a command. A manifest's shard paths are never commands, whatever this flag says.
    """
    ds = webdataset_dataset(source, selection, transform, loader, epochs=epochs, split_by=split_by, token=token,
                            endpoint=endpoint, allow_pipe=allow_pipe)
    return SynDataLoader(ds, loader, epoch_counter=ds.epoch)
