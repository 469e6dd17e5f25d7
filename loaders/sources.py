"""One way in: what a user typed as a dataset, resolved once, and opened for a split.

`DatasetRef.parse(text)` gives one of four kinds, by the one "path or Hub id" rule (`synfashion.hub.refs`):
- "built": a folder written by `synfashion build` or `r2r translate-dataset` (its manifest.json),
- "tars": a folder of WebDataset tars (`*.tar`, or `webdataset/<split>/*.tar`),
- "images": a plain image folder (category sub-folders, or a metadata.jsonl / metadata.csv),
- "hub": a Hub dataset repo `owner/name[@revision]`, read at the commit the revision names,
- "datasets" (only when asked for): a local folder the `datasets` library loads itself (Parquet, CSV, JSON files).
An existing path always wins; a path-looking text that does not exist (`./x`, `~/x`, `a/b/c`) is "no such folder",
never a Hub lookup.

Two ways to open one, each the only one of its kind in the project:
- `open_records(ref, splits)`: every sample's metadata (from the manifest, or the tars' JSON) and a picklable
  key -> original bytes reader, for consumers that decode in their own workers (translate-dataset, ablate); keys
  are checked as plain names here, where they are read (`synfashion.fs.safepath.key_problem`).
- `open_images(ref, split, transform)`: a map-style torch dataset of decoded samples through the loaders' own
  datasets (evaluate, DKI training data, downstream).
Every path read from a manifest or a tar is checked by `synfashion.fs.safepath`; Hub failures are one line
(`synfashion.hub.refs.hub_read_error`). Read-only.
"""

from __future__ import annotations

import json
import os
import tarfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from synfashion.fs.filehash import file_sha256
from synfashion.fs.safepath import inside, key_problem, path_problem
from synfashion.hub.errors import hub_read_error
from synfashion.hub.refs import RefError, looks_like_path, split_revision
from synfashion.manifest import MANIFEST, Manifest, ManifestError
from synfashion.schema import RENDERS_CONFIG, SPLITS

from .errors import FieldProblem, LoaderError
from .records import parse_dimension, parse_orientation

RefKind = Literal["built", "tars", "images", "hub", "datasets"]
SYNFASHION_COLUMNS = frozenset({"key", "category", "view", "project"})  # a `datasets` split with these is SynFashion


class SourceError(LoaderError, ValueError):
    """The source cannot be read as a SynFashion dataset; the message names it and what is wrong."""


# --------------------------------------------------------------------------------------------------- the reference
@dataclass(frozen=True)
class DatasetRef:
    """A dataset as the user named it (`text`), resolved to one kind; `path` for local kinds, `repo_id` and
    `revision` (as asked: a branch, tag or commit) for "hub"."""

    text: str
    kind: RefKind
    path: Path | None = None
    repo_id: str | None = None
    revision: str | None = None

    @classmethod
    def parse(cls, text: str | Path, *, revision: str | None = None, kind: RefKind | None = None) -> "DatasetRef":
        """The one rule (see the module docstring). `kind` forces how an existing folder is read (e.g. a folder
        that `datasets` loads is still "images" here only when asked); `revision` applies to a Hub id (an
        `@revision` in the text wins)."""
        text = str(text)
        path = Path(text).expanduser()
        if path.exists():
            if not path.is_dir():
                raise RefError(f"{text}: a file, not a dataset folder")
            return cls(text, kind or _folder_kind(path), path=path)
        if looks_like_path(text):
            raise RefError(f"{text}: no such folder")
        repo_id, at = split_revision(text)
        if repo_id.count("/") != 1 or path_problem(repo_id) is not None or not all(repo_id.split("/")):
            raise RefError(f"{text}: no such folder, and not a Hub dataset id (owner/name[@revision])")
        return cls(text, "hub", repo_id=repo_id, revision=at or revision)

    @property
    def local(self) -> bool:
        return self.kind != "hub"

    def describe(self) -> str:
        """In words, for messages and cards: "built folder X", "Hub dataset owner/name@rev", ..."""
        what = {"built": "built folder", "tars": "WebDataset folder", "images": "image folder", "hub": "Hub dataset",
                "datasets": "datasets folder"}[self.kind]
        return f"{what} {self.text}"

    def __str__(self) -> str:
        return self.text


def _folder_kind(path: Path) -> RefKind:
    if (path / MANIFEST).is_file():
        return "built"
    if any(path.glob("*.tar")) or (path / "webdataset").is_dir():
        return "tars"
    if (path / "data" / RENDERS_CONFIG).is_dir():  # Parquet shards without a manifest (datasets reads them)
        return "built"
    return "images"


def hub_snapshot(ref: DatasetRef, allow_patterns: Sequence[str] | Callable[[set[str]], Sequence[str]]) -> tuple[Path, str]:
    """(local snapshot folder, commit) of a Hub dataset, with only the files `allow_patterns` names (or computes
    from the repo's file list); one `SourceError` line for any Hub failure."""
    from huggingface_hub import HfApi, snapshot_download

    try:
        info = HfApi().dataset_info(ref.repo_id, revision=ref.revision)
        files = {s.rfilename for s in info.siblings or []}
        patterns = allow_patterns(files) if callable(allow_patterns) else allow_patterns
        local = snapshot_download(ref.repo_id, repo_type="dataset", revision=info.sha, allow_patterns=list(patterns))
    except Exception as e:  # noqa: BLE001 - mapped to one line when it is a Hub/network failure, else re-raised
        line = hub_read_error(e, typed=ref.text, repo_id=ref.repo_id, repo_type="dataset", revision=ref.revision)
        if line is None:
            raise
        raise SourceError(line) from None
    return Path(local), info.sha


# --------------------------------------------------------------------------------------------------- records
@dataclass(frozen=True)
class SourceRef:
    """Where the records came from, as a derived dataset records it (no absolute paths)."""

    kind: str  # "folder" (a built folder), "hub" (a Hub repo of one), "webdataset" (a folder of tars)
    name: str
    path: str | None = None  # as given, for a local source (dataset.py records it relative to the output)
    repo_id: str | None = None
    revision: str | None = None  # the commit a Hub source was read at
    fingerprint: str | None = None  # the source manifest's fingerprint
    manifest_sha256: str | None = None

    def as_dict(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if v is not None}


@dataclass(frozen=True)
class ParquetBytes:
    """key -> image bytes from renders Parquet shards, read a row group at a time (the last one stays cached in
    each process: the plan reads keys in shard order, so most reads hit it)."""

    where: dict[str, tuple[str, int, int]]  # key -> (file, row group, row within it)
    _cache: dict = field(default_factory=dict, compare=False, repr=False)

    def __call__(self, key: str) -> bytes:
        import pyarrow.parquet as pq

        path, group, row = self.where[key]
        if self._cache.get("at") != (path, group):
            column = pq.ParquetFile(path).read_row_group(group, columns=["image"]).column("image")
            self._cache.clear()
            self._cache.update(at=(path, group), column=column)
        cell = self._cache["column"][row].as_py()
        data = cell.get("bytes") if isinstance(cell, dict) else None
        if not isinstance(data, bytes):
            raise SourceError(f"{path} row group {group} row {row} ({key!r}): the image column holds no bytes")
        return data

    def __getstate__(self) -> dict:
        return {"where": self.where, "_cache": {}}  # a worker opens its own files


@dataclass(frozen=True)
class TarBytes:
    """key -> image bytes from WebDataset tars, read at the member's recorded offset."""

    where: dict[str, tuple[str, int, int]]  # key -> (tar, data offset, size)

    def __call__(self, key: str) -> bytes:
        path, offset, size = self.where[key]
        with open(path, "rb") as f:
            data = os.pread(f.fileno(), size, offset)
        if len(data) != size:
            raise SourceError(f"{path}: member of {key!r} ends early (the tar is truncated)")
        return data


@dataclass
class Records:
    """A dataset opened as records: metadata per sample and the original bytes by key (`open_records`)."""

    ref: SourceRef
    samples: list[dict]  # every sample's metadata (key, split, category, ..., sha256), sorted by key
    read: ParquetBytes | TarBytes
    root: Path  # the local folder read (a Hub source: its cached snapshot): no output may be, hold or sit in it


def _parquet_index(root: Path, rels: Sequence[str], links_within: Path | None) -> dict[str, tuple[str, int, int]]:
    import pyarrow.parquet as pq

    where: dict[str, tuple[str, int, int]] = {}
    for rel in rels:
        path = inside(root, rel, where=str(root / MANIFEST), links_within=links_within)
        pf = pq.ParquetFile(path)
        if "key" not in pf.schema_arrow.names or "image" not in pf.schema_arrow.names:
            raise SourceError(f"{path}: not a renders shard (needs 'key' and 'image' columns)")
        for group in range(pf.num_row_groups):
            for row, key in enumerate(pf.read_row_group(group, columns=["key"]).column("key").to_pylist()):
                if key_problem(key) is not None:  # keys become file names: checked where they are read
                    raise SourceError(f"{path} row group {group} row {row}: key {str(key)[:80]!r} {key_problem(key)}")
                where[key] = (str(path), group, row)
    return where


def _tar_index(tars: Sequence[Path]) -> tuple[dict[str, tuple[str, int, int]], dict[str, dict]]:
    """Image member offsets and JSON metadata per key, from the tar headers (data is skipped, not read)."""
    where: dict[str, tuple[str, int, int]] = {}
    metas: dict[str, dict] = {}
    for tar in tars:
        try:
            with tarfile.open(tar) as tf:
                for m in tf:
                    if not m.isfile() or path_problem(m.name) is not None or "/" in m.name or "." not in m.name:
                        raise SourceError(f"{tar}: member {m.name!r} is not a plain <key>.<ext> file")
                    key, _, ext = m.name.partition(".")
                    if key_problem(key) is not None:  # keys become file names: checked where they are read
                        raise SourceError(f"{tar}: member {m.name!r}: its key {key_problem(key)}")
                    if ext == "json":
                        try:
                            meta = json.loads(tf.extractfile(m).read())
                        except (json.JSONDecodeError, UnicodeDecodeError) as e:
                            raise SourceError(f"{tar}: {m.name} is not valid JSON ({e})") from None
                        if not isinstance(meta, dict):
                            raise SourceError(f"{tar}: {m.name} is not a JSON object")
                        metas[key] = meta
                    else:
                        if key in where:
                            raise SourceError(f"{tar}: sample {key!r} has more than one image member")
                        where[key] = (str(tar), m.offset_data, m.size)
        except tarfile.TarError as e:
            raise SourceError(f"{tar}: unreadable tar ({e})") from None
    return where, metas


def _from_folder(root: Path, splits: Sequence[str], ref: SourceRef, links_within: Path | None = None) -> Records:
    try:
        manifest = Manifest.read(root)
    except ManifestError as e:
        raise SourceError(str(e)) from None
    if manifest.kind != "synfashion":
        raise SourceError(f"{root} is a {manifest.kind} dataset; translate a SynFashion build (its renders)")
    ref = SourceRef(**{**ref.__dict__, "fingerprint": manifest.fingerprint,
                       "manifest_sha256": file_sha256(root / MANIFEST)})
    samples = sorted((s for s in manifest.samples if s["split"] in splits), key=lambda s: s["key"])
    samples = [{k: v for k, v in s.items() if k != "shards"} for s in samples]
    parquet = [s.path for s in manifest.shards_where(format="parquet", config=RENDERS_CONFIG) if s.split in splits]
    tars = [s.path for s in manifest.shards_where(format="webdataset") if s.split in splits]
    if parquet and all((root / p).is_file() for p in parquet):
        read: ParquetBytes | TarBytes = ParquetBytes(_parquet_index(root, parquet, links_within))
    elif tars and all((root / p).is_file() for p in tars):
        where = str(root / MANIFEST)
        read = TarBytes(_tar_index([inside(root, p, where=where, links_within=links_within) for p in tars])[0])
    else:
        raise SourceError(f"{root}: the shards of split(s) {', '.join(splits)} listed in manifest.json are not all "
                          "there (a partial download? pull the parquet or webdataset format)")
    missing = [s["key"] for s in samples if s["key"] not in read.where]
    if missing:
        raise SourceError(f"{root}: {len(missing)} sample(s) of manifest.json are in no shard, e.g. {missing[0]!r}")
    return Records(ref, samples, read, root)


def _from_tars(root: Path, splits: Sequence[str]) -> Records:
    tars = sorted(root.glob("*.tar")) or sorted(p for s in splits for p in (root / "webdataset" / s).glob("*.tar"))
    where, metas = _tar_index(tars)
    samples = []
    for key in sorted(where):
        meta = metas.get(key)
        tar = where[key][0]
        if meta is None:
            raise SourceError(f"{tar}: sample {key!r} has no .json member (its metadata)")
        if meta.get("key", key) != key:
            raise SourceError(f"{tar}: {key}.json says its key is {str(meta.get('key'))[:80]!r}, not the member's "
                              f"{key!r}")
        missing = [f for f in ("category", "sha256") if not isinstance(meta.get(f), str)]
        if missing:
            raise SourceError(f"{tar}: {key}.json has no {' or '.join(missing)} (a SynFashion shard's metadata "
                              "records both)")
        try:  # the fields a reader computes with, parsed where they are read (loaders/records.py)
            for f in ("width", "height"):
                parse_dimension(meta.get(f), f)
            parse_orientation(meta.get("orientation"))
        except FieldProblem as e:
            raise SourceError(f"{tar}: {key}.json: {e}") from None
        if meta.get("split", splits[0] if len(splits) == 1 else None) in splits:
            samples.append({**meta, "key": key, "split": meta.get("split") or splits[0]})
    return Records(SourceRef("webdataset", root.name, path=str(root)), samples, TarBytes(where), root)


def _from_hub(ref: DatasetRef, splits: Sequence[str]) -> Records:
    def wanted(files: set[str]) -> list[str]:
        parquet = [f"data/{RENDERS_CONFIG}/{s}-*.parquet" for s in splits]
        tars = [f"webdataset/{s}/*.tar" for s in splits]
        return [MANIFEST, "README.md", *(parquet if any(f.startswith(f"data/{RENDERS_CONFIG}/") for f in files)
                                         else tars)]

    local, commit = hub_snapshot(ref, wanted)
    source = SourceRef("hub", ref.repo_id.rsplit("/", 1)[-1], repo_id=ref.repo_id, revision=commit)
    # the snapshot's files link into the repo's cache folder (snapshots/<commit>/x -> ../../blobs/<hash>)
    return _from_folder(local, splits, source, links_within=local.parents[1])


def open_records(ref: DatasetRef | str | Path, splits: Sequence[str], *, revision: str | None = None) -> Records:
    """The samples of `splits` of a built folder, a Hub dataset of one, or a folder of WebDataset tars, with a
    picklable key -> original bytes reader."""
    bad = [s for s in splits if s not in SPLITS]
    if bad:
        raise SourceError(f"unknown split(s) {bad}; the splits are {', '.join(SPLITS)}")
    if not isinstance(ref, DatasetRef):
        try:
            ref = DatasetRef.parse(ref, revision=revision)
        except RefError as e:
            raise SourceError(f"source {e}") from None
    if ref.kind == "hub":
        return _from_hub(ref, splits)
    if ref.kind == "built" and (ref.path / MANIFEST).is_file():
        return _from_folder(ref.path, splits, SourceRef("folder", ref.path.resolve().name, path=str(ref.path)))
    if ref.kind == "tars":
        return _from_tars(ref.path, splits)
    raise SourceError(f"{ref.path}: neither a built folder (no manifest.json) nor a folder of WebDataset tars")


# --------------------------------------------------------------------------------------------------- images
def open_images(ref: DatasetRef | str | Path, split: str | None, transform, *, on_error: str = "raise",
                seed: int = 0, selection=None, revision: str | None = None, captions="none",
                caption_column: str | None = None, image_column: str = "image"):
    """A map-style torch dataset of decoded samples of `split` (None: every split, concatenated):
    - a built folder, or a Hub dataset with SynFashion columns: `SynFashionDataset` (`selection` filters it),
    - an image folder: `ImageFolderDataset` (`captions`, `caption_column` as there),
    - any other Hub / `datasets` image dataset: `HFImageDataset` (`image_column`, `caption_column`).
    `transform`: a loaders `ImageTransform`. Errors are `LoaderError`s naming the dataset."""
    import datasets
    import torch.utils.data

    from .folder import HFImageDataset, ImageFolderDataset
    from .hf import parquet_files, synfashion_dataset
    from .loader import LoaderConfig
    from .selection import Selection

    if not isinstance(ref, DatasetRef):
        ref = DatasetRef.parse(ref, revision=revision)
    config = LoaderConfig(seed=seed, on_error=on_error)
    if ref.kind == "images":
        return ImageFolderDataset(ref.path, transform=transform, captions=captions, caption_column=caption_column,
                                  seed=seed, on_error=on_error)
    if ref.kind == "tars":
        raise SourceError(f"{ref.text}: a folder of WebDataset tars is read as a stream (loaders.webdataset_loader); "
                          "pass the built folder they belong to")
    if ref.kind == "built":
        def has(s: str) -> bool:
            try:
                return bool(parquet_files(ref.path, s))
            except LoaderError:
                return False

        splits = [split] if split else [s for s in SPLITS if has(s)]
        if not splits:
            raise SourceError(f"{ref.text}: a built folder with no Parquet split")
        parts = [synfashion_dataset(ref.path, _selection(selection, s, Selection), transform, config)
                 for s in splits]
        return parts[0] if len(parts) == 1 else torch.utils.data.ConcatDataset(parts)
    name = ref.repo_id if ref.kind == "hub" else str(ref.path)
    if ref.kind == "hub":  # datasets retries an unreachable Hub for a minute; say so at once
        from synfashion.hub.reach import require_hub

        require_hub(ref.text, "dataset", "pass a local folder, or set HF_HUB_OFFLINE=1 to read the local cache")
    try:
        loaded = datasets.load_dataset(name, split=split, revision=ref.revision)
    except Exception as e:  # noqa: BLE001 - a Hub/network failure is one line; anything else is datasets' own
        line = None if ref.kind != "hub" else hub_read_error(e, typed=ref.text, repo_id=ref.repo_id,
                                                               repo_type="dataset", revision=ref.revision)
        if line is not None:
            raise SourceError(f"cannot load it as a Hub dataset ({line})") from None
        if isinstance(e, (OSError, ValueError)):  # no such split, not a dataset, ...
            raise SourceError(f"cannot open {ref.text!r}" + (f" (split {split!r})" if split else "")
                              + f" as a datasets dataset: {type(e).__name__}: {e}") from None
        raise
    splits = [split]
    if isinstance(loaded, datasets.DatasetDict):
        splits = sorted(loaded)
        loaded = datasets.concatenate_datasets([loaded[n] for n in splits])
    if SYNFASHION_COLUMNS <= set(loaded.column_names):
        return synfashion_dataset(loaded, _selection(selection, split or "train", Selection), transform, config)
    if caption_column is None and captions == "auto":
        caption_column = next((c for c in ("text", "caption") if c in loaded.column_names), None)
    from huggingface_hub import constants

    roots = [datasets.config.HF_DATASETS_CACHE, constants.HF_HUB_CACHE, *([ref.path] if ref.path else [])]
    images = HFImageDataset(loaded, image_column=image_column, caption_column=None if captions == "none" else
                            caption_column, transform=transform, seed=seed, on_error=on_error,
                            name=f"{ref.text}" + (f"[{split}]" if split else ""), path_roots=roots)
    images.splits = splits  # the splits read (every one of a repo when `split` is None)
    return images


def _selection(selection, split: str, cls):
    if selection is None:
        return cls(split=split)
    from dataclasses import replace

    return replace(selection, split=split)


__all__ = ["DatasetRef", "Records", "SourceError", "SourceRef", "hub_snapshot", "open_images", "open_records"]
