"""A built folder's `manifest.json` as one typed record: read (validated), written, queried.

Build, verify, stats, the Hub round trip, the cards and the loaders all read the manifest through `Manifest.read`,
so a manifest written by a stranger is checked once, in one place: it must be a JSON object with the fields below,
every shard entry complete and typed, and every path a plain relative path inside the folder (`safepath`), so
nothing read from it can reach a shell, a URL opener or a file outside the folder. Errors name the file and the
problem. This module reads and writes only the manifest itself.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from .fs.atomic import write_json_atomic
from .fs.safepath import UnsafePathError, key_problem, safe_relpath
from .schema import GARMENTS_CONFIG, RENDERS_CONFIG, SPLITS, garment_key

MANIFEST = "manifest.json"
_BUILD_STATE = ".synfashion-build"  # synfashion.build.state.STATE_DIR (state.py imports this module)
FORMAT = "synfashion-build/2"
READABLE_FORMATS = ("synfashion-build/1", FORMAT)  # /1: before kinds, features and the card's hash were recorded
KINDS = ("synfashion", "translated")
SHARD_FORMATS = ("parquet", "webdataset")


class ManifestError(ValueError):
    """manifest.json is missing, unreadable, or not a manifest this toolkit can trust; the message names it."""


@dataclass(frozen=True)
class ShardEntry:
    """One output file: where it is, what it holds, and the bytes it must hash to."""

    path: str
    format: str  # "parquet" | "webdataset"
    config: str  # the Parquet config it belongs to ("renders" for a tar)
    split: str
    num_samples: int
    num_bytes: int
    sha256: str

    def to_dict(self) -> dict:
        return {"path": self.path, "format": self.format, "config": self.config, "split": self.split,
                "num_samples": self.num_samples, "num_bytes": self.num_bytes, "sha256": self.sha256}

    @classmethod
    def from_dict(cls, doc: object, where: str) -> "ShardEntry":
        if not isinstance(doc, dict):
            raise ManifestError(f"{where}: a shard entry is {type(doc).__name__}, not an object")
        name = doc.get("path", "?")
        try:  # the path first: an unsafe one is named as such whatever else is wrong with the entry
            safe_relpath(doc.get("path"), where=where)
        except UnsafePathError as e:
            raise ManifestError(str(e)) from None
        for key, kind in (("path", str), ("format", str), ("config", str), ("split", str), ("num_samples", int),
                          ("num_bytes", int), ("sha256", str)):
            value = doc.get(key)
            if not isinstance(value, kind) or isinstance(value, bool):
                got = "missing" if key not in doc else f"{type(value).__name__} {value!r}"[:80]
                raise ManifestError(f"{where}: shard {name!r} needs {key} ({kind.__name__}), got {got}")
        if doc["format"] not in SHARD_FORMATS:
            raise ManifestError(f"{where}: shard {name!r} has format {doc['format']!r}; expected parquet or webdataset")
        if doc["num_bytes"] < 0 or doc["num_samples"] < 0 or len(doc["sha256"]) != 64:
            raise ManifestError(f"{where}: shard {name!r} has a negative count or a malformed sha256")
        return cls(**{k: doc[k] for k in ("path", "format", "config", "split", "num_samples", "num_bytes",
                                          "sha256")})


_SAMPLE_FIELDS = (("key", str), ("split", str), ("category", str), ("sha256", str))


def _check_sample(s: object, i: int, where: str) -> dict:
    if not isinstance(s, dict):
        raise ManifestError(f"{where}: sample {i} is {type(s).__name__}, not an object")
    for key, kind in _SAMPLE_FIELDS:
        if not isinstance(s.get(key), kind):
            raise ManifestError(f"{where}: sample {i} ({s.get('key', '?')!r}) needs {key} ({kind.__name__})")
    if key_problem(s["key"]) is not None:  # keys become file names: checked here, where the data is read
        raise ManifestError(f"{where}: sample {i}: key {s['key'][:80]!r} {key_problem(s['key'])}")
    if s["split"] not in SPLITS:
        raise ManifestError(f"{where}: sample {s['key']!r} has split {s['split']!r}; expected one of {SPLITS}")
    for fmt, rel in (s.get("shards") or {}).items():
        try:
            safe_relpath(rel, where=f"{where}: sample {s['key']!r} shards.{fmt}")
        except UnsafePathError as e:
            raise ManifestError(str(e)) from None
    return s


def compute_counts(samples: list[dict]) -> dict:
    """The manifest's `counts` (what the card and `stats` show), from the samples alone."""
    per_split = Counter(s["split"] for s in samples)
    return {
        "total": len(samples),
        "per_split": {sp: per_split.get(sp, 0) for sp in SPLITS},
        "per_split_category": {
            sp: dict(sorted(Counter(s["category"] for s in samples if s["split"] == sp).items())) for sp in SPLITS
        },
        "per_split_view": {
            sp: dict(sorted(Counter(s["view"] for s in samples if s["split"] == sp).items())) for sp in SPLITS
        },
        "projects": len({f"{s['category']}/{s['project']}" for s in samples}),
        "textures": len({s["texture"] for s in samples}),
        "garments": len({garment_key(s["category"], s["project"], s["texture"]) for s in samples}),
    }


@dataclass
class Manifest:
    """Everything a built folder promises: parameters, counts, every shard and sample with its sha256.

    `kind` is "synfashion" (a packaged release) or "translated" (a variant made from one: `source` then names the
    dataset it came from and `provenance` the model and settings). `features` holds each Parquet config's
    datasets features, so readers and cards never assume a fixed column set.
    """

    samples: list[dict]
    shards: list[ShardEntry]
    parameters: dict
    counts: dict = field(default_factory=dict)
    kind: str = "synfashion"
    fingerprint: str = ""
    builder_version: str = ""
    source: dict = field(default_factory=dict)
    splits: dict = field(default_factory=dict)
    features: dict[str, list] = field(default_factory=dict)  # config -> [[column, datasets feature spec], ...]
    provenance: dict = field(default_factory=dict)
    rejected: list[dict] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)
    scan: dict = field(default_factory=dict)  # a release's scan: notes, candidates, links followed out of it
    card_sha256: str | None = None
    format: str = FORMAT

    # ------------------------------------------------------------------------------------------- queries
    @property
    def formats(self) -> tuple[str, ...]:
        return tuple(self.parameters.get("formats") or sorted({s.format for s in self.shards}))

    def shards_where(self, *, format: str | None = None, config: str | None = None,
                     split: str | None = None) -> list[ShardEntry]:
        return [s for s in self.shards if (format is None or s.format == format)
                and (config is None or s.config == config) and (split is None or s.split == split)]

    def parquet_configs(self) -> list[str]:
        """The Parquet configs in this build, renders first."""
        names = {s.config for s in self.shards if s.format == "parquet"} | set(self.features)
        return sorted(names, key=lambda n: (n != RENDERS_CONFIG, n != GARMENTS_CONFIG, n))

    def features_of(self, config: str):
        """The datasets features of a Parquet config as the build wrote them (None for an older manifest)."""
        from .schema import features_from

        pairs = self.features.get(config)
        return features_from(pairs) if pairs else None

    def samples_of(self, split: str) -> list[dict]:
        return [s for s in self.samples if s["split"] == split]

    def splits_present(self) -> list[str]:
        return [s for s in SPLITS if any(x["split"] == s for x in self.samples)]

    # ------------------------------------------------------------------------------------------- I/O
    def to_dict(self) -> dict:
        return {
            "format": self.format, "kind": self.kind, "builder_version": self.builder_version,
            "fingerprint": self.fingerprint, "source": self.source, "parameters": self.parameters,
            "counts": self.counts, "splits": self.splits, "features": self.features, "provenance": self.provenance,
            "shards": [s.to_dict() for s in self.shards], "samples": self.samples, "rejected": self.rejected,
            "ignored": self.ignored, "scan": self.scan, "card_sha256": self.card_sha256,
        }

    def document(self) -> dict:
        """The manifest exactly as its JSON file reads back (tuples become lists): what cards are rendered from, so
        a card made right after a build equals one made from the file later."""
        return json.loads(json.dumps(self.to_dict(), sort_keys=True))

    @classmethod
    def from_dict(cls, doc: object, where: str = MANIFEST) -> "Manifest":
        if not isinstance(doc, dict):
            raise ManifestError(f"{where}: a manifest is a JSON object, this is a {type(doc).__name__}")
        fmt = doc.get("format")
        if fmt not in READABLE_FORMATS:
            raise ManifestError(f"{where}: format {fmt!r} is not a synfashion build manifest "
                                f"(expected one of {', '.join(READABLE_FORMATS)})")
        for key, kind in (("samples", list), ("shards", list), ("parameters", dict)):
            if not isinstance(doc.get(key), kind):
                raise ManifestError(f"{where}: needs {key!r} ({kind.__name__}); "
                                    + ("missing" if key not in doc else f"got {type(doc[key]).__name__}"))
        kind = doc.get("kind", "synfashion")
        if kind not in KINDS:
            raise ManifestError(f"{where}: kind {kind!r} is not one of {', '.join(KINDS)}")
        formats = doc["parameters"].get("formats", list(SHARD_FORMATS))
        if not isinstance(formats, list) or not set(formats) <= set(SHARD_FORMATS):
            raise ManifestError(f"{where}: parameters.formats must list parquet and/or webdataset, got {formats!r}")
        shards = [ShardEntry.from_dict(s, where) for s in doc["shards"]]
        samples = [_check_sample(s, i, where) for i, s in enumerate(doc["samples"])]
        keys = Counter(s["key"] for s in samples)
        twice = [k for k, n in keys.items() if n > 1]
        if twice:
            raise ManifestError(f"{where}: sample key {twice[0]!r} appears {keys[twice[0]]} times")
        paths = Counter(s.path for s in shards)
        twice = [p for p, n in paths.items() if n > 1]
        if twice:
            raise ManifestError(f"{where}: shard {twice[0]!r} is listed {paths[twice[0]]} times")
        optional = {"counts": dict, "source": dict, "splits": dict, "features": dict, "provenance": dict,
                    "rejected": list, "ignored": list, "scan": dict}
        values = {}
        for key, want in optional.items():
            value = doc.get(key, want())
            if not isinstance(value, want):
                raise ManifestError(f"{where}: {key!r} must be a {want.__name__}, got {type(value).__name__}")
            values[key] = value
        for config, pairs in values["features"].items():
            if not isinstance(pairs, list) or not all(
                    isinstance(p, list) and len(p) == 2 and isinstance(p[0], str) and isinstance(p[1], dict)
                    for p in pairs):
                raise ManifestError(f"{where}: features.{config} must be a list of [column, spec] pairs")
        return cls(samples=samples, shards=shards, kind=kind, fingerprint=str(doc.get("fingerprint", "")),
                   builder_version=str(doc.get("builder_version", "")), card_sha256=doc.get("card_sha256"),
                   format=fmt, parameters=doc["parameters"], **values)

    @classmethod
    def read(cls, folder_or_file: str | Path) -> "Manifest":
        """The manifest of a built folder (or a manifest.json path), validated; `ManifestError` names the file."""
        path = Path(folder_or_file)
        if not path.exists():
            raise ManifestError(f"{path}: no such folder")
        if path.is_dir():
            if not (path / MANIFEST).is_file():
                if (path / _BUILD_STATE).is_dir():
                    raise ManifestError(f"{path} holds an interrupted build (no {MANIFEST} yet): run the same build "
                                        "command again to finish it")
                raise ManifestError(f"{path} holds no {MANIFEST}: not a folder written by `synfashion build` or "
                                    "`r2r translate-dataset`")
            path = path / MANIFEST
        if not path.is_file():
            raise ManifestError(f"{path} is not a file")
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except UnicodeDecodeError as e:
            raise ManifestError(f"{path}: not UTF-8 text ({e.reason})") from None
        except json.JSONDecodeError as e:
            raise ManifestError(f"{path}: not valid JSON ({e})") from None
        return cls.from_dict(doc, str(path))

    def write(self, folder: str | Path, *, durable: bool = False) -> Path:
        """Atomically, on one line (10k samples stay quick to write and parse)."""
        path = Path(folder) / MANIFEST
        write_json_atomic(path, self.to_dict(), indent=None, durable=durable)
        return path
