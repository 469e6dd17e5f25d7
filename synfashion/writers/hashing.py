"""A write-only file wrapper that sha256-hashes what passes through it, so a shard's hash costs no re-read."""

from __future__ import annotations

import hashlib
import io


class HashingFile(io.RawIOBase):
    def __init__(self, raw):
        self._raw = raw
        self._sha = hashlib.sha256()
        self.num_bytes = 0

    def writable(self) -> bool:
        return True

    def write(self, b) -> int:
        self._sha.update(b)
        n = self._raw.write(b)
        self.num_bytes += n
        return n

    def tell(self) -> int:
        return self.num_bytes

    def flush(self) -> None:
        self._raw.flush()

    def close(self) -> None:
        if not self.closed:
            super().close()  # flushes first
            self._raw.close()

    @property
    def sha256(self) -> str:
        return self._sha.hexdigest()
