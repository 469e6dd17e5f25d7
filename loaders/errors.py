"""Errors that name what failed, and the skip-and-count record used when a caller opts out of raising.

A sample that cannot be read is never dropped silently: either an error is raised naming the source file or shard
(and row or member), the sample key and, for bad metadata, the field (`SampleDecodeError` for image bytes,
`SampleMetadataError` for a category, orientation or JSON that does not parse, `ShardFormatError` for a shard
whose columns are not a SynFashion split), or (with `on_error="skip"`) the dataset emits a `SkippedSample` marker
that the loader removes from the batch, counts and reports. Every error here can be rebuilt from its message alone,
which is how torch's DataLoader re-raises a worker's exception in the main process. This module holds no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from synfashion.fs.safepath import UnsafePathError

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


class ShardFormatError(ShardReadError):
    """A whole shard is not a SynFashion split: a required column is missing or has the wrong type."""


_SKIP_HINT = ("Fix the data, or pass on_error='skip' to skip such samples (they are counted and reported in "
              "loader.skipped).")


class FieldProblem(ValueError):
    """One metadata field of one sample is malformed (raised by the field parsers, turned into an error or a skip
    by the dataset, which knows where the sample came from)."""

    def __init__(self, field: str, problem: str):
        super().__init__(f"field {field!r}: {problem}")
        self.field, self.problem = field, problem


class SampleMetadataError(LoaderError):
    """One sample's metadata is malformed: a category that is not one of the 20, a bad orientation, a key that is
    not a string, a tar member's JSON that does not parse or is not an object."""

    def __init__(self, message: str, *, source: str | None = None, key: str | None = None, field: str | None = None):
        super().__init__(message)
        self.source, self.key, self.field = source, key, field

    @classmethod
    def from_problem(cls, problem: FieldProblem, *, source: str, key: str) -> "SampleMetadataError":
        return cls(f"bad metadata in sample {key!r} from {source}: {problem}. {_SKIP_HINT}",
                   source=source, key=key, field=problem.field)


class UnsafeSourceError(LoaderError, UnsafePathError):
    """A shard path read from data (a manifest, a Hub listing) that is not a plain relative path inside its folder,
    or a `pipe:` command the caller did not allow. Both a LoaderError and safepath's UnsafePathError (a ValueError)."""


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
