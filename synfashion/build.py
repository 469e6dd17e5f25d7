"""`synfashion build`: release folder -> validated records -> leak-free splits -> planned shards -> folder.

The output folder is Hub-ready: Parquet shards under data/ (two configs), WebDataset tars under webdataset/,
README.md (dataset card) and manifest.json. The build is deterministic, atomic per file and resumable: the plan
is fingerprinted in a state folder, a rerun after a kill skips shards already on disk and yields byte-identical
output. The manifest is written last; its presence means the build completed.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import os
import shutil
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path

from . import __version__
from .atomic import remove_stale_temps, write_bytes_atomic, write_json_atomic
from .parallel import parallel_map
from .plan import plan_shards
from .scan import Rejected, ScanConfig, ScanResult, file_stamp, scan_release
from .schema import (
    GARMENTS_CONFIG, RENDERS_CONFIG, SPLITS, RenderRecord, garments_features, make_key, renders_features,
    renders_row,
)
from .splits import SplitAssignment, SplitConfig, assign_splits
from .taxonomy import CATEGORIES, VIEWS
from .writers import DEFAULT_ROW_GROUP_SIZE, ParquetShardWriter, WdsShardWriter

FORMATS = ("parquet", "webdataset")
STATE_DIR = ".synfashion-build"
MANIFEST = "manifest.json"
DEFAULT_SHARD_SIZE = 256 * 2**20  # bytes of image data per shard


@dataclass(frozen=True)
class BuildConfig:
    formats: tuple[str, ...] = FORMATS
    shard_size: int = DEFAULT_SHARD_SIZE
    row_group_size: int = DEFAULT_ROW_GROUP_SIZE
    split: SplitConfig = field(default_factory=SplitConfig)
    scan: ScanConfig = field(default_factory=ScanConfig)
    allow_rejected: bool = False
    garments: bool = True
    overwrite: bool = False
    # fsync every output before its rename. Off by default, like datasets and webdataset: the rename alone makes a
    # killed build safe, and a rerun re-hashes what it reuses, so a power cut costs a rewrite, never a bad shard.
    # Not a parameter of the output (the bytes are the same), so not in the fingerprint.
    fsync: bool = False

    def __post_init__(self) -> None:
        bad = set(self.formats) - set(FORMATS)
        if bad or not self.formats:
            raise ValueError(f"unknown format(s) {sorted(bad)}; choose from {', '.join(FORMATS)}")
        if self.row_group_size <= 0:
            raise ValueError("row group size must be positive")

    def parameters(self) -> dict:
        """What determines the output bytes (recorded in the manifest and fingerprinted)."""
        return {
            "formats": list(self.formats),
            "shard_size": self.shard_size,
            "row_group_size": self.row_group_size,
            "split_fractions": self.split.fractions,
            "split_salt": self.split.salt,
            "split_tie_textures": self.split.tie_textures,
            "pattern": self.scan.pattern,
            "max_pixels": self.scan.max_pixels,
            "validate": self.scan.validate,
            "garments": self.garments,
            "allow_rejected": self.allow_rejected,
        }


class BuildError(RuntimeError):
    pass


class RejectedInputsError(BuildError):
    def __init__(self, rejected: list[Rejected], root: Path):
        self.rejected = rejected
        lines = [f"  {r.source_path}: {r.reason}: {r.detail}" for r in rejected[:20]]
        more = f"\n  ... and {len(rejected) - 20} more" if len(rejected) > 20 else ""
        super().__init__(
            f"{len(rejected)} input file(s) under {root} cannot be packaged:\n" + "\n".join(lines) + more
            + "\nFix or remove them, or pass --allow-rejected to build without them (each is listed in manifest.json)."
        )


@dataclass(frozen=True)
class BuildResult:
    out: Path
    manifest: dict
    shards_written: int
    shards_reused: int


# --------------------------------------------------------------------------------------------------- output jobs
@dataclass(frozen=True)
class _OutputJob:
    """One output file of one planned shard (renders Parquet, garments Parquet or WebDataset tar).

    A shard's three outputs are separate jobs, so workers balance whatever the shard count: a 2k-image release is
    one train shard, and three jobs keep two cores busy where one job per shard could not. Each job reads its
    sources from the page cache (cheap) and never re-hashes them: the scan hashed the bytes and `stamps` (size,
    mtime_ns) proves the file is the one it hashed, as make and rsync decide.
    """

    root: str
    out: str
    name: str  # RENDERS_CONFIG | GARMENTS_CONFIG | "webdataset"
    rel: str  # path under out
    split: str
    records: tuple[dict, ...]  # metadata of the shard's records, in write order
    stamps: tuple[tuple[int, int] | None, ...]  # per record: (size, mtime_ns) at scan time; None: compare sha256
    row_group_size: int
    durable: bool
    known: dict | None  # this output's manifest entry from an earlier run, if one recorded it

    def entry(self, sha256: str, num_bytes: int) -> dict:
        garments = self.name == GARMENTS_CONFIG
        return {
            "path": self.rel, "format": "webdataset" if self.name == "webdataset" else "parquet",
            "config": GARMENTS_CONFIG if garments else RENDERS_CONFIG, "split": self.split,
            "num_samples": len({_garment_key(m) for m in self.records}) if garments else len(self.records),
            "num_bytes": num_bytes, "sha256": sha256,
        }


def _garment_key(meta: dict) -> str:
    return make_key(meta["category"], meta["project"], meta["texture"])


def _read_unchanged(root: str, meta: dict, stamp: tuple[int, int] | None) -> bytes:
    path = Path(root, meta["source_path"])
    try:
        with open(path, "rb") as f:
            now = file_stamp(os.fstat(f.fileno()))
            data = f.read()
    except OSError as e:
        raise BuildError(f"{path}: cannot read it any more ({e}); run build again") from None
    if stamp is None:
        unchanged = hashlib.sha256(data).hexdigest() == meta["sha256"]
    else:
        unchanged = now == tuple(stamp) and len(data) == stamp[0]
    if not unchanged:
        raise BuildError(f"{path} changed while the build was running (it differs from the scan); run build again")
    return data


def _garment_row(garment: RenderRecord, views: dict[str, tuple[dict, bytes]]) -> dict:
    """The garments-config row of one textured garment (`garment`: any of its records) from its views' bytes."""
    row = {"key": garment.garment_id, "category": CATEGORIES.index(garment.category), "project": garment.project,
           "texture": garment.texture}
    for view in VIEWS:
        meta, data = views.get(view, (None, None))
        row[view] = {"bytes": data, "path": meta["source_path"].rsplit("/", 1)[-1]} if meta else None
        row[f"{view}_sha256"] = meta["sha256"] if meta else None
    return row


def _reusable(job: _OutputJob) -> dict | None:
    """The entry of an output an earlier run finished, if its bytes still hash to what that run recorded.

    Outputs are not fsynced by default, so after a power cut a file may exist under its final name with lost
    blocks; re-hashing it (a read from the page cache) is what makes reusing it safe.
    """
    path = Path(job.out, job.rel)
    if job.known is None or not path.is_file() or path.stat().st_size != job.known.get("num_bytes"):
        return None
    with open(path, "rb") as f:
        sha = hashlib.file_digest(f, "sha256").hexdigest()
    return job.entry(sha, job.known["num_bytes"]) if sha == job.known.get("sha256") else None


def _done_record(out: Path, rel: str) -> Path:
    return out / STATE_DIR / "done" / (rel.replace("/", "__") + ".json")


def _run_job(job: _OutputJob) -> tuple[dict, bool]:
    """Write the output (unless an earlier run left it intact); return its manifest entry and whether it was reused."""
    reused = _reusable(job)
    if reused is not None:
        return reused, True
    out = Path(job.out)
    records = [RenderRecord.from_metadata(meta) for meta in job.records]
    items = zip(records, job.records, job.stamps)
    if job.name == "webdataset":
        writer: ParquetShardWriter | WdsShardWriter = WdsShardWriter(out / job.rel, durable=job.durable)
        with writer:
            for record, meta, stamp in items:
                writer.write(record.key, record.extension, _read_unchanged(job.root, meta, stamp), meta)
    elif job.name == RENDERS_CONFIG:
        writer = ParquetShardWriter(out / job.rel, renders_features(), row_group_size=job.row_group_size,
                                    durable=job.durable)
        with writer:
            for record, meta, stamp in items:
                writer.write(renders_row(record, _read_unchanged(job.root, meta, stamp)))
    else:
        writer = ParquetShardWriter(out / job.rel, garments_features(), row_group_size=job.row_group_size,
                                    durable=job.durable)
        with writer:
            # records are sorted by key, so a garment's views are adjacent (plan_shards never splits a garment)
            for _, garment in itertools.groupby(items, key=lambda item: item[0].garment_id):
                garment = list(garment)
                views = {r.view: (meta, _read_unchanged(job.root, meta, stamp)) for r, meta, stamp in garment}
                writer.write(_garment_row(garment[0][0], views))
    entry = job.entry(writer.sha256, writer.num_bytes)
    write_json_atomic(_done_record(out, job.rel), entry, durable=job.durable)
    return entry, False


# --------------------------------------------------------------------------------------------------- the build
def _counts(records: list[RenderRecord]) -> dict:
    per_split = Counter(r.split for r in records)
    return {
        "total": len(records),
        "per_split": {s: per_split.get(s, 0) for s in SPLITS},
        "per_split_category": {
            s: dict(sorted(Counter(r.category for r in records if r.split == s).items())) for s in SPLITS
        },
        "per_split_view": {s: dict(sorted(Counter(r.view for r in records if r.split == s).items())) for s in SPLITS},
        "projects": len({r.project_id for r in records}),
        "textures": len({r.texture for r in records}),
        "garments": len({r.garment_id for r in records}),
    }


def _known_entries(out: Path, fingerprint: str) -> dict[str, dict]:
    """rel path -> manifest entry of every output an earlier run of the same plan finished (re-hashed before reuse)."""
    known: dict[str, dict] = {}
    with contextlib.suppress(OSError, ValueError):
        manifest = json.loads((out / MANIFEST).read_text())
        if manifest.get("fingerprint") == fingerprint:
            known.update({e["path"]: e for e in manifest["shards"]})
    for record in sorted((out / STATE_DIR / "done").glob("*.json")):
        with contextlib.suppress(OSError, ValueError):  # a torn record (power cut): the output is written again
            entry = json.loads(record.read_text())
            known[entry["path"]] = entry
    return known


def _prepare_out(out: Path, fingerprint: str, overwrite: bool, durable: bool) -> None:
    """Decide whether `out` is fresh, a resumable partial build of the same plan, or something to refuse."""
    state = out / STATE_DIR / "fingerprint"
    manifest = out / MANIFEST
    ours = [out / "data", out / "webdataset", out / "README.md", manifest, out / STATE_DIR]
    if out.exists() and any(out.iterdir()):
        if state.exists() and state.read_text().strip() == fingerprint:
            remove_stale_temps(out)
            return  # resume
        if manifest.exists() and json.loads(manifest.read_text()).get("fingerprint") == fingerprint:
            return  # already built from the same inputs: shards are reused, card and manifest rewritten identically
        if not (state.exists() or manifest.exists()):
            raise BuildError(f"output folder {out} is not empty and holds no synfashion build; choose another folder")
        if manifest.exists() and not overwrite:
            raise BuildError(
                f"{out} holds a finished build of different inputs or parameters; pass --overwrite to replace it"
            )
        for p in ours:  # a different plan: clear what an earlier build of ours left
            if p.is_dir():
                shutil.rmtree(p)
            elif p.exists():
                p.unlink()
    write_bytes_atomic(state, fingerprint.encode(), durable=durable)


def build_dataset(
    source: str | Path,
    out: str | Path,
    config: BuildConfig = BuildConfig(),
    *,
    workers: int = 1,
    progress: bool = True,
    scan: ScanResult | None = None,
) -> BuildResult:
    from cards.dataset_card import render_synfashion_card  # cards depends on synfashion's schema, not vice versa

    source, out = Path(source), Path(out)
    scan = scan or scan_release(source, config.scan, workers=workers, progress=progress)
    if scan.rejected and not config.allow_rejected:
        raise RejectedInputsError(scan.rejected, source)
    if not scan.records:
        raise BuildError(f"no images found under {source}: expected <category>/<image files>")

    project_textures: dict[str, set[str]] = defaultdict(set)
    images_per_project: Counter = Counter()
    for r in scan.records:
        project_textures[r.project_id].add(r.texture)
        images_per_project[r.project_id] += 1
    assignment: SplitAssignment = assign_splits(project_textures, config.split, group_sizes=images_per_project)
    records = sorted((r.with_split(assignment.split_of(r.project_id)) for r in scan.records), key=lambda r: r.key)
    plans = plan_shards(records, config.shard_size)

    samples = [r.metadata() for r in records]
    identity = {
        "builder": "synfashion", "builder_version": __version__, "parameters": config.parameters(),
        "samples": samples, "plans": [asdict(p) for p in plans],
    }
    fingerprint = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()
    _prepare_out(out, fingerprint, config.overwrite, config.fsync)

    by_key = {s["key"]: s for s in samples}
    known = _known_entries(out, fingerprint)
    jobs = [
        _OutputJob(str(source), str(out), name, rel, p.split, tuple(by_key[k] for k in p.keys),
                   tuple(scan.stamps.get(by_key[k]["source_path"]) for k in p.keys), config.row_group_size,
                   config.fsync, known.get(rel))
        for p in plans for name, rel in p.paths(config.formats, garments=config.garments).items()
    ]
    # largest first, so the last job to start is a small one; of a shard's three, the tar first: its per-member
    # headers make it the slowest (results are put back in plan order below)
    order = sorted(range(len(jobs)), key=lambda i: (-sum(s["num_bytes"] for s in jobs[i].records),
                                                    jobs[i].name != "webdataset"))
    results = dict(zip(order, parallel_map(
        _run_job, [jobs[i] for i in order], workers=workers, chunksize=1, description="writing shards",
        progress=progress, weights=[sum(s["num_bytes"] for s in jobs[i].records) for i in order],
    )))
    shard_entries = [results[i][0] for i in range(len(jobs))]
    reused = sum(results[i][1] for i in range(len(jobs)))
    shard_of = {  # where each sample is: format -> shard path
        k: {("parquet" if n == RENDERS_CONFIG else n): rel
            for n, rel in p.paths(config.formats, garments=config.garments).items() if n != GARMENTS_CONFIG}
        for p in plans for k in p.keys
    }

    counts = _counts(records)
    manifest = {
        "format": "synfashion-build/1",
        "builder_version": __version__,
        "fingerprint": fingerprint,
        "source": {"name": source.name, "sidecar": Path(scan.sidecar).name if scan.sidecar else None},
        "parameters": config.parameters(),
        "counts": counts,
        "splits": {"groups": len(assignment.groups), "notes": assignment.notes},
        "shards": shard_entries,
        "samples": [{**s, "shards": shard_of.get(s["key"], {})} for s in samples],
        "rejected": [r.as_dict() for r in scan.rejected],
        "ignored": scan.ignored,
    }
    card = render_synfashion_card(manifest)
    write_bytes_atomic(out / "README.md", card.encode(), durable=config.fsync)
    # one line: 10k samples stay quick to write and parse. Written last: its presence means the build completed
    write_json_atomic(out / MANIFEST, manifest, indent=None, durable=config.fsync)
    shutil.rmtree(out / STATE_DIR, ignore_errors=True)
    return BuildResult(out=out, manifest=manifest, shards_written=len(jobs) - reused, shards_reused=reused)
