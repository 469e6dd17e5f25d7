"""Plain image folders and any `datasets` image dataset: the real-photo domain and user-provided renders.

Same output dict and transform as the SynFashion sources (key, source, image) plus `path` and an optional
`caption`: from a metadata.jsonl / metadata.csv at the folder root (datasets' imagefolder convention:
`file_name` relative to the folder, and a `text` or `caption` column), else from a sidecar `<name>.txt` next to
the image. The file list is sorted, so indices (and therefore the seeded order) are stable across machines.
A `datasets` row that holds an image `path` instead of bytes is read from disk only inside the folders the dataset
came from (its local folder, the datasets / Hub caches): a path in a stranger's Parquet is data, not a licence to
read any file on this machine.
"""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path
from typing import Literal

import datasets
import torch.utils.data

from synfashion.schema import IMAGE_EXTENSIONS

from .files import ImageFileError, list_files, read_file, read_text_file
from .errors import FieldProblem, LoaderError, OnError, SampleDecodeError, SampleMetadataError, SkippedSample
from .loader import LoaderConfig, SynDataLoader, map_style_loader
from .records import RawSample, make_sample
from .transforms import TRAIN_512, ImageTransform, TransformConfig

METADATA_NAMES: tuple[str, ...] = ("metadata.jsonl", "metadata.csv")
CAPTION_COLUMNS: tuple[str, ...] = ("text", "caption")
CaptionMode = Literal["auto", "none"]


def _read_metadata(path: Path) -> list[dict]:
    try:
        text = read_text_file(path)
        if path.suffix == ".jsonl":
            rows = []
            for n, line in enumerate(text.split("\n"), 1):  # not splitlines(): JSON strings may hold U+2028
                if line.strip():
                    try:
                        row = json.loads(line)
                    except (json.JSONDecodeError, RecursionError) as e:
                        raise LoaderError(f"{path}:{n}: not valid JSON ({e})") from None
                    if not isinstance(row, dict):
                        raise LoaderError(f"{path}:{n}: holds a {type(row).__name__}, not a JSON object")
                    rows.append(row)
            return rows
        return list(csv.DictReader(io.StringIO(text, newline="")))
    except UnicodeDecodeError as e:
        raise LoaderError(f"{path}: not UTF-8 text ({e})") from None


def read_captions(root: Path, metadata: Path, caption_column: str | None) -> dict[str, str]:
    """file_name (relative, '/'-separated) -> caption, from a jsonl/csv metadata file."""
    rows = _read_metadata(metadata)
    if not rows:
        return {}
    if "file_name" not in rows[0]:
        raise LoaderError(f"{metadata}: needs a 'file_name' column (relative path of each image)")
    column = caption_column or next((c for c in CAPTION_COLUMNS if c in rows[0]), None)
    if column is None:
        raise LoaderError(f"{metadata}: no caption column (expected one of {', '.join(CAPTION_COLUMNS)}); pass "
                          "caption_column=NAME for another column, or captions='none' to use the images without "
                          "captions")
    base = metadata.parent.relative_to(root).as_posix()
    prefix = "" if base == "." else base + "/"
    return {prefix + str(r["file_name"]).replace("\\", "/"): r.get(column) for r in rows}


class ImageFolderDataset(torch.utils.data.Dataset):
    """Every image file under `root` (recursively, hidden files skipped), sorted by relative path."""

    def __init__(
        self,
        root: str | Path,
        *,
        transform: ImageTransform = ImageTransform(TRAIN_512),
        captions: CaptionMode | str | Path = "auto",
        caption_column: str | None = None,
        extensions: frozenset[str] = IMAGE_EXTENSIONS,
        seed: int = 0,
        on_error: OnError = "raise",
    ):
        self.root = Path(root)
        if not self.root.is_dir():
            raise LoaderError(f"image folder {self.root} does not exist or is not a folder")
        self.transform, self.seed, self.on_error = transform, seed, on_error
        files = list_files(self.root, extensions)  # every entry named like an image: the read says what is wrong
        sidecars = set(list_files(self.root, {".txt"}))
        if not files:
            raise LoaderError(f"no images ({', '.join(sorted(extensions))}) under {self.root}")
        self.files = sorted(files)
        self.captions: dict[str, str] = {}
        self._sidecars: set[str] = set()
        if captions != "none":
            metadata = None
            if captions == "auto":
                metadata = next((self.root / n for n in METADATA_NAMES if (self.root / n).is_file()), None)
            else:
                metadata = Path(captions)
            if metadata is not None:
                self.captions = read_captions(self.root, metadata, caption_column)
            else:
                self._sidecars = sidecars

    def __len__(self) -> int:
        return len(self.files)

    def caption_of(self, rel: str) -> str | None:
        if rel in self.captions:
            return self.captions[rel]
        txt = os.path.splitext(rel)[0] + ".txt"
        if txt in self._sidecars:
            try:
                return read_text_file(self.root / txt, root=self.root).strip()
            except (ImageFileError, UnicodeDecodeError) as e:
                raise FieldProblem("caption", f"sidecar {txt} cannot be read as UTF-8 text ({e})") from None
        return None

    def __getitem__(self, item: int | tuple[int, int]) -> dict:
        i, epoch = item if isinstance(item, tuple) else (item, 0)
        rel = self.files[i]
        path = self.root / rel
        key = os.path.splitext(rel)[0]
        try:  # a regular file inside the folder, of a bounded size (loaders/files.py)
            data = read_file(path, root=self.root)
        except ImageFileError as e:
            if self.on_error == "skip":
                return SkippedSample(str(path), key, e.detail).as_marker()
            raise SampleDecodeError(f"cannot read sample {key!r} from {path}: {e.detail}. Fix or remove the file, or "
                                    "pass on_error='skip' to skip such samples (they are counted and reported in "
                                    "loader.skipped).", source=str(path), key=key) from None
        try:
            caption = self.caption_of(rel)
        except FieldProblem as e:
            if self.on_error == "skip":
                return SkippedSample(str(path), key, f"bad metadata: {e}").as_marker()
            raise SampleMetadataError.from_problem(e, source=str(path), key=key) from None
        raw = RawSample(data=data, key=key, source=str(path), meta={"path": rel, "caption": caption})
        return make_sample(raw, self.transform, seed=self.seed, epoch=epoch, on_error=self.on_error)


class HFImageDataset(torch.utils.data.Dataset):
    """Any map-style `datasets` dataset with an image column (decoded by our transform, not by datasets)."""

    def __init__(
        self,
        ds: datasets.Dataset,
        *,
        image_column: str = "image",
        caption_column: str | None = None,
        transform: ImageTransform = ImageTransform(TRAIN_512),
        seed: int = 0,
        on_error: OnError = "raise",
        name: str = "<datasets>",
        path_roots: list[str | Path] | None = None,
    ):
        """`path_roots`: the folders a row's image `path` may point into (None: anywhere, for a dataset object the
        caller built from their own files)."""
        if image_column not in ds.column_names:
            raise LoaderError(f"{name}: no column {image_column!r} (columns: {ds.column_names})")
        if caption_column is not None and caption_column not in ds.column_names:
            raise LoaderError(f"{name}: no caption column {caption_column!r} (columns: {ds.column_names})")
        if isinstance(ds.features[image_column], datasets.Image):
            ds = ds.cast_column(image_column, datasets.Image(decode=False))
        self.ds, self.image_column, self.caption_column = ds, image_column, caption_column
        self.transform, self.seed, self.on_error, self.name = transform, seed, on_error, name
        self.path_roots = None if path_roots is None else [Path(r).resolve() for r in path_roots]

    def __len__(self) -> int:
        return len(self.ds)

    def _read_path(self, path: str) -> bytes:
        """The bytes of a row's image `path`; `FieldProblem` when it leads outside `path_roots`."""
        if self.path_roots is not None:
            resolved = Path(path).resolve()
            if not any(resolved.is_relative_to(r) for r in self.path_roots):
                raise FieldProblem("image", f"path {path!r} is outside the dataset's folders; not read")
        try:
            return read_file(path)
        except ImageFileError as e:
            raise FieldProblem("image", e.detail) from None

    def __getitem__(self, item: int | tuple[int, int]) -> dict:
        i, epoch = item if isinstance(item, tuple) else (item, 0)
        row = self.ds[int(i)]
        image = row[self.image_column]
        data, path = None, None
        if isinstance(image, dict):
            data, path = image.get("bytes"), image.get("path")
        elif isinstance(image, (bytes, bytearray)):
            data = bytes(image)
        key = str(row.get("key") or path or i)
        source = f"{self.name} row {i}" + (f" ({path})" if path else "")
        if data is None and isinstance(path, str) and path:
            try:
                data = self._read_path(path)
            except (OSError, FieldProblem) as e:
                if self.on_error == "skip":
                    return SkippedSample(source, key, f"{type(e).__name__}: {e}").as_marker()
                if isinstance(e, FieldProblem):
                    raise SampleMetadataError.from_problem(e, source=source, key=key) from None
                raise SampleDecodeError.from_cause(e, source=source, key=key) from None
        meta = {"path": path, "caption": row.get(self.caption_column) if self.caption_column else None}
        raw = RawSample(data=data, key=key, source=source, meta=meta)
        return make_sample(raw, self.transform, seed=self.seed, epoch=epoch, on_error=self.on_error)


def image_folder_loader(
    root: str | Path,
    transform: TransformConfig | ImageTransform = TRAIN_512,
    loader: LoaderConfig = LoaderConfig(),
    *,
    captions: CaptionMode | str | Path = "auto",
    caption_column: str | None = None,
) -> SynDataLoader:
    """A DataLoader over every image under `root` (real photos, user renders), with optional captions."""
    tf = transform if isinstance(transform, ImageTransform) else ImageTransform(transform)
    ds = ImageFolderDataset(
        root, transform=tf, captions=captions, caption_column=caption_column, seed=loader.seed, on_error=loader.on_error
    )
    return map_style_loader(ds, loader)


def hf_image_loader(
    source: str | datasets.Dataset,
    transform: TransformConfig | ImageTransform = TRAIN_512,
    loader: LoaderConfig = LoaderConfig(),
    *,
    split: str = "train",
    image_column: str = "image",
    caption_column: str | None = None,
    name: str | None = None,
    cache_dir: str | None = None,
) -> SynDataLoader:
    """A DataLoader over any `datasets` image dataset (a Dataset object, or a Hub id / local path to load)."""
    tf = transform if isinstance(transform, ImageTransform) else ImageTransform(transform)
    roots: list[str | Path] | None = None
    if isinstance(source, datasets.Dataset):
        ds, label = source, "<datasets>"
    else:
        ds = datasets.load_dataset(str(source), name=name, split=split, cache_dir=cache_dir)
        label = f"{source}[{split}]"
        from huggingface_hub import constants

        roots = [datasets.config.HF_DATASETS_CACHE, constants.HF_HUB_CACHE, *([cache_dir] if cache_dir else [])]
        if Path(source).is_dir():
            roots.append(source)
    hds = HFImageDataset(
        ds, image_column=image_column, caption_column=caption_column, transform=tf, seed=loader.seed,
        on_error=loader.on_error, name=label, path_roots=roots,
    )
    return map_style_loader(hds, loader)
