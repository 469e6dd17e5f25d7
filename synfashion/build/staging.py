"""Bytes a producer hands to a build (r2r's translation: translated PNGs and their rendered sources), kept in the
build's state folder until the shard writers take them.

The producer commits its work in units (a batch): every file of the unit is written atomically, then the unit's
record (each file's sha256), last; a unit without its record is not done and is produced again whole. The byte
source the writers read from re-hashes every file against the record's metadata, so a staged file torn by a power
cut is an error naming it, never a bad shard. synfashion never imports the producer: it only receives bytes.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from ..fs.atomic import write_bytes_atomic, write_json_atomic
from ..fs.safepath import inside, key_file
from .output_jobs import SourceChangedError

FORMAT_EXTENSIONS = {"PNG": "png", "JPEG": "jpg", "WEBP": "webp", "BMP": "bmp", "TIFF": "tif"}
REFS = ("image", "source")  # a record's own bytes, and its rendered source's (translated variants)


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class Staging:
    """`OUT/.synfashion-build/staged/`: one file per (key, ref), and one record per committed unit."""

    def __init__(self, state_dir: str | Path, *, durable: bool = False):
        self.dir = Path(state_dir) / "staged"
        self.durable = durable

    def path(self, key: str, ref: str) -> Path:
        if ref not in REFS:
            raise ValueError(f"staged reference must be one of {REFS}, got {ref!r}")
        return key_file(self.dir, key, f".{ref}", where="staging")  # a key is a name, never a path

    def _record(self, unit: str) -> Path:
        return self.dir / "units" / f"{unit}.json"

    def commit(self, unit: str, files: dict[tuple[str, str], bytes], info: dict | None = None) -> dict:
        """Write every (key, ref) -> bytes of `unit`, then its record; returns the record."""
        hashes = {}
        for (key, ref), data in sorted(files.items()):
            write_bytes_atomic(self.path(key, ref), data, durable=self.durable)
            hashes[self.path(key, ref).name] = [_sha(data), len(data)]
        record = {"unit": unit, "files": hashes, **(info or {})}
        write_json_atomic(self._record(unit), record, durable=self.durable)
        return record

    def committed(self, unit: str, *, rehash: bool = True) -> dict | None:
        """The unit's record when the unit is done (its record exists and every file it lists is in place, with
        its recorded size and, with `rehash`, its recorded sha256)."""
        with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
            record = json.loads(self._record(unit).read_text())
            for name, (sha, size) in record["files"].items():  # re-hashed: a file torn by a power cut redoes the unit
                path = inside(self.dir, name)
                if path.stat().st_size != size or (rehash and _sha(path.read_bytes()) != sha):
                    return None
            return record
        return None

    def byte_source(self) -> "StagedBytes":
        return StagedBytes(str(self.dir))


@dataclass(frozen=True)
class StagedBytes:
    """The `ByteSource` of staged bytes. A translated record's metadata says what its bytes must hash to: `sha256`
    for its own ("image"), `source_sha256` for its rendered source ("source")."""

    folder: str

    def read(self, meta: dict, ref: str) -> bytes:
        path = key_file(self.folder, meta["key"], f".{ref}", where="staging")
        want = meta["sha256"] if ref == "image" else meta["source_sha256"]
        try:
            data = path.read_bytes()
        except OSError as e:
            raise SourceChangedError(f"{path}: staged bytes of {meta['key']!r} cannot be read ({e}); run again") \
                from None
        if _sha(data) != want:
            raise SourceChangedError(f"{path}: staged bytes of {meta['key']!r} do not hash to the recorded "
                                     f"{want[:12]}… (torn by a crash?); run again to produce them anew")
        return data

    def name(self, meta: dict, ref: str) -> str:
        if ref == "image":
            return f"{meta['key']}.{FORMAT_EXTENSIONS.get(meta['format'], meta['format'].lower())}"
        return meta["source_path"].rsplit("/", 1)[-1]
