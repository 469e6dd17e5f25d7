"""One WebDataset tar shard: `<key>.<ext>` with the original bytes and `<key>.json` with the metadata.

The bytes are exactly what webdataset's TarWriter writes (mode 0444, fixed mtime, user and group, PAX format so
long keys from a real release do not hit the 100-character USTAR name limit, a sample's members in sorted order;
a test compares the two), so the shards read with webdataset and datasets' webdataset builder. Each member's
header comes from the standard library (`TarInfo.tobuf`); this module only lays out header, data and padding.
TarWriter, and `TarFile.addfile` under it, cost half this writer's time: a stream-mode 10 KiB record buffer
re-sliced for every image, a copy of every TarInfo, a BytesIO per member. And importing webdataset imports torch,
seconds of start-up for a command that never needs it.
"""

from __future__ import annotations

import contextlib
import json
import tarfile
from pathlib import Path

from ..fs.atomic import atomic_path
from ..fs.safepath import check_key
from .hashing import HashingFile

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
        return self

    def write(self, key: str, ext: str, data: bytes, meta: dict) -> None:
        check_key(key, where=str(self.path))  # the one key rule: a member name is a plain <key>.<ext>
        if not ext.isascii() or not ext.isalnum():
            raise ValueError(f"{self.path}: member extension {ext!r} of {key!r} is not a plain extension")
        members = {ext: data, "json": json.dumps(meta, sort_keys=True).encode()}
        for suffix in sorted(members):
            data = members[suffix]
            info = tarfile.TarInfo(f"{key}.{suffix}")
            info.size, info.mtime, info.mode = len(data), MTIME, 0o444
            info.uname = info.gname = OWNER
            self._file.write(info.tobuf(tarfile.PAX_FORMAT, tarfile.ENCODING, "surrogateescape"))
            self._file.write(data)
            if len(data) % tarfile.BLOCKSIZE:
                self._file.write(tarfile.NUL * (tarfile.BLOCKSIZE - len(data) % tarfile.BLOCKSIZE))
        self.count += 1

    def __exit__(self, exc_type, exc, tb) -> None:
        failure = (exc_type, exc, tb)
        try:
            if exc_type is None:  # end of archive: two zero blocks, then zeros to a whole 10 KiB record
                self._file.write(tarfile.NUL * (2 * tarfile.BLOCKSIZE))
                self._file.write(tarfile.NUL * (-self._file.tell() % tarfile.RECORDSIZE))
            self._file.close()  # raises what the write thread met (a full disk): then nothing may be renamed
            self.sha256, self.num_bytes = self._file.sha256, self._file.num_bytes
        except BaseException as e:
            failure = (type(e), e, e.__traceback__)
            with contextlib.suppress(BaseException):
                self._file.close()
            raise
        finally:
            self._atomic.__exit__(*failure)  # renames the tar into place only when nothing failed
