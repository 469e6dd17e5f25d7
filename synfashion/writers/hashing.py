"""A write-only file wrapper that sha256-hashes what passes through it, so a shard's hash costs no re-read.

Hashing and the write system call run on a helper thread (both release the GIL), overlapping with the caller's
reading and encoding: a single shard job then keeps two cores busy, which matters because a small release is
one big train shard. Small writes (tarfile hands over 16 KiB pieces) are gathered into recycled 1 MiB buffers,
so the thread sees few, large chunks and no fresh memory is faulted in per write.
"""

from __future__ import annotations

import hashlib
import io
import queue
import threading

CHUNK = 1 << 20
_BUFFERS = 8  # gathering buffers per open shard (8 MiB); big immutable writes are queued as they are
_PASS_THROUGH = 64 << 10  # an image or a Parquet page: queue the caller's bytes object rather than copy it
_MAX_QUEUED = 32  # chunks waiting for the thread, so a slow disk holds back the writer instead of filling memory


class HashingFile(io.RawIOBase):
    def __init__(self, raw):
        self._raw = raw
        self._sha = hashlib.sha256()
        self.num_bytes = 0
        self._free: queue.Queue[bytearray] = queue.Queue()
        for _ in range(_BUFFERS):
            self._free.put(bytearray(CHUNK))
        self._full: queue.Queue[tuple[bytes | bytearray, int] | None] = queue.Queue(maxsize=_MAX_QUEUED)
        self._buf = self._free.get()
        self._pos = 0
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._drain, name="hashing-file", daemon=True)
        self._thread.start()

    def _drain(self) -> None:
        while (item := self._full.get()) is not None:
            buf, n = item
            if self._error is None:
                try:
                    view = memoryview(buf)[:n]
                    self._sha.update(view)
                    self._raw.write(view)
                except BaseException as e:  # re-raised in the caller's thread on its next write or close
                    self._error = e
            if isinstance(buf, bytearray):
                self._free.put(buf)

    def _check(self) -> None:
        if self._error is not None:
            raise self._error

    def _hand_over(self) -> None:
        if self._pos:
            self._full.put((self._buf, self._pos))
            self._buf, self._pos = self._free.get(), 0

    def writable(self) -> bool:
        return True

    def write(self, b) -> int:
        self._check()
        n = len(b) if isinstance(b, bytes) else memoryview(b).nbytes
        if n >= _PASS_THROUGH and isinstance(b, bytes):  # immutable and big: pass it on without a copy
            self._hand_over()
            self._full.put((b, n))
        else:
            view = memoryview(b).cast("B")
            while view.nbytes:
                take = min(view.nbytes, CHUNK - self._pos)
                self._buf[self._pos : self._pos + take] = view[:take]
                self._pos += take
                view = view[take:]
                if self._pos == CHUNK:
                    self._hand_over()
        self.num_bytes += n
        return n

    def tell(self) -> int:
        return self.num_bytes

    def flush(self) -> None:
        self._check()  # the bytes reach the file on close; there is nothing a caller could observe earlier

    def close(self) -> None:
        if not self.closed:
            try:
                self._hand_over()
            finally:
                self._full.put(None)
                self._thread.join()
                super().close()
                self._raw.close()
            self._check()

    @property
    def sha256(self) -> str:
        return self._sha.hexdigest()
