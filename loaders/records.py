"""One raw sample (bytes + metadata + where it came from) -> the dict every loader yields.

Every source (datasets rows, WebDataset members, image files) reduces its sample to a `RawSample` and calls
`make_sample`, so the output dict, the per-sample randomness and the error policy are the same everywhere.
Output: {"image": CHW tensor, "key": str, "source": str, ...metadata}. SynFashion sources add category (name),
label (ClassLabel id), project, texture, view, split; folders add path and caption.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from .errors import OnError, SampleDecodeError, SkippedSample
from .selection import category_label, category_name
from .transforms import ImageTransform

# SynFashion metadata copied into each sample (besides key/category/label).
SYNFASHION_FIELDS: tuple[str, ...] = ("project", "texture", "view")


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


def synfashion_meta(row: dict, split: str) -> dict:
    """The SynFashion metadata of a Parquet row (category as ClassLabel id) or a tar's JSON (category as name)."""
    name = category_name(row["category"])
    meta = {"category": name, "label": category_label(name), "split": row.get("split") or split}
    for f in SYNFASHION_FIELDS:
        meta[f] = row.get(f)
    return meta


def orientation_of(row: dict) -> int | None:
    value = row.get("orientation")
    return int(value) if value is not None and 1 <= int(value) <= 8 else None
