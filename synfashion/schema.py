"""What a SynFashion record is, and its one Arrow/JSON encoding.

Every writer (Parquet, WebDataset, translated splits) and every reader goes through the names defined here, so a
column is renamed in one place. This module holds no I/O beyond pure encoding.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
import unicodedata
from dataclasses import dataclass, field

import datasets

from .taxonomy import CATEGORIES, VIEWS

SPLITS: tuple[str, ...] = ("train", "validation", "test")

# Config names of the published dataset (the YAML `configs:` of the card).
RENDERS_CONFIG = "renders"  # one row per image (default)
GARMENTS_CONFIG = "garments"  # one row per textured garment, its 4 views as image columns

# The sample release's naming, and the default for `synfashion build --pattern`: matched against the file's
# stem (name without extension), e.g. "hoodie-p03_t0042_front".
DEFAULT_PATTERN = r"^(?P<project>[A-Za-z0-9-]+)_(?P<texture>[A-Za-z0-9-]+)_(?P<view>[A-Za-z0-9-]+)$"

# Sidecar file names looked for at the release root when --metadata is not given. Keyed by `file_name`,
# the relative path from the release root, as in datasets' imagefolder metadata files.
SIDECAR_NAMES: tuple[str, ...] = ("metadata.jsonl", "metadata.csv")

IMAGE_EXTENSIONS: frozenset[str] = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff"})


@dataclass(frozen=True)
class RenderRecord:
    """One image of the release, validated: identity, where it came from and what its bytes are.

    `width`/`height`/`mode` describe the stored pixels; `orientation` is the EXIF orientation tag (1 = none),
    which readers apply (the packaged bytes are never re-encoded).
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
    extra: dict = field(default_factory=dict, compare=False)  # sidecar columns we do not interpret

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
        """The JSON-able metadata (every column but the image), as stored in `<key>.json` and Parquet."""
        return {
            "key": self.key,
            "split": self.split,
            "category": self.category,
            "project": self.project,
            "texture": self.texture,
            "view": self.view,
            "width": self.width,
            "height": self.height,
            "mode": self.mode,
            "format": self.format,
            "orientation": self.orientation,
            "sha256": self.sha256,
            "num_bytes": self.num_bytes,
            "source_path": self.source_path,
        }

    @classmethod
    def from_metadata(cls, meta: dict) -> "RenderRecord":
        names = {f.name for f in dataclasses.fields(cls)} - {"extra"}
        return cls(**{k: meta[k] for k in names})


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


def renders_features() -> datasets.Features:
    return datasets.Features(
        {
            "image": datasets.Image(),
            "key": datasets.Value("string"),
            "category": datasets.ClassLabel(names=list(CATEGORIES)),
            "project": datasets.Value("string"),
            "texture": datasets.Value("string"),
            "view": datasets.Value("string"),
            "width": datasets.Value("int32"),
            "height": datasets.Value("int32"),
            "mode": datasets.Value("string"),
            "format": datasets.Value("string"),
            "orientation": datasets.Value("int8"),
            "sha256": datasets.Value("string"),
            "num_bytes": datasets.Value("int64"),
            "source_path": datasets.Value("string"),
        }
    )


def garments_features() -> datasets.Features:
    cols: dict = {
        "key": datasets.Value("string"),
        "category": datasets.ClassLabel(names=list(CATEGORIES)),
        "project": datasets.Value("string"),
        "texture": datasets.Value("string"),
    }
    for view in VIEWS:
        cols[view] = datasets.Image()  # None where the release lacks that view
    for view in VIEWS:
        cols[f"{view}_sha256"] = datasets.Value("string")
    return datasets.Features(cols)


def renders_row(record: RenderRecord, data: bytes) -> dict:
    """The Parquet row of a record: the image column holds the original file bytes, untouched."""
    meta = record.metadata()
    meta.pop("split")
    meta["category"] = CATEGORIES.index(record.category)
    return {"image": {"bytes": data, "path": record.source_path.rsplit("/", 1)[-1]}, **meta}
