"""Reference-set features computed once: a content-addressed cache, and shareable statistics files.

Key (`StatsKey.digest()`): sha256 of a canonical JSON of the cache format version, the network name, its weights'
sha256, the preprocessing protocol string, and the sha256 of the sorted list of every image's content hash (the
caller's: a manifest's `sha256` where there is one, else the file's). Any change in any part is another key: a
re-rendered image, other weights, another resize. Paths and names are not part of it; the same images under other
names hit.

Files are safetensors: `features` [N, D] float32, optionally `mean` [D] / `cov` [D, D] float64, and in the header's
metadata the key parts, n, dim and `content_sha256` (over every tensor's name, dtype, shape and bytes). Reading
validates everything: header, format version, every key field, shapes against n and dim, the checksum, finiteness.
The cache (`load_or_compute`) never trusts a file that fails: it warns in one line and recomputes (and rewrites).
A statistics file given explicitly (`load_stats_file`) that was made for another network, weights or protocol is
refused with a ValueError naming the field (old -> new). The checksum finds accidents (truncation, bit rot, a
stray edit), not a forger who recomputes it.

Cache folder: the `cache_dir` argument; else `$R2R_CACHE/stats` when R2R_CACHE is set; else
`$XDG_CACHE_HOME/r2r/stats`; else `~/.cache/r2r/stats`. Writes are atomic (temp file + rename,
synfashion.fs.atomic). This module computes no features itself; callers pass a `compute` callable.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import torch

from .frechet import FeatureStats
from .identity import FeatureIdentity, tensors_sha256

FORMAT = "r2r-feature-stats"
FORMAT_VERSION = 1
ENV_CACHE = "R2R_CACHE"
MAX_HEADER = 100 << 20  # safetensors' own limit on the JSON header


class StatsFileError(ValueError):
    """A statistics file that cannot be trusted (unreadable, tampered, or made for another key)."""


def default_cache_dir() -> Path:
    """`$R2R_CACHE/stats`, else `$XDG_CACHE_HOME/r2r/stats`, else `~/.cache/r2r/stats`."""
    if os.environ.get(ENV_CACHE):
        return Path(os.environ[ENV_CACHE]).expanduser() / "stats"
    if os.environ.get("XDG_CACHE_HOME"):
        return Path(os.environ["XDG_CACHE_HOME"]).expanduser() / "r2r" / "stats"
    return Path.home() / ".cache" / "r2r" / "stats"


def images_digest(hashes: Iterable[str]) -> str:
    """sha256 of the sorted content hashes, one per line (order and names of the images do not matter)."""
    return hashlib.sha256("".join(f"{h}\n" for h in sorted(hashes)).encode()).hexdigest()


@dataclass(frozen=True)
class StatsKey:
    """What reference features depend on. `image_hashes` None: "any image set" (only for `load_stats_file`'s
    expectation, when the consumer does not have the images)."""

    network: str
    weights_sha256: str
    protocol: str
    image_hashes: tuple[str, ...] | None = field(default=None, repr=False)
    format_version: int = FORMAT_VERSION

    def __post_init__(self):
        if self.image_hashes is not None:
            object.__setattr__(self, "image_hashes", tuple(sorted(self.image_hashes)))

    @classmethod
    def for_images(cls, identity: FeatureIdentity, image_hashes: Iterable[str]) -> "StatsKey":
        return cls(identity.network, identity.weights_sha256, identity.protocol, tuple(image_hashes))

    @property
    def n_images(self) -> int | None:
        return None if self.image_hashes is None else len(self.image_hashes)

    @property
    def images_sha256(self) -> str | None:
        return None if self.image_hashes is None else images_digest(self.image_hashes)

    def fields(self) -> dict[str, str]:
        """The key's parts as strings, as stored in a file's metadata."""
        out = {"format_version": str(self.format_version), "network": self.network,
               "weights_sha256": self.weights_sha256, "protocol": self.protocol}
        if self.image_hashes is not None:
            out["images_sha256"] = self.images_sha256
            out["n_images"] = str(len(self.image_hashes))
        return out

    def digest(self) -> str:
        if self.image_hashes is None:
            raise ValueError("a cache key needs the image hashes (StatsKey.image_hashes is None)")
        return hashlib.sha256(json.dumps(self.fields(), sort_keys=True).encode()).hexdigest()


@dataclass
class LoadedStats:
    """A statistics file's content: features (None when only moments were stored) and their moments."""

    features: torch.Tensor | None
    stats: FeatureStats
    metadata: dict[str, str]


def _file_name(key: StatsKey) -> str:
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in key.network)[:48]
    return f"{safe}-{key.digest()}.safetensors"


def cache_path(key: StatsKey, cache_dir: str | Path | None = None) -> Path:
    """Where `key`'s features live: `<cache dir>/<network>-<key digest>.safetensors`."""
    return (Path(cache_dir) if cache_dir is not None else default_cache_dir()) / _file_name(key)


def stats_bytes(key: StatsKey, features: torch.Tensor | None = None, stats: FeatureStats | None = None) -> bytes:
    """The safetensors bytes of a statistics file (features and/or moments, with the key in the metadata)."""
    from safetensors.torch import save

    if features is None and stats is None:
        raise ValueError("a statistics file needs features or moments")
    tensors: dict[str, torch.Tensor] = {}
    if features is not None:
        _check_features(features, key)
        tensors["features"] = features.detach().to("cpu", torch.float32).contiguous()
    if stats is not None:
        tensors["mean"] = stats.mean.detach().to("cpu", torch.float64).contiguous()
        tensors["cov"] = stats.cov.detach().to("cpu", torch.float64).contiguous()
    n = features.shape[0] if features is not None else stats.n
    dim = (features.shape[1] if features is not None else stats.mean.shape[0])
    meta = {"format": FORMAT, **key.fields(), "n": str(n), "dim": str(dim),
            "content_sha256": tensors_sha256(tensors)}
    return save(tensors, metadata=meta)


def _check_features(features: torch.Tensor, key: StatsKey) -> None:
    if features.ndim != 2 or features.shape[0] < 1:
        raise ValueError(f"features must be [N, D] with N >= 1, got {tuple(features.shape)}")
    if key.image_hashes is not None and features.shape[0] != len(key.image_hashes):
        raise ValueError(f"{features.shape[0]} feature vectors for {len(key.image_hashes)} image hashes in the key")
    if not torch.isfinite(features).all():
        raise ValueError("features contain NaN or infinity; not cached")


def _header(data: bytes, where: str) -> dict:
    if len(data) < 8:
        raise StatsFileError(f"{where}: truncated ({len(data)} bytes, no safetensors header)")
    (size,) = struct.unpack("<Q", data[:8])
    if size > MAX_HEADER or 8 + size > len(data):
        raise StatsFileError(f"{where}: bad safetensors header (says {size} bytes, file has {len(data)})")
    try:
        header = json.loads(data[8:8 + size])
    except ValueError as e:
        raise StatsFileError(f"{where}: bad safetensors header ({e})") from None
    if not isinstance(header, dict):
        raise StatsFileError(f"{where}: bad safetensors header (not an object)")
    return header


def read_stats_bytes(data: bytes, where: str) -> LoadedStats:
    """Parse and validate everything but the key (StatsFileError naming the problem)."""
    from safetensors.torch import load

    meta = _header(data, where).get("__metadata__") or {}
    if meta.get("format") != FORMAT:
        raise StatsFileError(f"{where}: not an r2r statistics file (format {meta.get('format')!r})")
    try:
        tensors = load(data)
    except Exception as e:  # noqa: BLE001 - truncated data, bad offsets: the reader's message, with the file
        raise StatsFileError(f"{where}: unreadable safetensors ({type(e).__name__}: {e})") from None
    try:
        n, dim = int(meta["n"]), int(meta["dim"])
        checksum = meta["content_sha256"]
    except (KeyError, ValueError) as e:
        raise StatsFileError(f"{where}: metadata lacks n/dim/content_sha256 ({e})") from None
    if tensors_sha256(tensors) != checksum:
        raise StatsFileError(f"{where}: content checksum mismatch (the tensors were changed after writing)")
    features = tensors.get("features")
    if features is not None and (features.dtype != torch.float32 or tuple(features.shape) != (n, dim)):
        raise StatsFileError(f"{where}: features {features.dtype} {tuple(features.shape)}, metadata says "
                             f"float32 ({n}, {dim})")
    mean, cov = tensors.get("mean"), tensors.get("cov")
    if (mean is None) != (cov is None):
        raise StatsFileError(f"{where}: mean and cov must be stored together")
    if mean is not None and (tuple(mean.shape) != (dim,) or tuple(cov.shape) != (dim, dim)):
        raise StatsFileError(f"{where}: mean {tuple(mean.shape)} / cov {tuple(cov.shape)} do not match dim {dim}")
    if features is None and mean is None:
        raise StatsFileError(f"{where}: neither features nor mean/cov stored")
    for name, t in tensors.items():
        if not torch.isfinite(t).all():
            raise StatsFileError(f"{where}: {name} contains NaN or infinity")
    stats = FeatureStats(mean, cov, n) if mean is not None else FeatureStats.from_features(features)
    return LoadedStats(features=features, stats=stats, metadata=dict(meta))


def key_differences(expected: StatsKey, meta: dict[str, str]) -> list[str]:
    """'field: stored -> expected' for each key field that differs (image fields only when expected has them)."""
    diffs = []
    for name, want in expected.fields().items():
        have = meta.get(name)
        if have != want:
            diffs.append(f"{name}: {have!r} -> {want!r}")
    return diffs


def load_cached(key: StatsKey, cache_dir: str | Path | None = None) -> tuple[torch.Tensor | None, str | None]:
    """(features, None) on a hit, (None, None) on a miss, (None, note) when a file was there but is not trusted
    (also a one-line RuntimeWarning): the lookup half of `load_or_compute`, for a caller that computes several
    keys' features in one pass (`r2r evaluate`: one decode of the real set for every feature space)."""
    path = cache_path(key, cache_dir)
    if not path.is_file():
        return None, None
    try:
        loaded = read_stats_bytes(path.read_bytes(), str(path))
        diffs = key_differences(key, loaded.metadata)
        if diffs:
            raise StatsFileError(f"{path}: made for another key ({'; '.join(diffs)})")
        if loaded.features is None:
            raise StatsFileError(f"{path}: holds no features")
        return loaded.features, None
    except (StatsFileError, OSError) as e:
        note = f"statistics cache not used, recomputing: {e}"
        warnings.warn(note, RuntimeWarning, stacklevel=2)
        return None, note


def store_cached(key: StatsKey, features: torch.Tensor, cache_dir: str | Path | None = None, *,
                 with_moments: bool = False) -> str | None:
    """Store `features` under `key` (atomically); returns a note (also a warning) when it could not be written:
    a read-only or full cache costs the next run a recomputation, never this one its result."""
    from synfashion.fs.atomic import write_bytes_atomic

    features = features.detach().to("cpu", torch.float32)
    _check_features(features, key)
    path = cache_path(key, cache_dir)
    stats = FeatureStats.from_features(features) if with_moments and features.shape[0] > 1 else None
    try:
        write_bytes_atomic(path, stats_bytes(key, features, stats), durable=False)
    except OSError as e:
        msg = f"statistics cache {path} not written ({type(e).__name__}: {e})"
        warnings.warn(msg, RuntimeWarning, stacklevel=2)
        return msg
    return None


def load_or_compute(key: StatsKey, compute: Callable[[], torch.Tensor], cache_dir: str | Path | None = None, *,
                    with_moments: bool = False) -> tuple[torch.Tensor, bool, str | None]:
    """(features [N, D] float32, hit, note): the cached features for `key`, else `compute()` stored under it.

    `note` says why a cached file was not used, or why the result could not be stored (each also a one-line
    warning); None on a clean hit or a plain miss. `with_moments` stores mean/cov too (float64; 32 MB at D = 2048)."""
    with warnings.catch_warnings(record=True) as caught:  # re-raised below at the caller's level
        warnings.simplefilter("always")
        features, note = load_cached(key, cache_dir)
    for w in caught:
        warnings.warn(w.message, w.category, stacklevel=2)
    if features is not None:
        return features, True, None
    features = compute()
    if not isinstance(features, torch.Tensor):
        raise TypeError(f"compute() must return a tensor, got {type(features).__name__}")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        stored = store_cached(key, features, cache_dir, with_moments=with_moments)
    for w in caught:
        warnings.warn(w.message, w.category, stacklevel=2)
    if stored:
        note = f"{note}; {stored}" if note else stored
    return features.detach().to("cpu", torch.float32), False, note


def save_stats_file(path: str | Path, key: StatsKey, features: torch.Tensor | None = None, *,
                    stats: FeatureStats | None = None) -> Path:
    """Write a shareable statistics file: features (KID, FD, precision/recall) and/or moments only (FD)."""
    from synfashion.fs.atomic import write_bytes_atomic

    path = Path(path)
    if stats is None and features is not None and features.shape[0] > 1:
        stats = FeatureStats.from_features(features)
    write_bytes_atomic(path, stats_bytes(key, features, stats), durable=False)
    return path


def load_stats_file(path: str | Path, expected: StatsKey) -> LoadedStats:
    """Read a statistics file for `expected` (its image_hashes may be None: any image set).

    ValueError (a StatsFileError) when the file is unreadable or tampered, or was made for another network,
    weights, protocol or image set; the message names each differing field as 'stored -> expected'."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"statistics file {path} does not exist")
    loaded = read_stats_bytes(path.read_bytes(), str(path))
    diffs = key_differences(expected, loaded.metadata)
    if diffs:
        raise StatsFileError(f"{path}: statistics for another setup, refused ({'; '.join(diffs)})")
    return loaded


__all__ = [
    "ENV_CACHE", "FORMAT_VERSION", "LoadedStats", "StatsFileError", "StatsKey", "cache_path", "default_cache_dir",
    "images_digest", "key_differences", "load_cached", "load_or_compute", "load_stats_file", "read_stats_bytes",
    "save_stats_file", "stats_bytes", "store_cached",
]
