"""The columns a SynFashion renders split must have, checked on the features stored in the data, and the extra
columns that travel with each sample.

The loaders take the features a shard carries (datasets writes them into the Parquet schema metadata) instead of
forcing the renders features, so a dataset with more columns (provenance columns of a translated split, sidecar
columns) loads as it is. What the loaders interpret must still be there with a usable type: `key` (string),
`image` (image bytes), `category` (ClassLabel id, integer id or name); `orientation` and the text columns are
optional. A shard that fails this is refused as a whole, naming the shard and the column. This module reads only
schemas (a Parquet footer), never rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import datasets
import pyarrow as pa
import pyarrow.parquet as pq

from .records import RESERVED_FIELDS, is_extra

REQUIRED: tuple[str, ...] = ("key", "image", "category")
TEXT_COLUMNS: tuple[str, ...] = ("project", "texture", "source_path")
LABEL_COLUMNS: tuple[str, ...] = ("category", "view")  # ClassLabel ids (names in the features), integer ids or names
_INTS = ("int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64")
_STRINGS = ("string", "large_string")
_BINARIES = ("binary", "large_binary")


def _is(feature: object, dtypes: tuple[str, ...]) -> bool:
    return isinstance(feature, datasets.Value) and feature.dtype in dtypes


def _describe(feature: object) -> str:
    return feature.dtype if isinstance(feature, datasets.Value) else type(feature).__name__


def _is_image(feature: object) -> bool:
    if isinstance(feature, datasets.Image) or _is(feature, _BINARIES):
        return True
    # a struct {bytes, path} written without datasets' metadata
    return isinstance(feature, dict) and _is(feature.get("bytes"), _BINARIES)


def features_problem(features: datasets.Features | None) -> str | None:
    """Why `features` are not a SynFashion renders split, or None. (None features: unknown yet, checked per row.)"""
    if features is None:
        return None
    missing = [c for c in REQUIRED if c not in features]
    if missing:
        return f"no {', '.join(repr(c) for c in missing)} column (columns: {', '.join(features)})"
    if not _is(features["key"], _STRINGS):
        return f"column 'key' holds {_describe(features['key'])}, not strings"
    if not _is_image(features["image"]):
        return f"column 'image' holds {_describe(features['image'])}, not image bytes"
    for name in LABEL_COLUMNS:
        feature = features.get(name)
        if feature is not None and not (isinstance(feature, datasets.ClassLabel) or _is(feature, _INTS + _STRINGS)):
            return f"column {name!r} holds {_describe(feature)}, not a ClassLabel, an integer id or a name"
    if "orientation" in features and not _is(features["orientation"], _INTS):
        return f"column 'orientation' holds {_describe(features['orientation'])}, not integers"
    for name in TEXT_COLUMNS:
        if name in features and not _is(features[name], _STRINGS):
            return f"column {name!r} holds {_describe(features[name])}, not strings"
    return None


def shard_features(path: str | Path) -> tuple[datasets.Features, pa.Schema]:
    """The features a Parquet shard carries, read from the footer only, and its Arrow schema. datasets takes a
    column's feature from the `huggingface` schema metadata only where it matches the column's Arrow type, so
    metadata that lies about a column is not believed; the type is then inferred from Arrow."""
    schema = pq.read_schema(path)
    return datasets.Features.from_arrow_schema(schema), schema.remove_metadata()


def label_names(features: datasets.Features | None) -> dict[str, list[str]]:
    """column -> the ClassLabel names the data's ids refer to, for `category` and `view` (a column missing here has
    ids in SynFashion's own order, or names)."""
    return {c: list(f.names) for c in LABEL_COLUMNS
            if isinstance(f := (features or {}).get(c), datasets.ClassLabel)}


def extra_columns(features: datasets.Features | None, columns: Sequence[str] | None) -> list[str]:
    """The columns copied into each sample: `columns` as asked (each must exist and be a scalar), else every scalar
    column outside the renders schema (`source_key`, `source_sha256`, sidecar columns)."""
    if features is None:
        return list(columns or [])
    scalar = {name for name, f in features.items() if isinstance(f, (datasets.Value, datasets.ClassLabel))}
    if columns is None:
        return [name for name in features if is_extra(name) and name in scalar]
    bad = [c for c in columns if c not in scalar or c in RESERVED_FIELDS]
    if bad:
        choices = sorted(c for c in scalar if c not in RESERVED_FIELDS)
        raise ValueError(f"columns={list(columns)}: {bad} cannot travel with each sample (a sample already has "
                         f"{sorted(RESERVED_FIELDS)}; scalar columns here: {choices})")
    return list(columns)
