"""Hashing a shard while it is written, so its sha256 costs no separate pass: two ways, one per kind of writer.

`HashingFile` is the file object a Python writer (the tar writer) writes to: sha256 and the write system call run on
two helper threads (both release the GIL), overlapping each other and the caller's encoding. Small writes (tar
headers and padding) are gathered into recycled 1 MiB buffers, so the threads see few, large chunks and no fresh
memory is faulted in per write. `TailHasher` follows a file that a native writer (pyarrow's Parquet sink) owns,
reading back from the page cache what is already complete.
"""

from __future__ import annotations

import hashlib
import io
import os
import queue
import threading

CHUNK = 1 << 20
_BUFFERS = 8  # gathering buffers per open shard (8 MiB); big immutable writes are queued as they are
_PASS_THROUGH = 64 << 10  # an image or a Parquet page: queue the caller's bytes object rather than copy it
_MAX_QUEUED = 32  # chunks waiting per thread, so a slow disk holds back the writer instead of filling memory


class HashingFile(io.RawIOBase):
    def __init__(self, raw):
        self._raw = raw
        self._sha = hashlib.sha256()
        self.num_bytes = 0
        self._free: queue.Queue[bytearray] = queue.Queue()
        for _ in range(_BUFFERS):
            self._free.put(bytearray(CHUNK))
        self._buf = self._free.get()
        self._pos = 0
        self._error: BaseException | None = None
        self._lock = threading.Lock()
        # each chunk goes to both queues as [buffer, length, consumers still to finish]; the last one recycles it
        self._queues: list[queue.Queue[list | None]] = [queue.Queue(maxsize=_MAX_QUEUED) for _ in range(2)]
        self._threads = [
            threading.Thread(target=self._drain, args=(q, work), name=f"hashing-file-{name}", daemon=True)
            for q, work, name in zip(self._queues, (self._sha.update, raw.write), ("sha256", "write"))
        ]
        for t in self._threads:
            t.start()

    def _drain(self, q: queue.Queue, work) -> None:
        while (item := q.get()) is not None:
            buf, n, _ = item
            if self._error is None:
                try:
                    work(memoryview(buf)[:n])
                except BaseException as e:  # re-raised in the caller's thread on its next write or close
                    self._error = e
            with self._lock:
                item[2] -= 1
                done = item[2] == 0
            if done and isinstance(buf, bytearray):
                self._free.put(buf)

    def _put(self, buf: bytes | bytearray, n: int) -> None:
        item = [buf, n, len(self._queues)]
        for q in self._queues:
            q.put(item)

    def _check(self) -> None:
        if self._error is not None:
            raise self._error

    def _hand_over(self) -> None:
        if self._pos:
            self._put(self._buf, self._pos)
            self._buf, self._pos = self._free.get(), 0

    def writable(self) -> bool:
        return True

    def write(self, b) -> int:
        self._check()
        n = len(b) if isinstance(b, bytes) else memoryview(b).nbytes
        if n >= _PASS_THROUGH and isinstance(b, bytes):  # immutable and big: pass it on without a copy
            self._hand_over()
            self._put(b, n)
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
                for q in self._queues:
                    q.put(None)
                for t in self._threads:
                    t.join()
                super().close()
                self._raw.close()
            self._check()

    @property
    def sha256(self) -> str:
        return self._sha.hexdigest()


class TailHasher:
    """sha256 of a file another writer is appending to, read back from the page cache as it grows.

    For writers that must own the file themselves (pyarrow writes Parquet through its own native sink, skipping
    a Python copy of every page): after each flush the caller says how far the file is complete, and a helper
    thread hashes up to there, overlapping the next row group's encoding.
    """

    def __init__(self, path: str | os.PathLike):
        self._fd = os.open(path, os.O_RDONLY)
        self._sha = hashlib.sha256()
        self.num_bytes = 0
        self._targets: queue.Queue[int | None] = queue.Queue()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._drain, name="tail-hasher", daemon=True)
        self._thread.start()

    def _drain(self) -> None:
        while (target := self._targets.get()) is not None:
            try:
                while self._error is None and self.num_bytes < target:
                    chunk = os.pread(self._fd, min(CHUNK * 8, target - self.num_bytes), self.num_bytes)
                    if not chunk:
                        raise OSError(f"file ended at byte {self.num_bytes}, expected {target}")
                    self._sha.update(chunk)
                    self.num_bytes += len(chunk)
            except BaseException as e:  # re-raised by finish()
                self._error = e

    def advance(self, complete_up_to: int) -> None:
        """Bytes [0, complete_up_to) are written and will not change."""
        self._targets.put(complete_up_to)

    def finish(self, size: int) -> str:
        """Hash through the final `size` bytes; return the hex digest."""
        self._targets.put(size)
        self.abandon()
        if self._error is not None:
            raise self._error
        return self._sha.hexdigest()

    def abandon(self) -> None:
        """Stop the thread and close the file (what is queued is still hashed); safe to call twice."""
        if self._fd is not None:
            self._targets.put(None)
            self._thread.join()
            os.close(self._fd)
            self._fd = None
