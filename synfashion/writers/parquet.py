"""One Parquet shard in the Hub layout: datasets' features in the schema metadata, small row groups.

Written with pyarrow directly rather than `Dataset.to_parquet`: rows of a planned shard stream straight from the
source files (no Arrow cache of the whole split), the image bytes stay the original file bytes, and compression is
chosen per column (image bytes are already compressed; compressing them again only costs CPU).
"""

from __future__ import annotations

from pathlib import Path

import datasets
import pyarrow as pa
import pyarrow.parquet as pq

from ..atomic import atomic_path
from .hashing import HashingFile

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
        self._file = HashingFile(open(self._atomic.__enter__(), "wb"))
        plain = [c for c in self.schema.names if c not in self._image_cols]
        self._writer = pq.ParquetWriter(
            self._file,
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
            table = pa.Table.from_pylist(self._pending, schema=self.schema)
            self._writer.write_table(table, row_group_size=self.row_group_size)
            self.count += len(self._pending)
            self._pending = []

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            if exc_type is None:
                self._flush()
        finally:
            self._writer.close()
            self._file.close()
            self.sha256, self.num_bytes = self._file.sha256, self._file.num_bytes
            self._atomic.__exit__(exc_type, exc, tb)
