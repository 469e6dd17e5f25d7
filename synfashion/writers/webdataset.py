"""One WebDataset tar shard: `<key>.<ext>` with the original bytes and `<key>.json` with the metadata.

The members are what webdataset's TarWriter writes (mode 0444, fixed mtime, user and group, PAX format so long
keys from a real release do not hit the 100-character USTAR name limit, a sample's members in sorted order), so
the shards read with webdataset and datasets' webdataset builder. They are written with the standard library's
tarfile directly: TarWriter opens a stream-mode tar whose 10 KiB record buffer cuts every image into a dozen
writes and re-slices its buffer each time (half this writer's time), and importing webdataset imports torch,
seconds of start-up for a command that never needs it.
"""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

from ..atomic import atomic_path
from .hashing import CHUNK, HashingFile

MTIME = 0
OWNER = "synfashion"


class WdsShardWriter:
    """`with WdsShardWriter(path) as w: w.write(key, ext, data, meta)`; the tar appears only on a clean exit."""

    def __init__(self, path: str | Path, *, durable: bool = False):
        self.path = Path(path)
        self.durable = durable  # fsync before the rename (survives power loss, not only a kill)
        self.count = 0
        self.sha256: str | None = None  # set on a clean close
        self.num_bytes = 0

    def __enter__(self) -> "WdsShardWriter":
        self._atomic = atomic_path(self.path, durable=self.durable)
        self._file = HashingFile(open(self._atomic.__enter__(), "wb"))
        self._tar = tarfile.open(fileobj=self._file, mode="w", format=tarfile.PAX_FORMAT, copybufsize=CHUNK)
        return self

    def write(self, key: str, ext: str, data: bytes, meta: dict) -> None:
        if "." in key:
            raise ValueError(f"WebDataset key {key!r} contains a dot; keys must be dot-free")
        members = {ext: data, "json": json.dumps(meta, sort_keys=True).encode()}
        for suffix in sorted(members):
            info = tarfile.TarInfo(f"{key}.{suffix}")
            info.size, info.mtime, info.mode = len(members[suffix]), MTIME, 0o444
            info.uname = info.gname = OWNER
            self._tar.addfile(info, io.BytesIO(members[suffix]))
        self.count += 1

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            self._tar.close()
            self._file.close()
            self.sha256, self.num_bytes = self._file.sha256, self._file.num_bytes
        finally:
            self._atomic.__exit__(exc_type, exc, tb)
