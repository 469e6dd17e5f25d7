"""What `r2r evaluate` reads: translated images paired with their rendered sources, and the real reference set.

Two kinds of translated input:
- a translated dataset: a built folder whose manifest.json samples carry `source_key` and `source_sha256` and whose
  manifest names its source (a folder, or a Hub repo at the commit it was read at; `--source` overrides), read
  through synfashion's typed `Manifest`. Each translated
  row is paired with the source row `source_key`, and the source's sha256 must still be `source_sha256`.
- a plain folder of another method's outputs, paired with the source split of a built SynFashion folder by name:
  `<key>.<ext>`, `<category>/<key>.<ext>`, the source file's relative path or its stem; a CSV (`translated,
  source_key`) names pairs explicitly where names do not match (its rows take precedence).
Nothing is dropped silently: translated images without a usable source are `unpaired` (with the reason), source
rows without a translation are `untranslated`, and files that do not decode become `unreadable` when read.

Images are decoded by `loaders.decode_image` (EXIF orientation, CMYK, 16-bit, alpha on white) at their own
resolution. This module computes no metric and writes nothing.
"""

from __future__ import annotations

import csv
import os
import re
from collections import defaultdict
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from loaders import ImageTransform, LoaderError, SampleDecodeError, TransformConfig, decode_image
from loaders.files import ImageFileError, read_file
from loaders.sources import DatasetRef, open_images
from loaders.selection import category_name
from synfashion.manifest import MANIFEST, Manifest
from synfashion.fs.safepath import path_problem
from synfashion.hub.refs import COMMIT, HUB_ID, RefError
from synfashion.schema import IMAGE_EXTENSIONS, SPLITS

from ..pages.images import PAGE_SUBDIRS

# What `r2r report` writes into a translation output folder: not outputs of the method.
REPORT_FILES = frozenset({"report.png", "report.html"})
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")  # pipe:, https:, s3:, file:
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
RESIZE_METHOD = "bicubic, antialiased, on uint8 (torch.nn.functional.interpolate, as loaders resize)"


class NativeImage(ImageTransform):
    """bytes -> uint8 [3, H, W] at the file's own resolution: the shared decoder, no resize, no crop.

    A subclass of `loaders.ImageTransform` so that every loaders source (image folders, built folders, Hub
    datasets) decodes through it with its usual error naming and skip accounting.
    """

    def __init__(self) -> None:
        super().__init__(TransformConfig(reduced_decode=False, output="uint8"))

    def __call__(self, image, rng=None, *, orientation: int | None = None) -> torch.Tensor:
        if not isinstance(image, (bytes, bytearray, memoryview)):
            raise TypeError("NativeImage decodes image bytes")
        img = decode_image(bytes(image), background=self.config.background, orientation=orientation)
        return torch.from_numpy(np.asarray(img).copy()).permute(2, 0, 1).contiguous()


def resize_u8(image: torch.Tensor, size_hw: tuple[int, int]) -> torch.Tensor:
    """uint8 [3, h, w] -> uint8 [3, H, W] with RESIZE_METHOD."""
    x = image.unsqueeze(0).contiguous(memory_format=torch.channels_last)
    return F.interpolate(x, size=size_hw, mode="bicubic", antialias=True)[0].contiguous()


# ------------------------------------------------------------------------------------------------ pairing
@dataclass(frozen=True)
class Pair:
    name: str  # the translated file (relative path) or the translated dataset's key
    source_index: int  # row in the source dataset
    source_key: str
    category: str
    translated_index: int | None = None  # row in the translated dataset (a translated dataset)
    translated_path: str | None = None  # file under the translated folder (a folder of outputs)


@dataclass
class PairPlan:
    kind: str  # "translated-dataset" or "folder"
    translated: str
    source: str
    split: str
    pairs: list[Pair]
    unpaired: list[dict] = field(default_factory=list)  # {"name", "reason"}
    untranslated: list[str] = field(default_factory=list)  # source keys without a translated image
    # source keys a translated dataset's own selection (--categories, --limit) left out on purpose: counted, no problem
    not_selected: list[str] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)
    source_ds: object = None  # loaders.SynFashionDataset of the source split
    translated_ds: object = None  # loaders.SynFashionDataset of the translated split (translated dataset only)
    translated_root: Path | None = None
    fingerprint: str | None = None  # the translated dataset's manifest fingerprint (which build was scored)


def _manifest(folder: Path) -> Manifest | None:
    """The folder's manifest, validated by synfashion's typed reader (None when the folder has none)."""
    if not (folder / MANIFEST).is_file():
        return None
    return Manifest.read(folder)  # ManifestError (a ValueError) names the file and the problem


def is_translated_dataset(folder: Path) -> bool:
    manifest = _manifest(folder) if folder.is_dir() else None
    return manifest is not None and (manifest.kind == "translated"
                                     or any("source_key" in s for s in manifest.samples))


def _open_source(source: str | Path, split: str, revision: str | None = None):
    """The source split as a `SynFashionDataset` of native-resolution images, through `loaders.sources`."""
    if split not in SPLITS:
        raise ValueError(f"--split {split!r}: the SynFashion splits are {', '.join(SPLITS)}")
    try:
        ref = DatasetRef.parse(source, revision=revision)
        if ref.kind not in ("built", "hub"):
            ref = DatasetRef(ref.text, "built", path=ref.path)  # its error names what a built folder needs
        return open_images(ref, split, NativeImage())
    except (LoaderError, OSError, ValueError) as e:  # OSError: ConnectionError, datasets' DatasetNotFoundError
        raise ValueError(f"source {source}: {type(e).__name__}: {e}") from None


def _source_rows(ds) -> tuple[list[str], list[str], list[str | None], list[str | None]]:
    """keys, categories, sha256s and source paths of the source dataset's rows, in its index order."""
    extra = ds.column_values(("sha256", "source_path"))
    n = len(ds.keys)
    return (
        list(ds.keys),
        [category_name(label) for label in ds.labels],
        extra.get("sha256") or [None] * n,
        extra.get("source_path") or [None] * n,
    )


def _is_repo_id(text: str) -> bool:
    m = HUB_ID.fullmatch(text)
    return m is not None and m.group("revision") is None and "/" in m.group("repo")


def _source_from_manifest(folder: Path, manifest: Manifest) -> tuple[str, str | None]:
    """(source, revision) as translate-dataset recorded it: a local folder or a Hub repo pinned to its commit."""
    where = folder / MANIFEST
    src = manifest.source
    kind = src.get("kind")
    if not src:
        raise ValueError(f"{where}: no 'source' entry naming the rendered source; pass --source")
    if kind == "folder":
        raw = src.get("path")
        if not isinstance(raw, str) or not raw or _CONTROL.search(raw) or _SCHEME.match(raw):
            # a local path (absolute, or relative to the translated folder), never a URL or a command prefix
            raise ValueError(f"{where}: source.path {raw!r} is not a local folder path; pass --source")
        path = Path(raw) if os.path.isabs(raw) else folder / raw
        if not path.is_dir():
            raise ValueError(f"{where}: the source folder {path} does not exist; pass --source")
        # resolved: translations of one source in sibling folders name it alike (evaluate-table compares the names)
        return str(path.resolve()), None
    if kind == "hub":
        repo, revision = src.get("repo_id"), src.get("revision")
        if not isinstance(repo, str) or path_problem(repo) or not _is_repo_id(repo):
            raise ValueError(f"{where}: source repo id {repo!r} is not a Hub dataset id; pass --source")
        if revision is not None and (not isinstance(revision, str) or not COMMIT.fullmatch(revision)):
            raise ValueError(f"{where}: source revision {revision!r} is not a commit hash; pass --source")
        return repo, revision
    if kind == "webdataset":
        raise ValueError(f"{where}: the source was a folder of WebDataset tars; pass --source (the built SynFashion "
                         "folder or Hub id with the same renders)")
    raise ValueError(f"{where}: source kind {kind!r} is not understood (folder or hub); pass --source")


def plan_translated_dataset(folder: Path, split: str, source: str | None) -> PairPlan:
    """Pairs of a translated dataset's split with the source rows its manifest names."""
    manifest = _manifest(folder)
    revision = None
    if source is None:
        source, revision = _source_from_manifest(folder, manifest)
    src_ds = _open_source(source, split, revision)
    keys, cats, shas, _ = _source_rows(src_ds)
    src_index = {k: i for i, k in enumerate(keys)}
    try:
        tr_ds = open_images(DatasetRef(str(folder), "built", path=folder), split, NativeImage())
    except LoaderError as e:
        raise ValueError(f"translated dataset {folder}: {e}") from None
    tr_index = {k: i for i, k in enumerate(tr_ds.keys)}
    plan = PairPlan("translated-dataset", str(folder), str(source), split, [], source_ds=src_ds, translated_ds=tr_ds,
                    fingerprint=manifest.fingerprint or None)
    used: dict[str, str] = {}
    samples = sorted(manifest.samples_of(split),
                     key=lambda s: str(s.get("key")))
    listed = set()
    for s in samples:
        key, skey, ssha = s.get("key"), s.get("source_key"), s.get("source_sha256")
        listed.add(key)
        if key not in tr_index:
            plan.unpaired.append({"name": str(key), "reason": "listed in manifest.json but not in the Parquet shards"})
        elif not isinstance(skey, str) or not skey:
            plan.unpaired.append({"name": key, "reason": "no source_key in manifest.json"})
        elif skey not in src_index:
            plan.unpaired.append({"name": key, "reason": f"source_key {skey!r} is not in split {split!r} of {source}"})
        elif shas[src_index[skey]] is not None and ssha != shas[src_index[skey]]:
            plan.unpaired.append({"name": key, "reason": f"source {skey!r} changed since translation (sha256 "
                                                         f"{shas[src_index[skey]]} != source_sha256 {ssha})"})
        elif skey in used:
            plan.unpaired.append({"name": key, "reason": f"source {skey!r} is already paired with {used[skey]!r}"})
        else:
            used[skey] = key
            i = src_index[skey]
            plan.pairs.append(Pair(key, i, skey, cats[i], translated_index=tr_index[key]))
    for key in sorted(set(tr_index) - listed):
        plan.unpaired.append({"name": key, "reason": "in the Parquet shards but not in manifest.json"})
    missing = set(keys) - set(used)
    selected = _selected_keys(manifest)
    plan.untranslated = sorted(missing if selected is None else missing & selected)
    plan.not_selected = sorted(missing - set(plan.untranslated))
    return plan


def _selected_keys(manifest: Manifest) -> set[str] | None:
    """The source keys translate-dataset set out to translate (its plans and the images it rejected), from the
    provenance it recorded; None when the manifest does not say (another tool's dataset): then every source row
    counts."""
    identity = manifest.provenance.get("identity")
    plans = identity.get("plans") if isinstance(identity, dict) else None
    if not isinstance(plans, list):
        return None
    keys: set[str] = set()
    for plan in plans:
        if not (isinstance(plan, list) and len(plan) == 4 and isinstance(plan[3], list)):
            return None
        keys.update(k for k in plan[3] if isinstance(k, str))
    keys.update(r["key"] for r in manifest.rejected if isinstance(r, dict) and isinstance(r.get("key"), str))
    return keys


def list_outputs(root: Path) -> tuple[list[str], list[str]]:
    """(image files, ignored files) under `root`, relative, sorted; hidden files and r2r's own records skipped
    (`r2r report`'s page, grid and picture folder are listed as ignored)."""
    if not root.is_dir():
        raise FileNotFoundError(f"translated folder {root} does not exist or is not a folder")
    images, ignored = [], []
    for dirpath, dirnames, filenames in os.walk(root):
        rel_dir = Path(dirpath).relative_to(root).as_posix()
        for sub in PAGE_SUBDIRS if rel_dir == "." else ():  # the pages' copied pictures
            if sub in dirnames:
                dirnames.remove(sub)
                ignored.append(f"{sub}/")
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in filenames:
            if name.startswith("."):
                continue
            rel = name if rel_dir == "." else f"{rel_dir}/{name}"
            if rel in REPORT_FILES:
                ignored.append(rel)
            elif os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS:
                images.append(rel)
    return sorted(images), sorted(ignored)


def read_pairs_csv(path: Path) -> dict[str, str]:
    """translated (relative path) -> source_key, from a CSV with those two columns."""
    try:
        with path.open(encoding="utf-8", newline="") as f:
            rows = list(csv.DictReader(f))
    except OSError as e:
        raise FileNotFoundError(f"pairs CSV {path}: {e}") from None
    if not rows or not {"translated", "source_key"} <= set(rows[0]):
        raise ValueError(f"{path}: needs the columns 'translated' and 'source_key'")
    out: dict[str, str] = {}
    for n, row in enumerate(rows, 2):
        rel = (row.get("translated") or "").strip()
        problem = path_problem(rel)
        if problem:
            raise ValueError(f"{path}:{n}: translated path {rel!r} {problem}")
        if rel in out:
            raise ValueError(f"{path}:{n}: {rel!r} is listed twice")
        out[rel] = (row.get("source_key") or "").strip()
    return out


def plan_folder(root: Path, source: str, split: str, pairs_csv: Path | None = None) -> PairPlan:
    """Pairs of a folder of another method's outputs with the source split, by name (or by the CSV)."""
    images, ignored = list_outputs(root)
    src_ds = _open_source(source, split)
    keys, cats, _, paths = _source_rows(src_ds)
    by_key = {k: i for i, k in enumerate(keys)}
    by_relstem: dict[str, list[int]] = defaultdict(list)
    by_stem: dict[str, list[int]] = defaultdict(list)
    for i, p in enumerate(paths):
        if p:
            by_relstem[os.path.splitext(p)[0]].append(i)
            by_stem[os.path.splitext(p.rsplit("/", 1)[-1])[0]].append(i)
    explicit = read_pairs_csv(pairs_csv) if pairs_csv is not None else {}
    plan = PairPlan("folder", str(root), str(source), split, [], ignored=ignored, source_ds=src_ds,
                    translated_root=root)
    present = set(images)
    for rel in sorted(set(explicit) - present):
        plan.unpaired.append({"name": rel, "reason": f"named in {pairs_csv} but not found under {root}"})
    matched: dict[int, str] = {}
    for rel in images:
        stem = os.path.splitext(rel)[0]
        base = stem.rsplit("/", 1)[-1]
        if rel in explicit:
            skey = explicit[rel]
            if skey not in by_key:
                plan.unpaired.append({"name": rel, "reason": f"{pairs_csv}: source_key {skey!r} is not in split "
                                                             f"{split!r} of {source}"})
                continue
            hits, how = [by_key[skey]], "csv"
        elif base in by_key:
            hits, how = [by_key[base]], "key"
        elif stem in by_relstem:
            hits, how = by_relstem[stem], "source path"
        elif base in by_stem:
            hits, how = by_stem[base], "source file name"
        else:
            plan.unpaired.append({"name": rel, "reason": f"no source in split {split!r} with this key or file name"
                                                         + ("" if pairs_csv else " (a --pairs CSV can name it)")})
            continue
        if len(hits) > 1:
            plan.unpaired.append({"name": rel, "reason": f"its {how} matches {len(hits)} source images: "
                                                         f"{', '.join(keys[i] for i in hits[:3])}; name it in a "
                                                         "--pairs CSV"})
            continue
        i = hits[0]
        if i in matched:
            plan.unpaired.append({"name": rel, "reason": f"source {keys[i]!r} is already paired with {matched[i]!r}"})
            continue
        matched[i] = rel
        plan.pairs.append(Pair(rel, i, keys[i], cats[i], translated_path=rel))
    plan.untranslated = sorted(keys[i] for i in set(range(len(keys))) - set(matched))
    return plan


def plan_pairs(translated: Path, source: str | None, split: str, pairs_csv: Path | None = None,
               subset: Collection[str] | None = None) -> PairPlan:
    """The pairs to score; `subset`: only these source keys of the split count (see `restrict_to`)."""
    if is_translated_dataset(translated):
        if pairs_csv is not None:
            raise ValueError("--pairs is for a folder of outputs; a translated dataset names its sources itself")
        plan = plan_translated_dataset(translated, split, source)
    else:
        if translated.is_dir() and (_manifest(translated) is not None):
            raise ValueError(f"{translated} is a built dataset whose manifest.json samples carry no source_key: not "
                             "a translated dataset; pass the folder of translated images instead")
        if source is None:
            raise ValueError(f"{translated} is a folder of images: pass --source (the built SynFashion folder or Hub "
                             "id it was translated from)")
        plan = plan_folder(translated, source, split, pairs_csv)
    if subset is not None:
        restrict_to(plan, subset)
    return plan


def restrict_to(plan: PairPlan, keys: Collection[str]) -> None:
    """Score only the source rows `keys` of the split (the caller names the subset, e.g. the rows every variant of
    an ablation translated): untranslated rows outside it are not selected (counted, no problem), one inside it is
    untranslated whatever the translation selected, and a translated image of a source outside it is unpaired."""
    keep = set(keys)
    missing_rows = set(plan.untranslated) | set(plan.not_selected)
    known = missing_rows | {p.source_key for p in plan.pairs}
    missing = sorted(keep - known)
    if missing:
        raise ValueError(f"{len(missing)} source key(s) of the evaluated subset are not in split {plan.split!r} of "
                         f"{plan.source}: {', '.join(missing[:5])}{' ...' if len(missing) > 5 else ''}")
    for p in plan.pairs:
        if p.source_key not in keep:
            plan.unpaired.append({"name": p.name, "reason": f"its source {p.source_key!r} is outside the evaluated "
                                                            "subset"})
    plan.pairs = [p for p in plan.pairs if p.source_key in keep]
    plan.untranslated = sorted(missing_rows & keep)
    plan.not_selected = sorted(missing_rows - keep)


class PairImages(torch.utils.data.Dataset):
    """Item i -> {"i", "translated": uint8 [3,h,w], "translated_at_source": uint8 at the source's size or None,
    "source": uint8 [3,H,W]}, or {"i", "error": reason} when either image cannot be read."""

    def __init__(self, plan: PairPlan):
        self.plan = plan

    def __len__(self) -> int:
        return len(self.plan.pairs)

    def _translated(self, pair: Pair) -> torch.Tensor:
        if pair.translated_path is not None:
            path = self.plan.translated_root / pair.translated_path
            try:  # a regular file inside the method folder, of a bounded size (loaders/files.py)
                data = read_file(path, root=self.plan.translated_root)
            except ImageFileError as e:
                raise SampleDecodeError(f"cannot read {path}: {e.detail}") from None
            try:
                return NativeImage()(data)
            except Exception as e:  # noqa: BLE001 - PIL raises many types for bad bytes
                raise SampleDecodeError(f"cannot decode {path}: {type(e).__name__}: {e}") from None
        return self.plan.translated_ds[pair.translated_index]["image"]

    def __getitem__(self, i: int) -> dict:
        pair = self.plan.pairs[i]
        try:
            translated = self._translated(pair)
            source = self.plan.source_ds[pair.source_index]["image"]
        except SampleDecodeError as e:
            return {"i": i, "error": str(e).split(". Fix or remove")[0]}
        at_source = None
        if translated.shape[-2:] != source.shape[-2:]:
            at_source = resize_u8(translated, tuple(source.shape[-2:]))
        return {"i": i, "translated": translated, "translated_at_source": at_source, "source": source}


# ------------------------------------------------------------------------------------------------ real set
@dataclass
class RealSet:
    dataset: torch.utils.data.Dataset
    description: str
    splits: list[str] | None = None


def open_real(real: str, split: str | None = None) -> RealSet:
    """The real photos: an image folder, a built folder (every split unless `split`) or a Hub dataset id, through
    `loaders.sources`. Unreadable real images are counted and named, never silently dropped."""
    try:
        ref = DatasetRef.parse(real)
    except RefError:
        raise ValueError(f"--real {real}: not a folder, and not a Hub dataset id (owner/name)") from None
    if ref.kind == "tars":
        ref = DatasetRef(ref.text, "images", path=ref.path)
    try:
        ds = open_images(ref, split, NativeImage(), on_error="skip")
    except LoaderError as e:
        raise ValueError(f"--real {real}: {e}") from None
    if ref.kind == "built":
        parts = getattr(ds, "datasets", [ds])
        return RealSet(ds, f"built folder {real}", [p.selection.split for p in parts])
    if ref.kind == "images":
        return RealSet(ds, f"image folder {real}")
    return RealSet(ds, f"Hub dataset {real}", getattr(ds, "splits", [split]))
