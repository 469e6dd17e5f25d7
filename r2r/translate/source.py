"""The dataset a translation reads: a built SynFashion folder, a Hub repo of one, or a folder of WebDataset tars.

`open_source` gives the source's samples (their metadata, from its manifest or its tars' JSON), where it came from
(for the translated dataset's provenance: a folder's name and manifest fingerprint, a repo id pinned to its commit)
and a picklable byte reader (key -> the image's original bytes) for the decode workers. Images are decoded the way
`loaders` decodes them for training (EXIF orientation, CMYK, 16-bit, palette), never re-implemented here. Every
path read from a manifest or a tar is checked by `synfashion.fs.safepath`. Read-only.
"""

from __future__ import annotations

import json
import os
import tarfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from synfashion.fs.filehash import file_sha256
from synfashion.manifest import MANIFEST, Manifest, ManifestError
from synfashion.fs.safepath import inside, key_problem, path_problem
from synfashion.schema import RENDERS_CONFIG, SPLITS


class SourceError(ValueError):
    """The source cannot be read as a SynFashion dataset; the message names it and what is wrong."""


@dataclass(frozen=True)
class SourceRef:
    """Where the source came from, as the translated dataset records it (no absolute paths)."""

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
class SourceDataset:
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


def _from_folder(root: Path, splits: Sequence[str], ref: SourceRef, links_within: Path | None = None) -> SourceDataset:
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
    return SourceDataset(ref, samples, read, root)


def _from_tars(root: Path, splits: Sequence[str]) -> SourceDataset:
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
        if meta.get("split", splits[0] if len(splits) == 1 else None) in splits:
            samples.append({**meta, "key": key, "split": meta.get("split") or splits[0]})
    return SourceDataset(SourceRef("webdataset", root.name, path=str(root)), samples, TarBytes(where), root)


def _from_hub(repo_id: str, splits: Sequence[str], revision: str | None) -> SourceDataset:
    from huggingface_hub import HfApi, snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError, OfflineModeIsEnabled

    try:
        info = HfApi().dataset_info(repo_id, revision=revision)
        files = {s.rfilename for s in info.siblings or []}
        parquet = [f"data/{RENDERS_CONFIG}/{s}-*.parquet" for s in splits]
        wanted = parquet if any(f.startswith(f"data/{RENDERS_CONFIG}/") for f in files) else \
            [f"webdataset/{s}/*.tar" for s in splits]
        local = snapshot_download(repo_id, repo_type="dataset", revision=info.sha,
                                  allow_patterns=[MANIFEST, "README.md", *wanted])
    except (HfHubHTTPError, LocalEntryNotFoundError, OfflineModeIsEnabled, OSError, ValueError) as e:
        raise SourceError(f"cannot read the Hub dataset {repo_id!r}{f'@{revision}' if revision else ''}: "
                          f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}") from None
    ref = SourceRef("hub", repo_id.rsplit("/", 1)[-1], repo_id=repo_id, revision=info.sha)
    # the snapshot's files link into the repo's cache folder (snapshots/<commit>/x -> ../../blobs/<hash>)
    return _from_folder(Path(local), splits, ref, links_within=Path(local).parents[1])


def open_source(source: str | Path, splits: Sequence[str], *, revision: str | None = None) -> SourceDataset:
    """A built folder, a Hub dataset id (namespace/name), or a folder of WebDataset tars."""
    bad = [s for s in splits if s not in SPLITS]
    if bad:
        raise SourceError(f"unknown split(s) {bad}; the splits are {', '.join(SPLITS)}")
    path = Path(source)
    if path.is_dir():
        if (path / MANIFEST).is_file():
            return _from_folder(path, splits, SourceRef("folder", path.resolve().name, path=str(path)))
        if any(path.glob("*.tar")) or (path / "webdataset").is_dir():
            return _from_tars(path, splits)
        raise SourceError(f"{path}: neither a built folder (no manifest.json) nor a folder of WebDataset tars")
    text = str(source)
    if path.exists() or text.startswith((".", "/", "~")) or text.count("/") != 1:
        raise SourceError(f"source {text!r}: no such folder (and not a Hub dataset id of the form namespace/name)")
    return _from_hub(text, splits, revision)
