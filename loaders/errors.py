"""Errors that name what failed, and the skip-and-count record used when a caller opts out of raising.

A sample that cannot be decoded is never dropped silently: either `SampleDecodeError` is raised naming the
source file or shard and the sample key, or (with `on_error="skip"`) the dataset emits a `SkippedSample`
marker that the loader removes from the batch, counts and reports. This module holds no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

OnError = Literal["raise", "skip"]
ON_ERROR_CHOICES: tuple[str, ...] = ("raise", "skip")

# The key under which a dataset marks a sample it skipped (a dict with only this key and bookkeeping).
SKIPPED_FIELD = "__skipped__"


class LoaderError(RuntimeError):
    """Base class of every error raised by `loaders`."""


class SampleDecodeError(LoaderError):
    """One sample's image bytes could not be decoded (corrupt, truncated, unknown format).

    Constructible from the message alone so that torch's DataLoader can re-raise it in the main process
    with the worker's message intact.
    """

    def __init__(self, message: str, *, source: str | None = None, key: str | None = None):
        super().__init__(message)
        self.source = source
        self.key = key

    @classmethod
    def from_cause(cls, cause: BaseException, *, source: str, key: str) -> "SampleDecodeError":
        msg = (
            f"cannot decode sample {key!r} from {source}: {type(cause).__name__}: {cause}. "
            "Fix or remove the file, or pass on_error='skip' to skip such samples (they are counted and "
            "reported in loader.skipped)."
        )
        return cls(msg, source=source, key=key)


class ShardReadError(LoaderError):
    """A shard (tar or Parquet file) could not be opened or read to its end."""


@dataclass(frozen=True)
class SkippedSample:
    """What was skipped and why; collected by the loader in `loader.skipped`."""

    source: str
    key: str
    reason: str

    def as_marker(self) -> dict:
        return {SKIPPED_FIELD: self}


def check_on_error(value: str) -> str:
    if value not in ON_ERROR_CHOICES:
        raise ValueError(f"on_error={value!r}; choose one of {', '.join(ON_ERROR_CHOICES)}")
    return value


def is_skipped(sample: dict) -> bool:
    return SKIPPED_FIELD in sample
