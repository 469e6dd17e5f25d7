"""SynFashion through `datasets`: a built folder or a Hub id, map-style (Arrow) or `streaming=True`.

Map-style: the Parquet shards are loaded with datasets' own Parquet builder (memory-mapped Arrow), the image
column is read as raw bytes (`Image(decode=False)`) and decoded by our shared transform, the selection is
computed on the metadata columns only, and `EpochSampler` splits indices across ranks (workers share a rank's
indices), so every sample is seen exactly once per epoch. Streaming: the Parquet files are resharded per row
group and split with `split_dataset_by_node`, once across ranks and once more across a rank's workers (reader =
rank x workers + worker), and each worker's `state_dict()` travels with its batches so the loader can resume.
This module knows nothing about tar files.
"""

from __future__ import annotations

import bisect
import itertools
import json
from collections.abc import Iterator
from pathlib import Path

import datasets
import pyarrow as pa
import pyarrow.parquet as pq
import torch.utils.data
from datasets.distributed import split_dataset_by_node

from synfashion.schema import RENDERS_CONFIG

from .distributed import current_worker
from .errors import LoaderError, OnError
from .loader import STATE_FIELD, LoaderConfig, end_marker, SharedEpoch, SynDataLoader, map_style_loader
from .records import RawSample, make_sample, orientation_of, synfashion_meta
from .selection import Selection, category_label, category_name
from .transforms import TRAIN_512, ImageTransform, TransformConfig

META_COLUMNS: tuple[str, ...] = ("key", "category", "view", "project")  # what a Selection looks at
SHARDS_PER_READER = 8  # split streams by whole row groups from this many per reader (at most 1/8 imbalance)
ROW_COLUMNS: tuple[str, ...] = (*META_COLUMNS, "texture", "orientation", "source_path")  # what a sample carries
MANIFEST = "manifest.json"

Source = str | Path | datasets.Dataset | datasets.IterableDataset


def parquet_files(folder: str | Path, split: str, config: str = RENDERS_CONFIG) -> list[str]:
    """The Parquet shards of (config, split) in a built folder: from manifest.json, else the card's file pattern."""
    folder = Path(folder)
    manifest = folder / MANIFEST
    files: list[str] = []
    if manifest.is_file():
        shards = json.loads(manifest.read_text()).get("shards", [])
        files = sorted(
            str(folder / s["path"])
            for s in shards
            if s.get("format") == "parquet" and s.get("config") == config and s.get("split") == split
        )
    if not files:
        files = sorted(str(p) for p in (folder / "data" / config).glob(f"{split}-*.parquet"))
    if not files:
        raise LoaderError(
            f"no Parquet shards for config {config!r}, split {split!r} under {folder}: expected "
            f"data/{config}/{split}-*.parquet (is this a folder written by `synfashion build`?)"
        )
    return files


def open_synfashion(
    source: Source,
    *,
    split: str = "train",
    config: str = RENDERS_CONFIG,
    streaming: bool = False,
    cache_dir: str | None = None,
    revision: str | None = None,
) -> datasets.Dataset | datasets.IterableDataset:
    """The `datasets` object of one split, image column as raw bytes. `source`: built folder, Hub id, or a dataset."""
    if isinstance(source, (datasets.Dataset, datasets.IterableDataset)):
        ds = source
    elif Path(source).is_dir():
        files = parquet_files(source, split, config)
        # the features come from the shards (the writer stores them): extra columns (a sidecar's, a translated
        # variant's provenance) load as they are
        ds = datasets.load_dataset(
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
    return ds.cast_column("image", datasets.Image(decode=False))


def _describe(source: Source, split: str) -> str:
    if isinstance(source, (datasets.Dataset, datasets.IterableDataset)):
        return f"<datasets {type(source).__name__}>[{split}]"
    return f"{source}[{split}]"


class SynFashionDataset(torch.utils.data.Dataset):
    """Map-style: item (index, epoch) -> sample dict. Index is within the selection."""

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
    ):
        self.ds, self.selection, self.transform = ds, selection, transform
        self.seed, self.on_error, self.name = seed, on_error, name or "<datasets>"
        columns = [c for c in ROW_COLUMNS if c in ds.column_names]
        self._meta = ds.select_columns(columns).to_dict()  # small columns, read once; rows then cost nothing
        meta = self._meta
        cats = [category_name(c) for c in meta["category"]]
        if selection.filters_metadata:
            rows = zip(meta["key"], cats, meta["view"], meta["project"])
            self.indices = selection.select_rows(rows)
        else:
            self.indices = list(range(len(ds)))
        self.labels = [category_label(cats[i]) for i in self.indices]
        self.keys = [meta["key"][i] for i in self.indices]
        self._images: _ArrowImageColumn | None = None  # opened lazily in each process (not pickled)
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

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_images"] = None
        return state

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
        raw = RawSample(
            data=self._image_bytes(r),
            key=row["key"],
            source=self._where(r, row.get("source_path")),
            meta=synfashion_meta(row, self.selection.split),
            orientation=orientation_of(row),
        )
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
    ):
        self.ds, self.split, self.transform = ds, split, transform
        self.seed, self.on_error, self.name, self.strategy = seed, on_error, name, strategy
        self.state_every = max(1, state_every)  # the loader's batch size: batches are consecutive items
        self.epoch = SharedEpoch()
        self._resume: dict | None = None

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
            row = {k: v[0] for k, v in batch.items()}
            image = row["image"] or {}
            raw = RawSample(
                data=image.get("bytes"),
                key=row["key"],
                source=f"{self.name} (release file {row.get('source_path')})",
                meta=synfashion_meta(row, self.split),
                orientation=orientation_of(row),
            )
            sample = make_sample(raw, self.transform, seed=self.seed, epoch=epoch, on_error=self.on_error)
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


def _stream_keys(ds: datasets.IterableDataset, selection: Selection) -> frozenset[str]:
    """Resolve the evaluation subset of a stream: one pass over its metadata columns only."""
    rows = [
        (r["key"], category_name(r["category"]), r["view"], r["project"]) for r in ds.select_columns(list(META_COLUMNS))
    ]
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
) -> SynFashionDataset | SynFashionStream:
    """The torch dataset behind `synfashion_loader` (use it with your own DataLoader or sampler)."""
    tf = transform if isinstance(transform, ImageTransform) else ImageTransform(transform)
    ds = open_synfashion(source, split=selection.split, streaming=streaming, cache_dir=cache_dir, revision=revision)
    name = _describe(source, selection.split)
    if not streaming:
        files = None
        if not isinstance(source, (datasets.Dataset, datasets.IterableDataset)) and Path(source).is_dir():
            files = parquet_files(source, selection.split)
        return SynFashionDataset(
            ds, selection=selection, transform=tf, seed=loader.seed, on_error=loader.on_error, name=name, files=files
        )
    if loader.balanced:
        raise ValueError("balanced sampling needs random access; use streaming=False (map-style)")
    ds = ds.reshard()  # one shard per Parquet row group, so workers and ranks split by shards, not by rows
    if selection.filters_metadata:
        if selection.eval_per_category is not None:
            selection = Selection(split=selection.split, keys=_stream_keys(ds, selection))
        ds = ds.filter(
            lambda key, category, view, project: selection.matches(key, category_name(category), view, project),
            input_columns=list(META_COLUMNS),
        )
    dist = loader.dist()
    strategy = split_strategy(ds.num_shards, dist.world_size * max(1, loader.num_workers))
    if dist.world_size > 1:
        ds = split_dataset_by_node(ds, rank=dist.rank, world_size=dist.world_size, strategy=strategy)
    if loader.shuffle:
        ds = ds.shuffle(seed=loader.seed, buffer_size=max(1, loader.shuffle_buffer))
    return SynFashionStream(
        ds, split=selection.split, transform=tf, seed=loader.seed, on_error=loader.on_error, name=name,
        strategy=strategy, state_every=loader.batch_size or 1,
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
) -> SynDataLoader:
    """A DataLoader of SynFashion renders from a built folder or Hub id.

    >>> dl = synfashion_loader("out/", Selection(split="train", categories=("hoodie",)))  # doctest: +SKIP
    >>> batch = next(iter(dl)); batch["image"].shape                                      # doctest: +SKIP
    torch.Size([16, 3, 512, 512])
    """
    ds = synfashion_dataset(
        source, selection, transform, loader, streaming=streaming, cache_dir=cache_dir, revision=revision
    )
    if isinstance(ds, SynFashionStream):
        return SynDataLoader(ds, loader, epoch_counter=ds.epoch)
    return map_style_loader(ds, loader, labels=ds.labels)
