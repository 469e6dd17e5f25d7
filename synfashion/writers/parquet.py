"""One Parquet shard in the Hub layout: datasets' features in the schema metadata, small row groups.

Written with pyarrow directly rather than `Dataset.to_parquet`: rows of a planned shard stream straight from the
source files (no Arrow cache of the whole split), the image bytes stay the original file bytes, and compression is
chosen per column (image bytes are already compressed; compressing them again only costs CPU). pyarrow writes the
file through its own native sink (a Python file object would cost a copy of every page and a call per write);
the sha256 follows behind, read back from the page cache after each row group.
"""

from __future__ import annotations

import os
from pathlib import Path

import datasets
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ..fs.atomic import atomic_path
from .hashing import TailHasher

DEFAULT_ROW_GROUP_SIZE = 100  # rows; small groups let the Hub viewer and streaming readers fetch little at a time


class ParquetShardWriter:
    """`with ParquetShardWriter(path, features) as w: w.write(row)`; the file appears only on a clean exit."""

    def __init__(
        self, path: str | Path, features: datasets.Features, *, row_group_size: int = DEFAULT_ROW_GROUP_SIZE,
        durable: bool = False,
    ):
        self.path = Path(path)
        self.schema = features.arrow_schema
        self.row_group_size = row_group_size
        self.durable = durable  # fsync before the rename (survives power loss, not only a kill)
        self.count = 0
        self.sha256: str | None = None  # set on a clean close
        self.num_bytes = 0
        self._image_cols = [name for name, f in features.items() if isinstance(f, datasets.Image)]
        self._pending: list[dict] = []

    def __enter__(self) -> "ParquetShardWriter":
        self._atomic = atomic_path(self.path, durable=self.durable)
        self._tmp = self._atomic.__enter__()
        self._sink = pa.OSFile(str(self._tmp), "wb")
        self._hasher = TailHasher(self._tmp)
        plain = [c for c in self.schema.names if c not in self._image_cols]
        self._writer = pq.ParquetWriter(
            self._sink,
            self.schema,
            compression={c: ("none" if c in self._image_cols else "snappy") for c in self.schema.names},
            use_dictionary=plain,
            write_statistics=plain,
        )
        return self

    def write(self, row: dict) -> None:
        self._pending.append(row)
        if len(self._pending) >= self.row_group_size:
            self._flush()

    def _flush(self) -> None:
        if self._pending:
            rows = self._pending
            columns = [
                _image_column([row[f.name] for row in rows], f.type) if f.name in self._image_cols
                else pa.array([row[f.name] for row in rows], type=f.type)
                for f in self.schema
            ]
            self._writer.write_table(pa.Table.from_arrays(columns, schema=self.schema),
                                     row_group_size=self.row_group_size)
            self._hasher.advance(self._sink.tell())
            self.count += len(rows)
            self._pending = []

    def __exit__(self, exc_type, exc, tb) -> None:
        failure = (exc_type, exc, tb)
        try:
            if exc_type is None:
                self._flush()
            self._writer.close()
            self._sink.close()
            if exc_type is None:
                self.num_bytes = os.stat(self._tmp).st_size
                self.sha256 = self._hasher.finish(self.num_bytes)
        except BaseException as e:
            failure = (type(e), e, e.__traceback__)
            raise
        finally:
            self._hasher.abandon()  # no-op once finished
            self._atomic.__exit__(*failure)  # renames the file into place only when nothing failed


_MAX_BINARY = 2**31 - 1  # Arrow `binary` offsets are int32


def _image_column(cells: list[dict | None], struct_type: pa.StructType) -> pa.Array:
    """A row group's datasets `Image` cells ({"bytes", "path"}) as one Arrow struct array.

    `Table.from_pylist` appends image after image to a growing builder: a dict lookup per cell, a reallocation
    copy each time the buffer doubles, and freshly zeroed pages; joining the bytes once and handing Arrow the
    offsets is one copy. A row group with a missing view (a null cell) or over 2 GiB of bytes takes Arrow's own path.
    """
    datas = [cell["bytes"] if cell is not None else None for cell in cells]
    sizes = [len(d) if d is not None else -1 for d in datas]
    if min(sizes, default=0) < 0 or sum(sizes) > _MAX_BINARY:
        return pa.array(cells, type=struct_type)
    offsets = np.zeros(len(datas) + 1, dtype=np.int32)
    np.cumsum(sizes, out=offsets[1:])
    data = pa.Array.from_buffers(pa.binary(), len(datas), [None, pa.py_buffer(offsets), pa.py_buffer(b"".join(datas))])
    children = {"bytes": data, "path": pa.array([cell.get("path") for cell in cells], type=pa.string())}
    return pa.StructArray.from_arrays([children[f.name] for f in struct_type], fields=list(struct_type))
