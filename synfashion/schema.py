"""What a SynFashion record is, and its encodings: one `RecordSchema` per published config.

Every writer (Parquet, WebDataset) and every reader goes through the names defined here, so a column is renamed in
one place. A record travels as its metadata dict (the manifest's `samples` entry and the tar's `<key>.json`): the
fields below plus any extra columns (a release's sidecar columns, a translated variant's provenance), which the
schemas carry end to end. Image bytes are never held here: a schema asks the build's byte source for them by
reference ("image": the record's own bytes, "source": the rendered source of a translated record). No I/O.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import unicodedata
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field

import datasets

from .taxonomy import CATEGORIES, VIEWS

SPLITS: tuple[str, ...] = ("train", "validation", "test")

# Config names of the published dataset (the YAML `configs:` of the card).
RENDERS_CONFIG = "renders"  # one row per image (default)
GARMENTS_CONFIG = "garments"  # one row per textured garment, its 4 views as image columns
PAIRS_CONFIG = "pairs"  # translated variants: rendered and translated bytes side by side, for paired training

# The sample release's naming, and the default for `synfashion build --pattern`: matched against the file's
# stem (name without extension), e.g. "hoodie-p03_t0042_front".
DEFAULT_PATTERN = r"^(?P<project>[A-Za-z0-9-]+)_(?P<texture>[A-Za-z0-9-]+)_(?P<view>[A-Za-z0-9-]+)$"

# Sidecar file names looked for at the release root when --metadata is not given. Keyed by `file_name`,
# the relative path from the release root, as in datasets' imagefolder metadata files.
SIDECAR_NAMES: tuple[str, ...] = ("metadata.jsonl", "metadata.csv")

IMAGE_EXTENSIONS: frozenset[str] = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff"})

# Metadata fields of every record, in the order of the renders config's columns.
RECORD_FIELDS: tuple[str, ...] = (
    "key", "split", "category", "project", "texture", "view", "width", "height", "mode", "format", "orientation",
    "sha256", "num_bytes", "source_path",
)
# A translated record's link back to the record it was made from (byte-exact: the sha256 of the source's bytes).
PROVENANCE_FIELDS: tuple[str, ...] = ("source_key", "source_sha256")
# Names an extra column may not take: our fields, the image columns, and the garments/pairs columns.
RESERVED_COLUMNS: frozenset[str] = frozenset(
    {*RECORD_FIELDS, *PROVENANCE_FIELDS, "image", "file_name", "rendered_image", "translated_image",
     "rendered_sha256", "translated_sha256", "edit_prompt", *VIEWS, *(f"{v}_sha256" for v in VIEWS)}
)

# (record metadata, image reference) -> bytes: "image" is the record's own bytes, "source" its rendered source's
ReadBytes = Callable[[dict, str], bytes]
# (record metadata, image reference) -> the file name stored beside the bytes (datasets' Image "path")
NameBytes = Callable[[dict, str], str]


@dataclass(frozen=True)
class RenderRecord:
    """One image of the release, validated: identity, where it came from and what its bytes are.

    `width`/`height`/`mode` describe the stored pixels; `orientation` is the EXIF orientation tag (1 = none),
    which readers apply (the packaged bytes are never re-encoded). `extra`: columns we do not interpret (a
    sidecar's), kept in the manifest, the tar's JSON and the Parquet shards.
    """

    key: str
    category: str
    project: str
    texture: str
    view: str
    source_path: str  # relative to the release root, '/'-separated
    width: int
    height: int
    mode: str
    format: str  # PIL format name: JPEG, PNG, ...
    orientation: int
    sha256: str
    num_bytes: int
    split: str = ""
    extra: dict = field(default_factory=dict, compare=False)

    @property
    def garment_id(self) -> str:
        """A textured garment: one project re-textured with one texture (its 4 views share this id)."""
        return garment_key(self.category, self.project, self.texture)

    @property
    def project_id(self) -> str:
        """Projects are numbered per category in a release, so the global id includes the category."""
        return f"{self.category}/{self.project}"

    @property
    def extension(self) -> str:
        return self.source_path.rsplit(".", 1)[-1].lower()

    def with_split(self, split: str) -> "RenderRecord":
        return dataclasses.replace(self, split=split)

    def metadata(self) -> dict:
        """The JSON-able metadata (every column but the image), as stored in `<key>.json` and the manifest."""
        meta = {name: getattr(self, name) for name in RECORD_FIELDS}
        meta.update(self.extra)
        return meta

    @classmethod
    def from_metadata(cls, meta: dict) -> "RenderRecord":
        names = {f.name for f in dataclasses.fields(cls)} - {"extra"}
        return cls(**{k: meta[k] for k in names}, extra={k: v for k, v in meta.items() if k not in names})


_KEY_PLAIN = re.compile(r"[A-Za-z0-9]+(?:-+[A-Za-z0-9]+)*")  # a part kept verbatim: what the old slug left alone
_KEY_UNSAFE = re.compile(r"[^A-Za-z0-9-]+")
_KEY_SLUG_MAX = 40  # characters of a readable slug kept before the hash; the hash alone keeps keys apart


def _key_part(part: str) -> str:
    """One part of a key: itself when it is plain ASCII (letters, digits, inner hyphens), so keys of existing datasets
    never change; otherwise a readable slug (accents dropped, anything else a hyphen, "u" when nothing is left), "_"
    and 12 hex digits of the sha256 of the part's UTF-8 bytes.

    Plain parts never contain "_", so a hashed part can never equal a plain one, and two different hashed parts
    share a key only if 48 bits of sha256 collide (about 1 in 10^6 for 20,000 names that slug alike). The scan
    still rejects a key that two different identities share, so a collision can never merge two samples silently.
    """
    if _KEY_PLAIN.fullmatch(part):
        return part
    ascii_part = unicodedata.normalize("NFKD", part).encode("ascii", "ignore").decode()
    slug = _KEY_UNSAFE.sub("-", ascii_part).strip("-")[:_KEY_SLUG_MAX].strip("-") or "u"
    return f"{slug}_{hashlib.sha256(part.encode('utf-8', 'surrogatepass')).hexdigest()[:12]}"


def make_key(*parts: str) -> str:
    """A stable, unique, ASCII, dot-free sample key: parts joined by '__' (WebDataset splits keys on dots).

    Unique for any Unicode names: a part that is not plain ASCII gets a short hash of itself (see `_key_part`), so
    "Mäntel" and "Möntel", or any two Chinese names, never share a key, while a plain name such as "hoodie-p03"
    keys exactly as it always did.
    """
    return "__".join(_key_part(p) for p in parts)


def garment_key(category: str, project: str, texture: str) -> str:
    """The key of a textured garment, the `key` of its garments-config row (from metadata, without a record)."""
    return make_key(category, project, texture)


# ------------------------------------------------------------------------------------------- extra columns
def infer_extra_features(samples: Iterable[dict], known: Iterable[str] = RECORD_FIELDS) -> dict[str, datasets.Value]:
    """Column types of the samples' extra fields, from their JSON values (None allowed anywhere).

    All bools -> bool, all ints -> int64, ints and floats -> float64, all strings -> string; anything else (mixed
    types, lists, objects) -> string holding the value's JSON text. Sorted by name, so the schema is stable.
    """
    known = set(known)
    kinds: dict[str, set[str]] = {}
    for s in samples:
        for name, value in s.items():
            if name in known:
                continue
            seen = kinds.setdefault(name, set())
            if value is not None:
                seen.add("bool" if isinstance(value, bool) else "int" if isinstance(value, int)
                         else "float" if isinstance(value, float) else "str" if isinstance(value, str) else "json")
    out = {}
    for name in sorted(kinds):
        k = kinds[name]
        dtype = ("bool" if k == {"bool"} else "int64" if k == {"int"} else "float64" if k <= {"int", "float"} and k
                 else "string")
        out[name] = datasets.Value(dtype)
    return out


def _cell(value, feature: datasets.Value):
    """An extra field's value as its column stores it (see infer_extra_features)."""
    if value is None:
        return None
    if feature.dtype == "string" and not isinstance(value, str):
        return json.dumps(value, sort_keys=True)
    if feature.dtype == "float64":
        return float(value)
    return value


# ------------------------------------------------------------------------------------------- the schemas
def _category_label(name: str) -> int:
    return CATEGORIES.index(name)


def _base_features() -> dict:
    return {
        "key": datasets.Value("string"),
        "category": datasets.ClassLabel(names=list(CATEGORIES)),
        "project": datasets.Value("string"),
        "texture": datasets.Value("string"),
        "view": datasets.ClassLabel(names=list(VIEWS)),
    }


# In Parquet, category and view are ClassLabel ids (their names are in the features); in the manifest and the tars'
# JSON they are names: a tar carries no features, and a name means the same in every reader.
LABEL_COLUMNS: dict[str, tuple[str, ...]] = {"category": CATEGORIES, "view": VIEWS}


def _labels(meta: dict) -> dict:
    return {col: names.index(meta[col]) for col, names in LABEL_COLUMNS.items()}


@dataclass(frozen=True)
class RecordSchema:
    """One Parquet config of a built dataset: its features, and how rows are made from records and their bytes.

    `rows(metas, read, name)` gets a shard's records in write order and yields its rows; `num_rows` counts them
    without reading bytes (the manifest's `num_samples`). Subclasses define the three configs.
    """

    config: str
    extra: dict[str, datasets.Value] = field(default_factory=dict)  # extra columns (name -> type), appended

    @property
    def features(self) -> datasets.Features:
        raise NotImplementedError

    def rows(self, metas: Sequence[dict], read: ReadBytes, name: NameBytes) -> Iterator[dict]:
        raise NotImplementedError

    def num_rows(self, metas: Sequence[dict]) -> int:
        return len(metas)

    def _extra_cells(self, meta: dict) -> dict:
        return {k: _cell(meta.get(k), f) for k, f in self.extra.items()}


@dataclass(frozen=True)
class RendersSchema(RecordSchema):
    """One row per image: the image's bytes, untouched, and every metadata field as a column (split excepted:
    it is the Parquet file's split). A translated variant adds its provenance fields through `extra`."""

    config: str = RENDERS_CONFIG

    @property
    def features(self) -> datasets.Features:
        return datasets.Features({
            "image": datasets.Image(),
            **_base_features(),
            "width": datasets.Value("int32"),
            "height": datasets.Value("int32"),
            "mode": datasets.Value("string"),
            "format": datasets.Value("string"),
            "orientation": datasets.Value("int8"),
            "sha256": datasets.Value("string"),
            "num_bytes": datasets.Value("int64"),
            "source_path": datasets.Value("string"),
            **self.extra,
        })

    def row(self, meta: dict, data: bytes, file_name: str) -> dict:
        row = {"image": {"bytes": data, "path": file_name}}
        row.update({k: meta[k] for k in RECORD_FIELDS if k != "split"})
        row.update(_labels(meta))
        row.update(self._extra_cells(meta))
        return row

    def rows(self, metas: Sequence[dict], read: ReadBytes, name: NameBytes) -> Iterator[dict]:
        for meta in metas:
            yield self.row(meta, read(meta, "image"), name(meta, "image"))


@dataclass(frozen=True)
class GarmentsSchema(RecordSchema):
    """One row per textured garment, a column per view (None where the release lacks that view). A shard's
    records are sorted by key, so a garment's views are adjacent (the plan never splits a garment)."""

    config: str = GARMENTS_CONFIG

    @property
    def features(self) -> datasets.Features:
        cols: dict = {k: v for k, v in _base_features().items() if k != "view"}
        for view in VIEWS:
            cols[view] = datasets.Image()
        for view in VIEWS:
            cols[f"{view}_sha256"] = datasets.Value("string")
        return datasets.Features(cols)

    def num_rows(self, metas: Sequence[dict]) -> int:
        return len({garment_key(m["category"], m["project"], m["texture"]) for m in metas})

    def rows(self, metas: Sequence[dict], read: ReadBytes, name: NameBytes) -> Iterator[dict]:
        groups: dict[str, list[dict]] = {}
        for meta in metas:
            groups.setdefault(garment_key(meta["category"], meta["project"], meta["texture"]), []).append(meta)
        for gkey, members in groups.items():
            first = members[0]
            row = {"key": gkey, "category": _category_label(first["category"]), "project": first["project"],
                   "texture": first["texture"]}
            views = {m["view"]: m for m in members}
            for view in VIEWS:
                meta = views.get(view)
                row[view] = {"bytes": read(meta, "image"), "path": name(meta, "image")} if meta else None
                row[f"{view}_sha256"] = meta["sha256"] if meta else None
            yield row


EDIT_PROMPT = "make it a real photo"  # the instruction of every pairs row (diffusers' instruct-pix2pix script)


@dataclass(frozen=True)
class PairsSchema(RecordSchema):
    """A translated variant for paired image-to-image training: the rendered source bytes (unchanged) and the
    translated bytes side by side, named as diffusers' InstructPix2Pix script takes them as arguments
    (`--original_image_column rendered_image --edited_image_column translated_image --edit_prompt_column
    edit_prompt`)."""

    config: str = PAIRS_CONFIG

    @property
    def features(self) -> datasets.Features:
        return datasets.Features({
            "rendered_image": datasets.Image(),
            "translated_image": datasets.Image(),
            "edit_prompt": datasets.Value("string"),
            **_base_features(),
            "source_key": datasets.Value("string"),
            "rendered_sha256": datasets.Value("string"),
            "translated_sha256": datasets.Value("string"),
            **self.extra,
        })

    def rows(self, metas: Sequence[dict], read: ReadBytes, name: NameBytes) -> Iterator[dict]:
        for meta in metas:
            row = {
                "rendered_image": {"bytes": read(meta, "source"), "path": name(meta, "source")},
                "translated_image": {"bytes": read(meta, "image"), "path": name(meta, "image")},
                "edit_prompt": EDIT_PROMPT,
                "key": meta["key"], "project": meta["project"], "texture": meta["texture"], **_labels(meta),
                "source_key": meta["source_key"],
                "rendered_sha256": meta["source_sha256"], "translated_sha256": meta["sha256"],
            }
            row.update(self._extra_cells(meta))
            yield row


@dataclass(frozen=True)
class Layout:
    """What a build writes per shard: these Parquet configs (when "parquet" is among its formats) and, when
    "webdataset" is, a tar of `<key>.<ext>` (the "image" bytes) + `<key>.json` (the metadata)."""

    configs: tuple[RecordSchema, ...]

    def config(self, name: str) -> RecordSchema:
        return next(c for c in self.configs if c.config == name)

    def features(self) -> dict[str, list]:
        """config name -> its features as [column, spec] pairs (what the manifest stores, for cards and readers:
        a list, so the column order survives JSON written with sorted keys). `features_from` reads it back."""
        return {c.config: [[name, spec] for name, spec in c.features.to_dict().items()] for c in self.configs}


def features_from(pairs: list) -> datasets.Features:
    """The datasets features of one config from the manifest's [column, spec] pairs."""
    return datasets.Features.from_dict(dict(pairs))


def release_layout(extra: dict[str, datasets.Value] | None = None, *, garments: bool = True) -> Layout:
    """The original release: renders (+ the sidecar's extra columns) and garments."""
    renders = RendersSchema(extra=dict(extra or {}))
    return Layout((renders, GarmentsSchema()) if garments else (renders,))


def translated_layout(extra: dict[str, datasets.Value] | None = None) -> Layout:
    """A translated variant: renders with provenance columns, and pairs."""
    extra = dict(extra or {})
    provenance = {name: datasets.Value("string") for name in PROVENANCE_FIELDS}
    return Layout((RendersSchema(extra={**provenance, **extra}), PairsSchema(extra=extra)))


# Kept for callers that build rows by hand (tests, fixtures): the release's renders / garments features and row.
def renders_features() -> datasets.Features:
    return RendersSchema().features


def garments_features() -> datasets.Features:
    return GarmentsSchema().features


def renders_row(record: RenderRecord, data: bytes) -> dict:
    """The Parquet row of a record: the image column holds the original file bytes, untouched."""
    meta = record.metadata()
    return RendersSchema(extra=infer_extra_features([meta])).row(meta, data, record.source_path.rsplit("/", 1)[-1])
