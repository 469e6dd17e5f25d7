"""Writing one output file of one planned shard: the unit of work a build fans out to its workers.

A job carries everything it needs (the shard's records, the schema of its config, the byte source its image bytes
come from, what an earlier run left), writes its file atomically through one of the shard writers, records the
result, and returns its manifest entry. It never decides what goes where (the plan did) and never knows where the
bytes come from (a release folder, or bytes a translation staged): `ByteSource` is the seam.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from ..fs.atomic import write_json_atomic
from ..schema import RENDERS_CONFIG, RecordSchema
from ..writers import ParquetShardWriter, WdsShardWriter

WEBDATASET = "webdataset"  # the output name of a shard's tar (the others are Parquet config names)


class SourceChangedError(RuntimeError):
    """A source's bytes are not the ones the plan recorded (changed, torn, or unreadable)."""


class ByteSource(Protocol):
    """Where a build's image bytes come from. Picklable: jobs carry it to worker processes.

    `read(meta, ref)`: the bytes of record `meta`'s image `ref` ("image": its own; "source": the rendered source of
    a translated record), raising `SourceChangedError` when they are not what the record says. `name(meta, ref)`:
    the file name stored beside them (its extension names the tar member).
    """

    def read(self, meta: dict, ref: str) -> bytes: ...

    def name(self, meta: dict, ref: str) -> str: ...


@dataclass(frozen=True)
class OutputJob:
    """One output file of one planned shard: a Parquet config's file, or the shard's WebDataset tar.

    A shard's outputs are separate jobs, so workers balance whatever the shard count: a 2k-image release is one
    train shard, and three jobs keep two cores busy where one job per shard could not.
    """

    out: str
    name: str  # a Parquet config name, or WEBDATASET
    rel: str  # path under out
    split: str
    records: tuple[dict, ...]  # metadata of the shard's records, in write order
    schema: RecordSchema | None  # the Parquet config's schema (None for the tar)
    source: ByteSource
    row_group_size: int
    durable: bool
    known: dict | None  # this output's manifest entry from an earlier run, if one recorded it
    done_record: str  # where to record the entry once the output is in place (a rerun trusts it after re-hashing)

    @property
    def num_samples(self) -> int:
        return self.schema.num_rows(self.records) if self.schema is not None else len(self.records)

    def entry(self, sha256: str, num_bytes: int) -> dict:
        return {
            "path": self.rel, "format": WEBDATASET if self.schema is None else "parquet",
            "config": RENDERS_CONFIG if self.schema is None else self.schema.config, "split": self.split,
            "num_samples": self.num_samples, "num_bytes": num_bytes, "sha256": sha256,
        }


def _reusable(job: OutputJob) -> dict | None:
    """The entry of an output an earlier run finished, if its bytes still hash to what that run recorded.

    Outputs are not fsynced by default, so after a power cut a file may exist under its final name with lost
    blocks; re-hashing it (a read from the page cache) is what makes reusing it safe.
    """
    path = Path(job.out, job.rel)
    if job.known is None or not path.is_file() or path.stat().st_size != job.known.get("num_bytes"):
        return None
    with open(path, "rb") as f:
        sha = hashlib.file_digest(f, "sha256").hexdigest()
    return job.entry(sha, job.known["num_bytes"]) if sha == job.known.get("sha256") else None


def run_output_job(job: OutputJob) -> tuple[dict, bool]:
    """Write the output (unless an earlier run left it intact); return its manifest entry and whether it was reused."""
    reused = _reusable(job)
    if reused is not None:
        return reused, True
    path = Path(job.out, job.rel)
    source = job.source
    if job.schema is None:
        writer: ParquetShardWriter | WdsShardWriter = WdsShardWriter(path, durable=job.durable)
        with writer:
            for meta in job.records:
                ext = source.name(meta, "image").rsplit(".", 1)[-1].lower()
                writer.write(meta["key"], ext, source.read(meta, "image"), meta)
    else:
        writer = ParquetShardWriter(path, job.schema.features, row_group_size=job.row_group_size, durable=job.durable)
        with writer:
            for row in job.schema.rows(job.records, source.read, source.name):
                writer.write(row)
    entry = job.entry(writer.sha256, writer.num_bytes)
    write_json_atomic(job.done_record, entry, durable=job.durable)
    return entry, False
