"""What the scan learnt about each source file, kept in a build's state folder so a resumed build skips it.

A file whose (size, mtime_ns) still matches is not read, hashed or validated again: the rule make and rsync use,
and the one the shard jobs already apply between scan and write. `verify` re-hashes every sample in every shard,
so a file changed behind an unchanged stamp cannot pass unnoticed. The cache holds only results that depend on the
bytes (sha256, image facts, a corrupt/not-an-image verdict), never names, splits or shards; it is keyed by the
builder version and the validation settings, and any doubt (unreadable, other settings) means a fresh scan.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Mapping
from pathlib import Path

from .. import __version__
from ..fs.atomic import write_json_atomic
from .imagecheck import ImageInfo, ImageRejected
from .scan import CheckResult, ScanConfig

FORMAT = "synfashion-scan-cache/1"


def _key(config: ScanConfig) -> dict:
    return {"builder_version": __version__, "max_pixels": config.max_pixels, "validate": config.validate,
            "max_bytes": config.max_bytes}


def load_scan_cache(path: str | Path, config: ScanConfig) -> dict[str, CheckResult]:
    """source path -> its check result; empty when there is no cache, or one written with other settings."""
    with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
        doc = json.loads(Path(path).read_text())
        if doc.get("format") != FORMAT or doc.get("key") != _key(config):
            return {}
        out: dict[str, CheckResult] = {}
        for rel, (size, mtime_ns, digest, facts) in doc["files"].items():
            result = ImageInfo(**facts) if "width" in facts else ImageRejected(facts["reason"], facts["detail"])
            out[rel] = (rel, digest, (size, mtime_ns), result)
        return out
    return {}  # a torn or foreign file: scan afresh


def save_scan_cache(path: str | Path, checked: Mapping[str, CheckResult], config: ScanConfig, *,
                    durable: bool = False) -> None:
    files = {}
    for rel, (_, digest, (size, mtime_ns), result) in sorted(checked.items()):
        if isinstance(result, ImageRejected):
            if result.reason == "unreadable":  # a permission or I/O problem may pass: ask again next time
                continue
            facts = {"reason": result.reason, "detail": result.detail}
        else:  # by hand: dataclasses.asdict deep-copies, a third of a second per 10k files
            facts = {"width": result.width, "height": result.height, "mode": result.mode, "format": result.format,
                     "orientation": result.orientation}
        files[rel] = [size, mtime_ns, digest, facts]
    write_json_atomic(path, {"format": FORMAT, "key": _key(config), "files": files}, indent=None, durable=durable)
