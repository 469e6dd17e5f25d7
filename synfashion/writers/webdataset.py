"""One WebDataset tar shard: `<key>.<ext>` with the original bytes and `<key>.json` with the metadata.

Uses webdataset's TarWriter with a fixed mtime, user and group (same samples, same bytes), in PAX format so
long keys from a real release do not hit the 100-character USTAR name limit.
"""

from __future__ import annotations

import json
from pathlib import Path

import webdataset as wds

from ..atomic import atomic_path
from .hashing import HashingFile


class WdsShardWriter:
    """`with WdsShardWriter(path) as w: w.write(key, ext, data, meta)`; the tar appears only on a clean exit."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.count = 0
        self.sha256: str | None = None  # set on a clean close
        self.num_bytes = 0

    def __enter__(self) -> "WdsShardWriter":
        self._atomic = atomic_path(self.path)
        self._file = HashingFile(open(self._atomic.__enter__(), "wb"))
        self._tar = wds.TarWriter(
            self._file, encoder=False, mtime=0, user="synfashion", group="synfashion", format="PAX_FORMAT"
        )
        return self

    def write(self, key: str, ext: str, data: bytes, meta: dict) -> None:
        if "." in key:
            raise ValueError(f"WebDataset key {key!r} contains a dot; keys must be dot-free")
        self._tar.write({"__key__": key, ext: data, "json": json.dumps(meta, sort_keys=True).encode()})
        self.count += 1

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            self._tar.close()
            self._file.close()
            self.sha256, self.num_bytes = self._file.sha256, self._file.num_bytes
        finally:
            self._atomic.__exit__(exc_type, exc, tb)
