"""`synfashion build`: release folder -> validated records -> leak-free splits -> planned shards -> folder.

The output folder is Hub-ready: Parquet shards under data/ (two configs), WebDataset tars under webdataset/,
README.md (dataset card) and manifest.json. The build is deterministic, atomic per file and resumable: the plan
is fingerprinted in a state folder, a rerun after a kill skips shards already on disk and yields byte-identical
output. The manifest is written last; its presence means the build completed.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import shutil
from collections import Counter, defaultdict
from concurrent.futures import Executor
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .. import __version__
from ..atomic import remove_stale_temps, write_bytes_atomic, write_json_atomic
from .output_jobs import OutputJob, SourceChangedError, run_output_job
from ..parallel import parallel_map, worker_pool
from .plan import plan_shards
from ..release.scan import Rejected, ScanConfig, ScanResult, scan_release
from ..release.scan_cache import load_scan_cache, save_scan_cache
from ..schema import GARMENTS_CONFIG, RENDERS_CONFIG, SPLITS, RenderRecord
from ..splits import SplitAssignment, SplitConfig, assign_splits
from ..writers import DEFAULT_ROW_GROUP_SIZE

FORMATS = ("parquet", "webdataset")
STATE_DIR = ".synfashion-build"
SCAN_CACHE = "scan-cache.json"
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
    shards_written: int  # shard files (each format and config counts) written by this run
    shards_reused: int  # shard files an interrupted or finished earlier run left, re-hashed and kept


# --------------------------------------------------------------------------------------------------- the build
def _done_record(out: Path, rel: str) -> Path:
    return out / STATE_DIR / "done" / (rel.replace("/", "__") + ".json")


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
    source, out = Path(source), Path(out)
    with worker_pool(workers) as pool:  # forked once, for the scan and the writes
        return _build(source, out, config, workers, progress, scan, pool)


def _build(source: Path, out: Path, config: BuildConfig, workers: int, progress: bool, scan: ScanResult | None,
           pool: Executor | None) -> BuildResult:
    from cards.dataset_card import render_synfashion_card  # cards depends on synfashion's schema, not vice versa

    scan_cache = out / STATE_DIR / SCAN_CACHE
    if scan is None:  # a resumed build reads only the files that changed since its first scan
        cached = load_scan_cache(scan_cache, config.scan) if (out / STATE_DIR / "fingerprint").is_file() else {}
        scan = scan_release(source, config.scan, workers=workers, progress=progress, cache=cached, pool=pool)
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
    save_scan_cache(scan_cache, scan.checked, config.scan, durable=config.fsync)

    by_key = {s["key"]: s for s in samples}
    known = _known_entries(out, fingerprint)
    outputs = [(p, p.paths(config.formats, garments=config.garments)) for p in plans]  # name -> rel, per shard
    jobs = [
        OutputJob(str(source), str(out), name, rel, p.split, tuple(by_key[k] for k in p.keys),
                  tuple(scan.stamps.get(by_key[k]["source_path"]) for k in p.keys), config.row_group_size,
                  config.fsync, known.get(rel), str(_done_record(out, rel)))
        for p, paths in outputs for name, rel in paths.items()
    ]
    # bytes to write; of a shard's three files the tar is the slowest (a header per member), so one byte more puts
    # it first among equals
    weights = [sum(s["num_bytes"] for s in j.records) + (j.name == "webdataset") for j in jobs]
    try:
        results = list(parallel_map(
            run_output_job, jobs, workers=workers, chunksize=1, description="writing shards", progress=progress,
            weights=weights, weights_in_bytes=True, largest_first=True, pool=pool,
        ))
    except SourceChangedError as e:
        raise BuildError(str(e)) from None
    shard_entries = [entry for entry, _ in results]
    reused = sum(was_reused for _, was_reused in results)
    shard_of = {}  # where each sample is: format -> shard path
    for p, paths in outputs:
        where = {("parquet" if n == RENDERS_CONFIG else n): rel for n, rel in paths.items() if n != GARMENTS_CONFIG}
        shard_of.update(dict.fromkeys(p.keys, where))

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
