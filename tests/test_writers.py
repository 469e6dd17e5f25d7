"""Shard writers: the hashing file under them, and WebDataset tars byte-identical to webdataset's own writer."""

import hashlib
import io
import os
import random

import pytest
import webdataset as wds

from synfashion.writers.hashing import CHUNK, HashingFile
from synfashion.writers.webdataset import WdsShardWriter


def test_hashing_file_hashes_and_writes_every_byte_in_order(tmp_path):
    rng = random.Random(0)
    pieces = []
    for _ in range(300):  # small writes gathered into buffers, big ones queued as they are, odd buffer types
        n = rng.choice([0, 1, 100, 16 << 10, 64 << 10, 200_000, CHUNK + 7])
        data = os.urandom(n)
        pieces.append(rng.choice([data, bytearray(data), memoryview(data)]))
    f = HashingFile(open(tmp_path / "out", "wb"))
    for piece in pieces:
        assert f.write(piece) == len(bytes(piece))
    assert f.tell() == sum(len(bytes(p)) for p in pieces)
    f.close()
    want = b"".join(bytes(p) for p in pieces)
    assert (tmp_path / "out").read_bytes() == want
    assert f.sha256 == hashlib.sha256(want).hexdigest() and f.num_bytes == len(want)


def test_hashing_file_reports_a_failing_disk():
    class FullDisk(io.RawIOBase):
        def writable(self):
            return True

        def write(self, b):
            raise OSError(28, "No space left on device")

    f = HashingFile(FullDisk())
    with pytest.raises(OSError, match="No space left"):
        for _ in range(64):  # the error surfaces on a later write or, at the latest, on close
            f.write(os.urandom(200_000))
        f.close()


def test_tar_shards_are_byte_identical_to_webdataset_tarwriter(tmp_path):
    samples = [
        (f"cat__p{i}__t__{'long-' * i}front", "png" if i % 2 else "jpg", os.urandom(500 * i + 1),
         {"key": i, "note": "ünïcode"})
        for i in range(40)  # keys past 100 characters need PAX headers
    ]
    ours = tmp_path / "ours.tar"
    with WdsShardWriter(ours) as w:
        for s in samples:
            w.write(*s)
    theirs = io.BytesIO()
    with wds.TarWriter(theirs, encoder=False, mtime=0, user="synfashion", group="synfashion", mode=0o444) as t:
        for key, ext, data, meta in samples:
            t.write({"__key__": key, ext: data, "json": __import__("json").dumps(meta, sort_keys=True).encode()})
    assert ours.read_bytes() == theirs.getvalue()
    assert w.sha256 == hashlib.sha256(theirs.getvalue()).hexdigest()
    got = list(wds.WebDataset(str(ours), shardshuffle=False))
    assert [g["__key__"] for g in got] == [s[0] for s in samples]


def test_tar_writer_refuses_dotted_keys(tmp_path):
    with pytest.raises(ValueError, match="dot"):
        with WdsShardWriter(tmp_path / "x.tar") as w:
            w.write("a.b", "jpg", b"x", {})
    assert not list(tmp_path.iterdir())  # nothing left under the final name, no temp file


def _renders_rows(n):
    from synfashion.schema import renders_features

    rows = [{"image": {"bytes": os.urandom(1000 + 37 * i), "path": f"{i}.jpg"}, "key": f"k{i}", "category": i % 20,
             "project": "p", "texture": "t", "view": 0, "width": 8, "height": 8, "mode": "RGB", "format": "JPEG",
             "orientation": 1, "sha256": "0" * 64, "num_bytes": 1000 + 37 * i, "source_path": f"c/{i}.jpg"}
            for i in range(n)]
    return renders_features(), rows


def test_parquet_shard_hash_and_rows(tmp_path):
    import pyarrow.parquet as pq

    from synfashion.writers import ParquetShardWriter

    features, rows = _renders_rows(250)
    with ParquetShardWriter(tmp_path / "s.parquet", features, row_group_size=100) as w:
        for row in rows:
            w.write(row)
    data = (tmp_path / "s.parquet").read_bytes()
    assert w.sha256 == hashlib.sha256(data).hexdigest() and w.num_bytes == len(data) and w.count == 250
    pf = pq.ParquetFile(tmp_path / "s.parquet")
    assert [pf.metadata.row_group(i).num_rows for i in range(pf.num_row_groups)] == [100, 100, 50]
    assert pf.read().column("image").to_pylist() == [r["image"] for r in rows]


def test_parquet_shard_left_unfinished_leaves_nothing(tmp_path):
    from synfashion.writers import ParquetShardWriter

    features, rows = _renders_rows(150)
    with pytest.raises(RuntimeError, match="source vanished"):
        with ParquetShardWriter(tmp_path / "s.parquet", features) as w:
            for row in rows:
                w.write(row)
            raise RuntimeError("source vanished")
    assert list(tmp_path.iterdir()) == []
