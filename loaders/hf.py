"""SynFashion through `datasets`: a built folder or a Hub id, map-style (Arrow) or `streaming=True`.

Map-style: the Parquet shards are loaded with datasets' own Parquet builder (memory-mapped Arrow), the image
column is read as raw bytes (`Image(decode=False)`) and decoded by our shared transform, the selection is
computed on the metadata columns only, and `EpochSampler` splits indices across ranks (workers share a rank's
indices), so every sample is seen exactly once per epoch. Streaming: the Parquet files are resharded per row
group and split with `split_dataset_by_node`, once across ranks and once more across a rank's workers (reader =
rank x workers + worker), and each worker's `state_dict()` travels with its batches so the loader can resume.

The features come from the data (each shard's stored schema), never forced, so shards with more columns load as
they are; scalar columns outside the renders schema travel with each sample (`columns=` picks them). A local shard
without what the loader interprets (`loaders.columns`) is refused naming it, or skipped; a row whose category,
orientation or key is malformed is an error naming its shard, row and key, or a counted skip. Shard paths come
from the manifest only as plain relative paths inside the folder (`loaders.manifest`).
This module knows nothing about tar files.
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import datasets
import pyarrow as pa
import pyarrow.parquet as pq
import torch.utils.data
from datasets.distributed import split_dataset_by_node

from synfashion.schema import RENDERS_CONFIG

from .columns import extra_columns, features_problem, label_names, shard_features
from .distributed import current_worker
from .errors import (
    FieldProblem,
    LoaderError,
    OnError,
    SampleMetadataError,
    ShardFormatError,
    SkippedSample,
)
from .loader import STATE_FIELD, LoaderConfig, end_marker, SharedEpoch, SynDataLoader, map_style_loader
from .manifest import manifest_shards, read_manifest
from .records import RawSample, make_sample, parse_category, parse_key, parse_orientation, parse_view, synfashion_meta
from .selection import Selection, category_label
from .transforms import TRAIN_512, ImageTransform, TransformConfig

META_COLUMNS: tuple[str, ...] = ("key", "category", "view", "project")  # what a Selection looks at
SHARDS_PER_READER = 8  # split streams by whole row groups from this many per reader (at most 1/8 imbalance)
ROW_COLUMNS: tuple[str, ...] = (*META_COLUMNS, "texture", "orientation", "source_path")  # what a sample carries

Source = str | Path | datasets.Dataset | datasets.IterableDataset


def parquet_files(folder: str | Path, split: str, config: str = RENDERS_CONFIG) -> list[str]:
    """The Parquet shards of (config, split) in a built folder, as absolute paths: from manifest.json (every shard
    path in it must be a plain relative path inside the folder), else the card's file pattern."""
    folder = Path(folder).absolute()
    files = manifest_shards(folder, "parquet", split, config) or []
    if not files:
        files = sorted(str(p) for p in (folder / "data" / config).glob(f"{split}-*.parquet"))
    if not files:
        raise LoaderError(f"no Parquet shards for config {config!r}, split {split!r} under {folder}: "
                          + missing_split_hint(folder, split))
    return files


def missing_split_hint(folder: Path, split: str) -> str:
    """Why a built folder has no shards of `split`, and what to do: a dataset that holds only other splits (a
    translated one holds the splits it was translated with), or a folder that is no build at all."""
    manifest = read_manifest(folder)
    if manifest is None:
        return f"expected data/{RENDERS_CONFIG}/{split}-*.parquet (is this a folder written by `synfashion build`?)"
    held = sorted({s.split for s in manifest.shards})
    what = ("a translated dataset holds only the splits it was translated with: run its `r2r translate-dataset` "
            f"again with `--split {' --split '.join([*held, split])}` (and --overwrite), or into another folder with "
            f"`--split {split}`" if manifest.kind == "translated" else "read one of those splits")
    return f"it holds the split(s) {', '.join(held) or 'none'} and no {split!r}; {what}"


def check_shards(files: list[str], on_error: OnError = "raise") -> tuple[list[str], list[SkippedSample]]:
    """The shards whose stored schema a renders loader can read (the same columns and types as the first usable one,
    so datasets can concatenate them), and a skip record for each other one; with on_error="raise", the first
    refused shard raises `ShardFormatError` naming it and the column."""
    good: list[str] = []
    skipped: list[SkippedSample] = []
    first = None
    for f in files:
        try:
            features, schema = shard_features(f)
            problem = features_problem(features)
            if problem is None and first is not None and not schema.equals(first[1]):
                diff = sorted(set(schema.names) ^ set(first[1].names)) or [
                    n for n in schema.names if schema.field(n).type != first[1].field(n).type]
                problem = f"its columns differ from those of {first[0]} ({', '.join(diff)})"
        except Exception as e:  # pyarrow: not a Parquet file, truncated footer, ...
            problem = f"cannot read its schema ({type(e).__name__}: {e})"
        if problem is None:
            first = first or (f, schema)
            good.append(f)
        elif on_error == "skip":
            skipped.append(SkippedSample(f, "*", f"shard refused: {problem}"))
        else:
            raise ShardFormatError(
                f"Parquet shard {f}: {problem}; not a SynFashion renders split. Fix or remove the shard, or pass "
                "on_error='skip' to skip it (reported in loader.skipped)."
            )
    if not good:
        shown = "; ".join(f"{s.source}: {s.reason}" for s in skipped[:3])
        raise ShardFormatError(f"no usable Parquet shard among {len(files)}: {shown}")
    return good, skipped


@dataclass
class Opened:
    """A split opened for reading: the datasets object, its local shard files (when known), the shards refused."""

    ds: datasets.Dataset | datasets.IterableDataset
    files: list[str] = field(default_factory=list)
    skipped: list[SkippedSample] = field(default_factory=list)


def open_split(
    source: Source,
    *,
    split: str = "train",
    config: str = RENDERS_CONFIG,
    streaming: bool = False,
    cache_dir: str | None = None,
    revision: str | None = None,
    on_error: OnError = "raise",
) -> Opened:
    """`open_synfashion` plus what the torch datasets need: local shard files, and shards refused (skip mode)."""
    files: list[str] = []
    skipped: list[SkippedSample] = []
    if isinstance(source, (datasets.Dataset, datasets.IterableDataset)):
        ds = source
    elif Path(source).is_dir():
        files = parquet_files(source, split, config)
        if config == RENDERS_CONFIG:
            files, skipped = check_shards(files, on_error)
        ds = datasets.load_dataset(  # features: those the shards carry (never forced: extra columns are fine)
            "parquet", data_files={split: files}, split=split, streaming=streaming, cache_dir=cache_dir,
        )
    else:
        ds = datasets.load_dataset(
            str(source), name=config, split=split, streaming=streaming, cache_dir=cache_dir, revision=revision
        )
    if "image" not in (ds.features or {}):
        raise LoaderError(
            f"{source}: no 'image' column (columns: {list(ds.features or {})}); not a SynFashion renders split"
        )
    if config == RENDERS_CONFIG:
        problem = features_problem(ds.features)
        if problem is not None:
            raise ShardFormatError(f"{_describe(source, split)}: {problem}; not a SynFashion renders split")
    try:
        ds = ds.cast_column("image", datasets.Image(decode=False))
    except Exception as e:  # pyarrow/datasets cast errors for a column that holds no image bytes
        raise ShardFormatError(f"{_describe(source, split)}: the 'image' column cannot be read as image bytes "
                               f"({type(e).__name__}: {e})") from None
    return Opened(ds, files, skipped)


def open_synfashion(
    source: Source,
    *,
    split: str = "train",
    config: str = RENDERS_CONFIG,
    streaming: bool = False,
    cache_dir: str | None = None,
    revision: str | None = None,
) -> datasets.Dataset | datasets.IterableDataset:
    """The `datasets` object of one split, image column as raw bytes. `source`: built folder, Hub id, or a dataset.
    Features are those stored in the data; a local shard that is not a renders split raises naming it."""
    return open_split(source, split=split, config=config, streaming=streaming, cache_dir=cache_dir,
                      revision=revision).ds


def row_meta(row: dict, split: str, names: dict[str, list[str]], extra: Sequence[str]) -> tuple[str, dict, int | None]:
    """(key, sample metadata, orientation) of one row; `FieldProblem` naming the first malformed field. `names`: the
    data's ClassLabel names per column (columns.label_names)."""
    key = parse_key(row.get("key"))
    meta = synfashion_meta(row, split, label_names=names, extra=extra)
    return key, meta, parse_orientation(row.get("orientation"))


def _describe(source: Source, split: str) -> str:
    if isinstance(source, (datasets.Dataset, datasets.IterableDataset)):
        return f"<datasets {type(source).__name__}>[{split}]"
    return f"{source}[{split}]"


class SynFashionDataset(torch.utils.data.Dataset):
    """Map-style: item (index, epoch) -> sample dict. Index is within the selection.

    Every row's metadata is read and checked once, up front: a malformed row raises `SampleMetadataError` naming
    its shard, row, key and field, or (on_error="skip") is left out and listed in `preskipped`, which the loader
    reports (rank 0, once per epoch) with the other skips."""

    def __init__(
        self,
        ds: datasets.Dataset,
        *,
        selection: Selection = Selection(),
        transform: ImageTransform = ImageTransform(TRAIN_512),
        seed: int = 0,
        on_error: OnError = "raise",
        name: str = "",
        files: list[str] | None = None,
        columns: Sequence[str] | None = None,
        preskipped: list[SkippedSample] | None = None,
    ):
        self.ds, self.selection, self.transform = ds, selection, transform
        self.seed, self.on_error, self.name = seed, on_error, name or "<datasets>"
        problem = features_problem(ds.features)
        if problem is not None:
            raise ShardFormatError(f"{self.name}: {problem}; not a SynFashion renders split")
        self._names = label_names(ds.features)
        self.extra = extra_columns(ds.features, columns)
        # Row -> Parquet file, so an error names the shard (known for local folders only).
        self._files = files or []
        self._starts: list[int] = []
        if files:
            total = 0
            for f in files:
                self._starts.append(total)
                total += pq.ParquetFile(f).metadata.num_rows
            if total != len(ds):
                self._files, self._starts = [], []
        wanted = [c for c in ROW_COLUMNS if c in ds.column_names] + [c for c in self.extra if c not in ROW_COLUMNS]
        self._meta = ds.select_columns(wanted).to_dict()  # small columns, read once; rows then cost nothing
        self.preskipped: list[SkippedSample] = list(preskipped or [])
        rows, good = [], []
        for r in range(len(ds)):
            row = {c: values[r] for c, values in self._meta.items()}
            try:
                key, meta, _ = row_meta(row, selection.split, self._names, self.extra)
            except FieldProblem as e:
                where, key = self._where(r, row.get("source_path")), str(row.get("key") or f"row {r}")
                if on_error == "skip":
                    self.preskipped.append(SkippedSample(where, key, f"bad metadata: {e}"))
                    continue
                raise SampleMetadataError.from_problem(e, source=where, key=key) from None
            good.append(r)
            rows.append((key, meta["category"], meta["view"] or "", meta["project"] or ""))
        picked = selection.select_rows(rows) if selection.filters_metadata else range(len(rows))
        self.indices = [good[i] for i in picked]
        self.labels = [category_label(rows[i][1]) for i in picked]
        self.keys = [rows[i][0] for i in picked]
        self._images: _ArrowImageColumn | None = None  # opened lazily in each process (not pickled)

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_images"] = None
        return state

    def column_values(self, names: Sequence[str]) -> dict[str, list]:
        """name -> the values of the selected samples, in index order, for each of `names` the data has (a small
        metadata column such as sha256, width or source_path; never the images)."""
        present = [n for n in names if n in self.ds.column_names]
        if not present:
            return {}
        table = self.ds.select_columns(present)
        values = (table.select(self.indices) if len(self.indices) != len(self.ds) else table).to_dict()
        return {n: values[n] for n in present}

    def _image_bytes(self, row: int) -> bytes | None:
        if self._images is None:
            self._images = _ArrowImageColumn.open(self.ds)
        if self._images.available:
            return self._images[row]
        return (self.ds[row]["image"] or {}).get("bytes")

    def __len__(self) -> int:
        return len(self.indices)

    def _where(self, row: int, source_path: str | None) -> str:
        if self._files:
            j = bisect.bisect_right(self._starts, row) - 1
            where = f"{self._files[j]} row {row - self._starts[j]}"
        else:
            where = f"{self.name} row {row}"
        return f"{where} (release file {source_path})" if source_path else where

    def __getitem__(self, item: int | tuple[int, int]) -> dict:
        i, epoch = item if isinstance(item, tuple) else (item, 0)
        r = self.indices[i]
        row = {c: values[r] for c, values in self._meta.items()}
        key, meta, orientation = row_meta(row, self.selection.split, self._names, self.extra)  # checked in __init__
        raw = RawSample(data=self._image_bytes(r), key=key, source=self._where(r, row.get("source_path")), meta=meta,
                        orientation=orientation)
        return make_sample(raw, self.transform, seed=self.seed, epoch=epoch, on_error=self.on_error)


class _ArrowImageColumn:
    """Row -> image bytes straight from the (memory-mapped) Arrow table: datasets' row formatting costs ~40x
    more per row, which shows at hundreds of images per second. Unavailable when the dataset carries an index
    mapping (a `select`ed or shuffled `datasets.Dataset` handed in by the caller); then rows go through `ds[i]`."""

    def __init__(self, chunks: list | None):
        self.chunks = chunks or []
        self.available = chunks is not None
        self.starts = list(itertools.accumulate((len(c) for c in self.chunks[:-1]), initial=0))

    @classmethod
    def open(cls, ds: datasets.Dataset, column: str = "image") -> "_ArrowImageColumn":
        if getattr(ds, "_indices", None) is not None:
            return cls(None)
        try:
            col = ds.data.table.column(column)
            return cls([c.field("bytes") for c in col.chunks])
        except (KeyError, AttributeError, TypeError, pa.ArrowInvalid):
            return cls(None)

    def __getitem__(self, row: int) -> bytes | None:
        j = bisect.bisect_right(self.starts, row) - 1
        return self.chunks[j][row - self.starts[j]].as_py()


class SynFashionStream(torch.utils.data.IterableDataset):
    """Streaming: iterates a `datasets.IterableDataset` already split for this rank, split again per worker.

    Resume: each sample carries its worker's `state_dict()`; `set_resume` gives each worker its own back.
    (torchdata's StatefulDataLoader is not needed: the main process records the state of what it received.)
    Exact when `shuffle_buffer=0`; with a buffer, datasets refills it on resume (its documented behaviour).
    """

    def __init__(
        self,
        ds: datasets.IterableDataset,
        *,
        split: str,
        transform: ImageTransform,
        seed: int,
        on_error: OnError,
        name: str,
        strategy: str = "auto",
        state_every: int = 1,
        files: list[str] | None = None,
        columns: Sequence[str] | None = None,
        preskipped: list[SkippedSample] | None = None,
    ):
        self.ds, self.split, self.transform = ds, split, transform
        self.seed, self.on_error, self.name, self.strategy = seed, on_error, name, strategy
        self.state_every = max(1, state_every)  # the loader's batch size: batches are consecutive items
        self.epoch = SharedEpoch()
        self._resume: dict | None = None
        self._names = label_names(ds.features)
        self.extra = extra_columns(ds.features, columns)
        self.files = files or []  # local shards, to name the file and row of a bad row
        self._locations: dict[str, str] | None = None
        self.preskipped: list[SkippedSample] = list(preskipped or [])  # shards refused before reading

    def _where(self, row: dict) -> str:
        key, found = row.get("key"), None
        if self.files and isinstance(key, str):
            if self._locations is None:  # built on the first bad row only: a stream does not say where a row is
                self._locations = row_locations(self.files)
            found = self._locations.get(key)
        where = found or self.name
        return f"{where} (release file {row.get('source_path')})" if row.get("source_path") else where

    def _sample(self, row: dict, epoch: int) -> dict:
        try:
            key, meta, orientation = row_meta(row, self.split, self._names, self.extra)
        except FieldProblem as e:
            where, key = self._where(row), str(row.get("key") or "?")
            if self.on_error == "skip":
                return SkippedSample(where, key, f"bad metadata: {e}").as_marker()
            raise SampleMetadataError.from_problem(e, source=where, key=key) from None
        image = row["image"] or {}
        source = f"{self.name} (release file {row.get('source_path')})"
        raw = RawSample(data=image.get("bytes"), key=key, source=source, meta=meta, orientation=orientation)
        return make_sample(raw, self.transform, seed=self.seed, epoch=epoch, on_error=self.on_error)

    def set_resume(self, resume: dict | None) -> None:
        self._resume = resume

    def __iter__(self) -> Iterator[dict]:
        epoch = self.epoch.value
        worker, num_workers = current_worker()
        ds = self.ds
        if num_workers > 1:
            # Split by worker ourselves (composed with the rank split: reader = rank * num_workers + worker) and
            # iterate with `.iter()`, which does not split again: then a worker's state_dict has the same shape
            # when it is loaded back, which datasets' own worker path does not guarantee after reshard/filter.
            ds = split_dataset_by_node(ds, rank=worker, world_size=num_workers, strategy=self.strategy)
        ds.set_epoch(epoch)
        resume = self._resume
        if resume and resume["epoch"] == epoch and worker in resume["workers"]:
            ds.load_state_dict(resume["workers"][worker])
        else:
            ds.load_state_dict(None)  # a fresh epoch (the same object is reused when num_workers=0)
        n = 0
        for batch in ds.iter(batch_size=1):
            n += 1
            sample = self._sample({k: v[0] for k, v in batch.items()}, epoch)
            # Copying datasets' state costs ~0.4 ms; only the state after a batch's last sample is ever used.
            sample[STATE_FIELD] = (worker, ds.state_dict() if n % self.state_every == 0 else None)
            yield sample
        yield end_marker(worker, ds.state_dict())


def split_strategy(num_shards: int, readers: int) -> str:
    """datasets' split strategy for `readers` (ranks x workers): whole shards (row groups) when they divide evenly
    or are many enough that the remainder costs little; else "examples", where every reader reads every row and
    keeps its own (exactly once either way, but "examples" reads and formats each row `readers` times).
    datasets' "auto" only takes shards when they divide evenly, which for a row-group count is mostly luck."""
    if readers <= 1 or num_shards % readers == 0 or num_shards >= SHARDS_PER_READER * readers:
        return "shards"
    return "examples"


def row_locations(files: list[str]) -> dict[str, str]:
    """key -> "<file> row <i>" over local shards, from their key columns (for naming a bad row of a stream)."""
    out: dict[str, str] = {}
    for f in files:
        try:
            keys = pq.read_table(f, columns=["key"]).column("key").to_pylist()
        except Exception:  # an unreadable shard was refused before; nothing to name here
            continue
        for i, key in enumerate(keys):
            if isinstance(key, str):
                out.setdefault(key, f"{f} row {i}")
    return out


class _SelectionFilter:
    """The selection as a datasets filter over (key, category, view, project); a row whose metadata is malformed
    passes, so the stream reports it (it cannot be matched). A class, not a lambda: spawned workers pickle it."""

    def __init__(self, selection: Selection, names: dict[str, list[str]]):
        self.selection, self.names = selection, names

    def __call__(self, key, category, view, project) -> bool:
        try:
            name = parse_category(category, self.names.get("category"))
            view = parse_view(view, self.names.get("view"))
        except FieldProblem:
            return True
        return self.selection.matches(key, name, view or "", project or "")


def _stream_keys(ds: datasets.IterableDataset, selection: Selection, names: dict[str, list[str]]) -> frozenset[str]:
    """Resolve the evaluation subset of a stream: one pass over its metadata columns only (malformed rows, which
    the stream reports, are not candidates)."""
    rows = []
    for r in ds.select_columns(list(META_COLUMNS)):
        try:
            rows.append((parse_key(r["key"]), parse_category(r["category"], names.get("category")),
                         parse_view(r["view"], names.get("view")) or "", r["project"] or ""))
        except FieldProblem:
            continue
    return frozenset(rows[i][0] for i in selection.select_rows(rows))


def synfashion_dataset(
    source: Source,
    selection: Selection = Selection(),
    transform: TransformConfig | ImageTransform = TRAIN_512,
    loader: LoaderConfig = LoaderConfig(),
    *,
    streaming: bool = False,
    cache_dir: str | None = None,
    revision: str | None = None,
    columns: Sequence[str] | None = None,
) -> SynFashionDataset | SynFashionStream:
    """The torch dataset behind `synfashion_loader` (use it with your own DataLoader or sampler)."""
    tf = transform if isinstance(transform, ImageTransform) else ImageTransform(transform)
    opened = open_split(source, split=selection.split, streaming=streaming, cache_dir=cache_dir, revision=revision,
                        on_error=loader.on_error)
    ds, name = opened.ds, _describe(source, selection.split)
    if not streaming:
        return SynFashionDataset(
            ds, selection=selection, transform=tf, seed=loader.seed, on_error=loader.on_error, name=name,
            files=opened.files or None, columns=columns, preskipped=opened.skipped,
        )
    if loader.balanced:
        raise ValueError("balanced sampling needs random access; use streaming=False (map-style)")
    names = label_names(ds.features)
    ds = ds.reshard()  # one shard per Parquet row group, so workers and ranks split by shards, not by rows
    if selection.filters_metadata:
        if selection.eval_per_category is not None:
            selection = Selection(split=selection.split, keys=_stream_keys(ds, selection, names))
        ds = ds.filter(_SelectionFilter(selection, names), input_columns=list(META_COLUMNS))
    dist = loader.dist()
    strategy = split_strategy(ds.num_shards, dist.world_size * max(1, loader.num_workers))
    if dist.world_size > 1:
        ds = split_dataset_by_node(ds, rank=dist.rank, world_size=dist.world_size, strategy=strategy)
    if loader.shuffle:
        ds = ds.shuffle(seed=loader.seed, buffer_size=max(1, loader.shuffle_buffer))
    return SynFashionStream(
        ds, split=selection.split, transform=tf, seed=loader.seed, on_error=loader.on_error, name=name,
        strategy=strategy, state_every=loader.batch_size or 1, files=opened.files, columns=columns,
        preskipped=opened.skipped,
    )


def synfashion_loader(
    source: Source,
    selection: Selection = Selection(),
    transform: TransformConfig | ImageTransform = TRAIN_512,
    loader: LoaderConfig = LoaderConfig(),
    *,
    streaming: bool = False,
    cache_dir: str | None = None,
    revision: str | None = None,
    columns: Sequence[str] | None = None,
) -> SynDataLoader:
    """A DataLoader of SynFashion renders from a built folder or Hub id.

    Each sample also carries the data's scalar columns outside the renders schema (e.g. `source_key` and
    `source_sha256` of a translated split); `columns=[...]` names exactly which extra columns travel instead.

    >>> dl = synfashion_loader("out/", Selection(split="train", categories=("hoodie",)))  # doctest: +SKIP
    >>> batch = next(iter(dl)); batch["image"].shape                                      # doctest: +SKIP
    torch.Size([16, 3, 512, 512])
    """
    ds = synfashion_dataset(
        source, selection, transform, loader, streaming=streaming, cache_dir=cache_dir, revision=revision,
        columns=columns,
    )
    if isinstance(ds, SynFashionStream):
        return SynDataLoader(ds, loader, epoch_counter=ds.epoch)
    return map_style_loader(ds, loader, labels=ds.labels)
