"""One raw sample (bytes + metadata + where it came from) -> the dict every loader yields.

Every source (datasets rows, WebDataset members, image files) reduces its sample to a `RawSample` and calls
`make_sample`, so the output dict, the per-sample randomness and the error policy are the same everywhere.
Output: {"image": CHW tensor, "key": str, "source": str, ...metadata}. SynFashion sources add category (name),
label (ClassLabel id), project, texture, view, split, and any extra scalar columns of the data (`extra_fields`);
folders add path and caption. The field parsers here are the one place that interprets a row's metadata: whatever
they refuse is a `FieldProblem`, which each source turns into a `SampleMetadataError` naming where the row came
from, or a skip.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from synfashion.fs.safepath import key_problem
from synfashion.taxonomy import CATEGORIES, VIEWS

from .errors import FieldProblem, OnError, SampleDecodeError, SkippedSample
from .selection import category_label
from .transforms import ImageTransform

# SynFashion metadata copied into each sample (besides key/category/label).
SYNFASHION_FIELDS: tuple[str, ...] = ("project", "texture", "view")
_TEXT_FIELDS: tuple[str, ...] = ("project", "texture")  # view is a label: a ClassLabel id or a name


@dataclass
class RawSample:
    data: bytes | None
    key: str
    source: str  # the file, or the shard (and row) the bytes were read from
    meta: dict = field(default_factory=dict)
    orientation: int | None = None  # known EXIF orientation (skips re-parsing it); None reads it from the bytes


def sample_rng(seed: int, epoch: int, key: str) -> random.Random:
    """The augmentation RNG of one sample in one epoch: independent of worker, rank and batch composition."""
    return random.Random(f"{seed}\x00{epoch}\x00{key}")


def make_sample(
    raw: RawSample, transform: ImageTransform, *, seed: int, epoch: int, on_error: OnError
) -> dict:
    """Decode and transform; on failure raise `SampleDecodeError` naming source and key, or return a skip marker."""
    rng = sample_rng(seed, epoch, raw.key) if transform.config.is_random else None
    try:
        if raw.data is None:
            raise ValueError("the sample has no image bytes")
        image = transform(raw.data, rng, orientation=raw.orientation)
    except MemoryError:
        raise
    except Exception as e:  # PIL raises OSError, SyntaxError, ValueError, struct.error, ... for bad bytes
        if on_error == "skip":
            return SkippedSample(raw.source, raw.key, f"{type(e).__name__}: {e}").as_marker()
        raise SampleDecodeError.from_cause(e, source=raw.source, key=raw.key) from e
    return {"image": image, "key": raw.key, "source": raw.source, **raw.meta}


# Columns of the renders schema that a sample does not carry as such (the image, or facts of the stored file).
_RENDERS_COLUMNS = frozenset(
    ("image", "key", "category", "project", "texture", "view", "width", "height", "mode", "format", "orientation",
     "sha256", "num_bytes", "source_path", "split")
)
# What every SynFashion sample dict already holds: an extra column of one of these names is not copied over it.
RESERVED_FIELDS = frozenset(("image", "key", "source", "category", "label", "split", *SYNFASHION_FIELDS))
_SCALARS = (str, int, float, bool, type(None))


def parse_category(value: object, names: Sequence[str] | None = None) -> str:
    """A category name (one of the 20) from a name or a ClassLabel id; `names` are the ClassLabel names the id
    refers to (the shard's own features; default: SynFashion's order). Anything else is a `FieldProblem`."""
    if isinstance(value, str):
        name = value
    elif isinstance(value, int) and not isinstance(value, bool):
        names = CATEGORIES if names is None else names
        if not 0 <= value < len(names):
            raise FieldProblem("category", f"label id {value} is not one of the {len(names)} categories "
                                           f"(0..{len(names) - 1})")
        name = names[value]
    else:
        raise FieldProblem("category", f"{value!r} is neither a category name nor a label id")
    if name not in CATEGORIES:
        raise FieldProblem("category", f"{name!r} is not one of the 20 SynFashion categories")
    return name


def parse_view(value: object, names: Sequence[str] | None = None) -> str | None:
    """A view name from a name or a ClassLabel id (`names`: the data's ClassLabel names; default SynFashion's
    order); None when absent. Anything else is a `FieldProblem`."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        names = VIEWS if names is None else names
        if not 0 <= value < len(names):
            raise FieldProblem("view", f"label id {value} is not one of the {len(names)} views (0..{len(names) - 1})")
        return names[value]
    raise FieldProblem("view", f"{value!r} is neither a view name nor a label id")


def parse_orientation(value: object) -> int | None:
    """The stored EXIF orientation (an integer 1..8), or None when absent (then it is read from the image bytes)."""
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool):
        raise FieldProblem("orientation", f"{value!r} is not an integer (EXIF orientation 1..8)")
    if not 1 <= value <= 8:
        raise FieldProblem("orientation", f"{value} is out of range (EXIF orientation 1..8)")
    return value


def parse_dimension(value: object, field: str) -> int:
    """An image's stored width or height: a positive integer (a tar's JSON is written by anyone)."""
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise FieldProblem(field, f"{str(value)[:80]!r} is not a positive integer (pixels)")
    return value


def parse_key(value: object) -> str:
    """A sample key read from a row, a tar's JSON or member name: synfashion's one key rule (a plain name)."""
    problem = key_problem(value)
    if problem is not None:
        raise FieldProblem("key", f"{str(value)[:80]!r} {problem}")
    return value  # type: ignore[return-value]


def _text(row: Mapping, name: str) -> str | None:
    value = row.get(name)
    if value is not None and not isinstance(value, str):
        raise FieldProblem(name, f"{value!r} is not a string")
    return value


def synfashion_meta(
    row: Mapping, split: str, *, label_names: Mapping[str, Sequence[str]] | None = None, extra: Iterable[str] = ()
) -> dict:
    """The SynFashion metadata of a Parquet row (category and view as ClassLabel ids) or a tar's JSON (as names),
    plus the `extra` columns named; raises `FieldProblem` naming the first malformed field. `label_names`: the
    data's ClassLabel names per column (see columns.label_names)."""
    label_names = label_names or {}
    name = parse_category(row.get("category"), label_names.get("category"))
    meta = {"category": name, "label": category_label(name), "split": _text(row, "split") or split}
    for f in _TEXT_FIELDS:
        meta[f] = _text(row, f)
    meta["view"] = parse_view(row.get("view"), label_names.get("view"))
    for column in extra:
        meta[column] = row.get(column)
    return meta


def is_extra(name: str) -> bool:
    """Whether a column (or JSON field) outside the renders schema travels with each sample: provenance columns like
    `source_key`, sidecar columns. Names that a sample already uses, and `__private__` ones, do not."""
    return name not in _RENDERS_COLUMNS and name not in RESERVED_FIELDS and not name.startswith("__")


def scalar_extras(meta: Mapping) -> list[str]:
    """The extra fields of one tar member's JSON whose values are scalars (lists and objects stay behind)."""
    return [k for k, v in meta.items() if is_extra(k) and isinstance(v, _SCALARS)]


def orientation_of(row: Mapping) -> int | None:
    return parse_orientation(row.get("orientation"))
