"""Writing one output file of one planned shard: the unit of work `build` fans out to its workers.

A job carries everything it needs (records, where the sources are, what an earlier run left), writes its file
atomically through one of the shard writers, records the result, and returns its manifest entry. It never
decides what goes where: the plan in `build` did.
"""

from __future__ import annotations

import hashlib
import itertools
import os
from dataclasses import dataclass
from pathlib import Path

from ..atomic import write_json_atomic
from ..release.scan import file_stamp
from ..schema import (
    GARMENTS_CONFIG, RENDERS_CONFIG, RenderRecord, garment_key, garments_features, renders_features, renders_row,
)
from ..taxonomy import CATEGORIES, VIEWS
from ..writers import ParquetShardWriter, WdsShardWriter


class SourceChangedError(RuntimeError):
    """A source file is not the one the scan hashed (or cannot be read any more)."""


@dataclass(frozen=True)
class OutputJob:
    """One output file of one planned shard (renders Parquet, garments Parquet or WebDataset tar).

    A shard's three outputs are separate jobs, so workers balance whatever the shard count: a 2k-image release is
    one train shard, and three jobs keep two cores busy where one job per shard could not. Each job reads its
    sources from the page cache (cheap) and never re-hashes them: the scan hashed the bytes and `stamps` (size,
    mtime_ns) proves the file is the one it hashed, as make and rsync decide.
    """

    root: str
    out: str
    name: str  # RENDERS_CONFIG | GARMENTS_CONFIG | "webdataset"
    rel: str  # path under out
    split: str
    records: tuple[dict, ...]  # metadata of the shard's records, in write order
    stamps: tuple[tuple[int, int] | None, ...]  # per record: (size, mtime_ns) at scan time; None: compare sha256
    row_group_size: int
    durable: bool
    known: dict | None  # this output's manifest entry from an earlier run, if one recorded it
    done_record: str  # where to record the entry once the output is in place (a rerun trusts it after re-hashing)

    def entry(self, sha256: str, num_bytes: int) -> dict:
        garments = self.name == GARMENTS_CONFIG
        return {
            "path": self.rel, "format": "webdataset" if self.name == "webdataset" else "parquet",
            "config": GARMENTS_CONFIG if garments else RENDERS_CONFIG, "split": self.split,
            "num_samples": (len({garment_key(m["category"], m["project"], m["texture"]) for m in self.records})
                            if garments else len(self.records)),
            "num_bytes": num_bytes, "sha256": sha256,
        }


def _read_unchanged(root: str, meta: dict, stamp: tuple[int, int] | None) -> bytes:
    path = Path(root, meta["source_path"])
    try:
        with open(path, "rb") as f:
            now = file_stamp(os.fstat(f.fileno()))
            data = f.read()
    except OSError as e:
        raise SourceChangedError(f"{path}: cannot read it any more ({e}); run build again") from None
    if stamp is None:
        unchanged = hashlib.sha256(data).hexdigest() == meta["sha256"]
    else:
        unchanged = now == tuple(stamp) and len(data) == stamp[0]
    if not unchanged:
        raise SourceChangedError(
            f"{path} changed while the build was running (it differs from the scan); run build again"
        )
    return data


def _garment_row(garment: RenderRecord, views: dict[str, tuple[dict, bytes]]) -> dict:
    """The garments-config row of one textured garment (`garment`: any of its records) from its views' bytes."""
    row = {"key": garment.garment_id, "category": CATEGORIES.index(garment.category), "project": garment.project,
           "texture": garment.texture}
    for view in VIEWS:
        meta, data = views.get(view, (None, None))
        row[view] = {"bytes": data, "path": meta["source_path"].rsplit("/", 1)[-1]} if meta else None
        row[f"{view}_sha256"] = meta["sha256"] if meta else None
    return row


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
    out = Path(job.out)
    records = [RenderRecord.from_metadata(meta) for meta in job.records]
    items = zip(records, job.records, job.stamps)
    if job.name == "webdataset":
        writer: ParquetShardWriter | WdsShardWriter = WdsShardWriter(out / job.rel, durable=job.durable)
        with writer:
            for record, meta, stamp in items:
                writer.write(record.key, record.extension, _read_unchanged(job.root, meta, stamp), meta)
    elif job.name == RENDERS_CONFIG:
        writer = ParquetShardWriter(out / job.rel, renders_features(), row_group_size=job.row_group_size,
                                    durable=job.durable)
        with writer:
            for record, meta, stamp in items:
                writer.write(renders_row(record, _read_unchanged(job.root, meta, stamp)))
    else:
        writer = ParquetShardWriter(out / job.rel, garments_features(), row_group_size=job.row_group_size,
                                    durable=job.durable)
        with writer:
            # records are sorted by key, so a garment's views are adjacent (plan_shards never splits a garment)
            for _, garment in itertools.groupby(items, key=lambda item: item[0].garment_id):
                garment = list(garment)
                views = {r.view: (meta, _read_unchanged(job.root, meta, stamp)) for r, meta, stamp in garment}
                writer.write(_garment_row(garment[0][0], views))
    entry = job.entry(writer.sha256, writer.num_bytes)
    write_json_atomic(job.done_record, entry, durable=job.durable)
    return entry, False
