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
import shutil
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path

from . import __version__
from .atomic import remove_stale_temps, write_bytes_atomic, write_json_atomic
from .parallel import parallel_map
from .plan import ShardPlan, plan_shards
from .scan import Rejected, ScanConfig, ScanResult, scan_release
from .schema import (
    GARMENTS_CONFIG, RENDERS_CONFIG, SPLITS, RenderRecord, garments_features, renders_features, renders_row,
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


# --------------------------------------------------------------------------------------------------- shard jobs
@dataclass(frozen=True)
class _ShardJob:
    root: str
    out: str
    plan: ShardPlan
    records: tuple[dict, ...]  # metadata of the shard's records, in write order
    paths: dict[str, str]  # output name (renders | garments | webdataset) -> relative path
    row_group_size: int


def _read_checked(root: str, meta: dict) -> bytes:
    path = Path(root, meta["source_path"])
    data = path.read_bytes()
    if hashlib.sha256(data).hexdigest() != meta["sha256"]:
        raise BuildError(f"{path} changed while the build was running (sha256 differs from the scan); run build again")
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


def _run_job(job: _ShardJob) -> list[dict]:
    """Write the shard's missing files from one read of each source; return their manifest entries."""
    out = Path(job.out)
    todo = {name: rel for name, rel in job.paths.items() if not (out / rel).exists()}
    writers: dict[str, ParquetShardWriter | WdsShardWriter] = {}
    if RENDERS_CONFIG in todo:
        writers[RENDERS_CONFIG] = ParquetShardWriter(out / todo[RENDERS_CONFIG], renders_features(),
                                                     row_group_size=job.row_group_size)
    if GARMENTS_CONFIG in todo:
        writers[GARMENTS_CONFIG] = ParquetShardWriter(out / todo[GARMENTS_CONFIG], garments_features(),
                                                      row_group_size=job.row_group_size)
    if "webdataset" in todo:
        writers["webdataset"] = WdsShardWriter(out / todo["webdataset"])
    records = [RenderRecord.from_metadata(meta) for meta in job.records]
    # records are sorted by key, so a garment's views are adjacent (plan_shards never splits a garment)
    garments = [list(g) for _, g in itertools.groupby(zip(records, job.records), key=lambda rm: rm[0].garment_id)]
    if writers:
        with contextlib.ExitStack() as stack:
            for w in writers.values():
                stack.enter_context(w)
            for garment in garments:
                views: dict[str, tuple[dict, bytes]] = {}
                for record, meta in garment:
                    data = _read_checked(job.root, meta)
                    if RENDERS_CONFIG in writers:
                        writers[RENDERS_CONFIG].write(renders_row(record, data))
                    if "webdataset" in writers:
                        writers["webdataset"].write(record.key, record.extension, data, meta)
                    views[record.view] = (meta, data)
                if GARMENTS_CONFIG in writers:
                    writers[GARMENTS_CONFIG].write(_garment_row(garment[0][0], views))
    entries = []
    for name, rel in job.paths.items():
        if name in writers:
            sha, nbytes = writers[name].sha256, writers[name].num_bytes
        else:  # written by an earlier, interrupted run
            data = (out / rel).read_bytes()
            sha, nbytes = hashlib.sha256(data).hexdigest(), len(data)
        entries.append({
            "path": rel, "format": "webdataset" if name == "webdataset" else "parquet",
            "config": GARMENTS_CONFIG if name == GARMENTS_CONFIG else RENDERS_CONFIG, "split": job.plan.split,
            "num_samples": len(garments) if name == GARMENTS_CONFIG else len(job.records), "num_bytes": nbytes,
            "sha256": sha,
        })
    return entries


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


def _prepare_out(out: Path, fingerprint: str, overwrite: bool) -> None:
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
    write_bytes_atomic(state, fingerprint.encode())


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
    _prepare_out(out, fingerprint, config.overwrite)

    by_key = {s["key"]: s for s in samples}
    jobs = [
        _ShardJob(str(source), str(out), p, tuple(by_key[k] for k in p.keys),
                  p.paths(config.formats, garments=config.garments), config.row_group_size)
        for p in plans
    ]
    existing = sum(all((out / rel).exists() for rel in j.paths.values()) for j in jobs)
    weights = [sum(s["num_bytes"] for s in j.records) for j in jobs]
    shard_entries = [
        e for entries in parallel_map(
            _run_job, jobs, workers=workers, chunksize=1, description="writing shards", progress=progress,
            weights=weights,
        ) for e in entries
    ]
    shard_of = {  # where each sample is: format -> shard path
        k: {("parquet" if n == RENDERS_CONFIG else n): rel for n, rel in j.paths.items() if n != GARMENTS_CONFIG}
        for j in jobs for k in j.plan.keys
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
    write_bytes_atomic(out / "README.md", card.encode())
    write_json_atomic(out / MANIFEST, manifest, indent=None)  # one line: 10k samples stay quick to write and parse
    shutil.rmtree(out / STATE_DIR, ignore_errors=True)
    return BuildResult(out=out, manifest=manifest, shards_written=len(plans) - existing, shards_reused=existing)
