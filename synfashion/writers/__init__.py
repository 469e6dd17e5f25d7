"""Shard writers: one small class per output format, the same interface (`write(...)`, atomic on close)."""

from .parquet import DEFAULT_ROW_GROUP_SIZE, ParquetShardWriter
from .webdataset import WdsShardWriter

__all__ = ["DEFAULT_ROW_GROUP_SIZE", "ParquetShardWriter", "WdsShardWriter"]
