"""The images of a downstream comparison, all read through `loaders`: training splits, held-out splits, real photos.

- A training variant is the `train` split of a SynFashion-layout dataset (a built folder, a Hub id, or what
  `r2r translate-dataset` wrote: the same layout, its rows carrying the source row's category), labelled by its
  `category` column.
- Its held-out split (`--test-split`) is scored too, by every variant, so a variant is also measured on the others'
  domains.
- Real photos are a folder: either a sub-folder per category (the release's layout; names matched with
  `synfashion.taxonomy.normalize_category`, e.g. "Down jacket"), or a metadata.jsonl / metadata.csv with
  `file_name` and `category` columns. An image whose category cannot be matched is listed by name with the reason,
  never dropped silently; file names from the metadata are only looked up among the files found in the folder.

The transform is the loaders' `ImageTransform`, delivering uint8 (normalised on the device). Portrait-preserving by
default: "contain" into a 3:4 frame, so a 768x1024 render is scaled whole (no padding, nothing cut) and a photo of
another aspect is padded with white, the render background, rather than cropped; a square centre crop of a
768x1024 garment would cut off its top and bottom. This module reads; it never writes.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import torch.utils.data

from loaders import ImageFolderDataset, ImageTransform, LoaderError, TransformConfig
from loaders.folder import METADATA_NAMES, read_captions
from loaders.sources import DatasetRef, open_images
from synfashion.hub.refs import RefError
from synfashion.taxonomy import CATEGORIES, UnknownCategoryError, normalize_category

from .config import DownstreamConfig, DownstreamError, TrainSource

REAL = "real"
_SHOWN = 5  # unmatched names shown in an error message (all of them go to results.json)


def transforms(cfg: DownstreamConfig) -> tuple[TransformConfig, TransformConfig]:
    """(training, evaluation) transforms: the same frame, a horizontal flip in training only."""
    train = TransformConfig(size=cfg.size, resize=cfg.resize, crop="center", flip=cfg.flip, resample="bicubic",
                            output="uint8")
    return train, train.with_(flip=0.0)


@dataclass
class Unmatched:
    """An image (or a metadata row) that is not scored, and why."""

    file: str
    reason: str

    def to_dict(self) -> dict:
        return {"file": self.file, "reason": self.reason}


@dataclass
class LabelledSet:
    """A map-style dataset of sample dicts with a `label` (ClassLabel id), and what the results say about it."""

    name: str
    kind: str  # "train" | "heldout" | "real"
    source: str
    dataset: torch.utils.data.Dataset
    labels: list[int]
    unmatched: list[Unmatched] = field(default_factory=list)
    how: str = ""  # how the labels were found (real photos)

    def __len__(self) -> int:
        return len(self.labels)

    def per_category(self) -> dict[str, int]:
        counts = Counter(self.labels)
        return {c: counts[i] for i, c in enumerate(CATEGORIES) if counts[i]}

    def describe(self) -> dict:
        out = {"kind": self.kind, "source": self.source, "images": len(self), "per_category": self.per_category(),
               "unmatched": [u.to_dict() for u in self.unmatched]}
        if self.how:
            out["labels_from"] = self.how
        return out


def open_split(variant: TrainSource, split: str, transform: TransformConfig, seed: int,
               on_error: str = "raise") -> LabelledSet:
    """One split of a SynFashion-layout dataset (built folder, Hub id, translated dataset)."""
    try:
        ref = DatasetRef.parse(variant.source)
    except RefError as e:
        raise DownstreamError(f"--train {variant.name}={e}") from None
    if ref.kind not in ("built", "hub"):
        ref = DatasetRef(ref.text, "built", path=ref.path)  # its error names what a built folder needs
    try:
        ds = open_images(ref, split, ImageTransform(transform), seed=seed, on_error=on_error)
    except LoaderError as e:
        raise DownstreamError(f"--train {variant.name}: {e}") from None
    kind = "train" if split == "train" else "heldout"
    name = variant.name if kind == "train" else f"{variant.name}:{split}"
    return LabelledSet(name, kind, variant.source, ds, list(ds.labels))


def open_train(variant: TrainSource, transform: TransformConfig, seed: int, on_error: str = "raise") -> LabelledSet:
    data = open_split(variant, "train", transform, seed, on_error)
    if not len(data):
        raise DownstreamError(f"--train {variant.name}={variant.source}: its train split holds no images")
    return data


def open_heldout(variant: TrainSource, split: str, transform: TransformConfig, seed: int,
                 on_error: str = "raise") -> LabelledSet | str:
    """The held-out split, or a note saying why there is none (a translated variant may hold only some splits)."""
    try:
        data = open_split(variant, split, transform, seed, on_error)
    except (DownstreamError, ValueError) as e:
        return f"{variant.name} is not scored on its own {split!r} split: {e}"
    if not len(data):
        return f"{variant.name} is not scored on its own {split!r} split: it holds no images"
    return data


class LabelledImages(torch.utils.data.Dataset):
    """Some files of an `ImageFolderDataset`, each sample with its category name and label."""

    def __init__(self, folder: ImageFolderDataset, picks: list[tuple[int, int]]):
        self.folder = folder
        self.indices = [i for i, _ in picks]
        self.labels = [label for _, label in picks]

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, item: int | tuple[int, int]) -> dict:
        i, epoch = item if isinstance(item, tuple) else (item, 0)
        sample = self.folder[(self.indices[i], epoch)]
        sample.pop("caption", None)
        sample["label"] = self.labels[i]
        sample["category"] = CATEGORIES[self.labels[i]]
        return sample


def category_of(value: object) -> str:
    """A category from a folder name or a metadata value (a name in any spelling normalize_category accepts, or a
    ClassLabel id 0..19); `UnknownCategoryError` otherwise."""
    if isinstance(value, int) and not isinstance(value, bool):
        if 0 <= value < len(CATEGORIES):
            return CATEGORIES[value]
        raise UnknownCategoryError(f"label id {value} is not one of 0..{len(CATEGORIES) - 1}")
    if isinstance(value, str) and value.strip():
        if value.strip().isdigit():
            return category_of(int(value.strip()))
        return normalize_category(value)
    raise UnknownCategoryError(f"{value!r} is not a category name")


def _metadata_categories(root: Path) -> tuple[Path, dict[str, object]] | None:
    """(metadata file, file_name -> category value) when the folder has a metadata file with a `category` column."""
    for name in METADATA_NAMES:
        path = root / name
        if path.is_file():
            try:
                values = read_captions(root, path, "category")
            except LoaderError as e:
                raise DownstreamError(f"--test-real: {e}") from None
            if any(v is not None for v in values.values()):
                return path, values
    return None


def unreadable_images(root: Path, files: list[str]) -> dict[str, str]:
    """file -> why it cannot be used, for every image that does not decode: the check `synfashion build` makes
    (every PNG chunk's CRC, every JPEG segment and scan, other formats decoded), run before any training so a bad
    photo stops the run at its start, not after hours of training."""
    from loaders.files import ImageFileError, read_file
    from synfashion.release.imagecheck import inspect_image

    bad = {}
    for rel in files:
        try:  # read as every reader of user images reads: never a FIFO, a device or a link out, the size bounded
            inspect_image(read_file(root / rel, root=root))
        except ImageFileError as e:
            bad[rel] = e.detail  # the sentence; the message's path is named by the caller
        except Exception as e:  # noqa: BLE001 - ImageRejected, OSError, PIL's many errors: each names the problem
            bad[rel] = f"{type(e).__name__}: {e}" if not isinstance(e, ValueError) else str(e)
    return bad


def open_real(root: str | Path, transform: TransformConfig, seed: int, *, skip_bad: bool = False) -> LabelledSet:
    """Real photos with their categories (see the module docstring); unmatched images are listed, not scored.
    An image that does not decode stops the run naming it, or with `skip_bad` is listed as not scored."""
    root = Path(root).expanduser()
    if not root.is_dir():
        raise DownstreamError(f"--test-real {root}: not a folder (real photos: a sub-folder per category, or a "
                              "metadata.jsonl with file_name and category columns)")
    try:
        folder = open_images(DatasetRef(str(root), "images", path=root), None, ImageTransform(transform), seed=seed)
    except LoaderError as e:
        raise DownstreamError(f"--test-real: {e}") from None
    picks: list[tuple[int, int]] = []
    unmatched: list[Unmatched] = []
    bad = unreadable_images(root, folder.files)
    if bad and not skip_bad:
        rel, why = next(iter(bad.items()))
        more = f" (and {len(bad) - 1} more)" if len(bad) > 1 else ""
        raise DownstreamError(f"--test-real: {root / rel} cannot be read as an image: {why}{more}; fix or remove "
                              "it, or pass --skip-bad-images to leave such images out (each is listed)")
    unmatched += [Unmatched(rel, f"unreadable image: {why}") for rel, why in bad.items()]
    meta = _metadata_categories(root)
    if meta is not None:
        path, values = meta
        on_disk = set(folder.files)
        for i, rel in enumerate(folder.files):
            if rel in bad:
                continue
            value = values.get(rel)
            if value is None:
                reason = f"no category in {path.name}" if rel in values else f"not listed in {path.name}"
                unmatched.append(Unmatched(rel, reason))
                continue
            try:
                picks.append((i, CATEGORIES.index(category_of(value))))
            except UnknownCategoryError:
                unmatched.append(Unmatched(rel, f"category {value!r} in {path.name} is not a SynFashion category"))
        for rel in sorted(set(values) - on_disk):
            unmatched.append(Unmatched(rel, f"listed in {path.name}, but no such image in the folder"))
        how = f"categories from {path.name}"
    else:
        for i, rel in enumerate(folder.files):
            if rel in bad:
                continue
            top, sep, _ = rel.partition("/")
            if not sep:
                unmatched.append(Unmatched(rel, "not inside a category folder"))
                continue
            try:
                picks.append((i, CATEGORIES.index(normalize_category(top))))
            except UnknownCategoryError:
                unmatched.append(Unmatched(rel, f"folder {top!r} is not a SynFashion category"))
        how = "categories from sub-folder names"
    if not picks:
        shown = "; ".join(f"{u.file}: {u.reason}" for u in unmatched[:_SHOWN])
        raise DownstreamError(f"--test-real {root}: no image with a SynFashion category ({how}): {shown}")
    return LabelledSet(REAL, "real", str(root), LabelledImages(folder, picks), [label for _, label in picks],
                       unmatched, how)


def folder_identity(root: str | Path) -> str:
    """A cheap identity of a folder's contents (relative names and sizes), for the run's fingerprint."""
    import hashlib

    h = hashlib.sha256()
    root = Path(root).expanduser()
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(filenames):
            p = Path(dirpath, name)
            try:
                size = p.stat().st_size
            except OSError:
                continue
            h.update(f"{p.relative_to(root).as_posix()}\0{size}\n".encode())
    return h.hexdigest()


def source_identity(source: str) -> str:
    """What a training source is, for the fingerprint: the sha256 of a built folder's manifest.json (it holds every
    shard's and sample's hash), a folder's file listing otherwise, or the Hub id."""
    import hashlib

    path = Path(source).expanduser()
    manifest = path / "manifest.json"
    if manifest.is_file():
        return "manifest:" + hashlib.sha256(manifest.read_bytes()).hexdigest()
    if path.is_dir():
        return "files:" + folder_identity(path)
    return "hub:" + source
