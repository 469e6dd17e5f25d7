"""`synfashion build`: release folder -> validated records -> leak-free splits -> planned shards -> built folder.

The release's front end of the build core (`core.py`): it scans, assigns splits, plans shards and reads the image
bytes from the release files (`ReleaseFiles`, which proves each file is the one the scan hashed); the core writes
the outputs, the card and the manifest. Deterministic, atomic per file, resumable (`state.py`), one build per
output folder at a time (`storage.folder_lock`).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from concurrent.futures import Executor
from dataclasses import dataclass, field
from pathlib import Path

from .. import __version__
from ..cliutil import comma_text, comma_tuple, format_size, option, parse_size
from ..manifest import MANIFEST, Manifest
from ..parallel import worker_pool
from ..release.imagecheck import ImageRejected
from ..release.scan import ReleaseLayoutError, Rejected, ScanConfig, ScanResult, file_stamp, open_regular_file, scan_release
from ..release.scan_cache import load_scan_cache, save_scan_cache
from ..schema import infer_extra_features, release_layout
from ..settings import differences, summary
from ..splits import SplitAssignment, SplitConfig, assign_splits
from ..fs.space import disk_full_as_error, ensure_space
from ..fs.locks import folder_lock
from ..writers import DEFAULT_ROW_GROUP_SIZE
from .core import FORMATS, OutputSettings, PlannedBuild, assemble_manifest, finalize, write_outputs
from .output_jobs import SourceChangedError
from .plan import ShardPlan, plan_shards
from .state import STATE_DIR, BuildError, BuildState, check_apart, fingerprint_of

SCAN_CACHE = "scan-cache.json"
DEFAULT_SHARD_SIZE = 256 * 2**20  # bytes of image data per shard

__all__ = ["DEFAULT_SHARD_SIZE", "FORMATS", "MANIFEST", "STATE_DIR", "BuildConfig", "BuildError", "BuildResult",
           "RejectedInputsError", "ReleaseFiles", "build_dataset"]


@dataclass(frozen=True)
class BuildConfig:
    formats: tuple[str, ...] = option(
        "--formats", default=FORMATS, parse=comma_tuple, show=comma_text,
        help="comma-separated: parquet (Hub layout, data/), webdataset (tars, webdataset/); default both")
    shard_size: int = option("--shard-size", default=DEFAULT_SHARD_SIZE, parse=parse_size, show=format_size,
                             help="image bytes per shard, e.g. 256MB")
    row_group_size: int = DEFAULT_ROW_GROUP_SIZE
    split: SplitConfig = field(default_factory=SplitConfig)
    scan: ScanConfig = field(default_factory=ScanConfig)
    allow_rejected: bool = option("--allow-rejected", default=False,
                                  help="build without rejected inputs (listed in manifest)")
    garments: bool = option(
        "--no-garments", default=True,
        help="skip the garments config (one row per garment, 4 view columns: a second copy of the bytes)")
    overwrite: bool = option("--overwrite", default=False, help="replace a finished build of other inputs in OUT")
    # fsync every output before its rename. Off by default, like datasets and webdataset: the rename alone makes a
    # killed build safe, and a rerun re-hashes what it reuses, so a power cut costs a rewrite, never a bad shard.
    # Not a parameter of the output (the bytes are the same), so not in the fingerprint.
    fsync: bool = option("--fsync", default=False,
                         help="fsync every output before its rename, so a finished build survives a power cut "
                              "(slower; without it a rerun after a power cut re-hashes and rewrites whatever was "
                              "lost)")

    def __post_init__(self) -> None:
        self.output_settings()  # validates formats and row group size

    def output_settings(self) -> OutputSettings:
        return OutputSettings(formats=tuple(self.formats), row_group_size=self.row_group_size, durable=self.fsync)

    def parameters(self) -> dict:
        """What determines the output bytes (recorded in the manifest and fingerprinted)."""
        return {
            "formats": list(self.formats),
            "shard_size": self.shard_size,
            "row_group_size": self.row_group_size,
            "split_fractions": self.split.fractions,
            "split_salt": self.split.salt,
            "split_tie_textures": self.split.tie_textures,
            "split_stratify": self.split.stratify,
            "pattern": self.scan.pattern,
            "max_pixels": self.scan.max_pixels,
            "max_bytes": self.scan.max_bytes,
            "follow_outside_links": self.scan.follow_outside_links,
            "validate": self.scan.validate,
            "garments": self.garments,
            "allow_rejected": self.allow_rejected,
        }


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
    manifest: Manifest
    shards_written: int  # shard files (each format and config counts) written by this run
    shards_reused: int  # shard files an interrupted or finished earlier run left, re-hashed and kept


@dataclass(frozen=True)
class ReleaseFiles:
    """The release's bytes, for the shard writers: each file is read again (from the page cache) but not hashed
    again; its (size, mtime_ns) from the scan must still hold, the rule make and rsync use. `stamps` covers the
    records of one shard, so a job carries only its own; None (a hand-made scan) falls back to the sha256."""

    root: str
    stamps: dict[str, tuple[int, int] | None]

    def read(self, meta: dict, ref: str) -> bytes:
        path = Path(self.root, meta["source_path"])
        stamp = self.stamps.get(meta["source_path"])
        try:  # a regular file only (a FIFO swapped in since the scan cannot block), and no more than it should hold
            fd, st = open_regular_file(path)
            with open(fd, "rb") as f:
                now = file_stamp(st)
                data = f.read(meta["num_bytes"] + 1)
        except (OSError, ImageRejected) as e:
            raise SourceChangedError(f"{path}: cannot read it any more ({e}); run build again") from None
        if stamp is None:
            import hashlib

            unchanged = hashlib.sha256(data).hexdigest() == meta["sha256"]
        else:
            unchanged = now == tuple(stamp) and len(data) == stamp[0]
        if not unchanged:
            raise SourceChangedError(
                f"{path} changed while the build was running (it differs from the scan); run build again"
            )
        return data

    def name(self, meta: dict, ref: str) -> str:
        return meta["source_path"].rsplit("/", 1)[-1]


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
    with folder_lock(out, "synfashion build"), worker_pool(workers) as pool:  # workers forked once: scan + writes
        return _build(source, out, config, workers, progress, scan, pool)


def _splits(scan: ScanResult, config: SplitConfig) -> SplitAssignment:
    project_textures: dict[str, set[str]] = defaultdict(set)
    images_per_project: Counter = Counter()
    for r in scan.records:
        project_textures[r.project_id].add(r.texture)
        images_per_project[r.project_id] += 1
    return assign_splits(project_textures, config, group_sizes=images_per_project)


def _build(source: Path, out: Path, config: BuildConfig, workers: int, progress: bool, scan: ScanResult | None,
           pool: Executor | None) -> BuildResult:
    from cards.dataset_card import render_dataset_card  # cards imports nothing of synfashion: no cycle

    from ..taxonomy import DISPLAY_NAMES

    if not source.is_dir():
        raise ReleaseLayoutError(f"release folder {source} does not exist or is not a folder")
    check_apart(out, {"release folder": source})  # an output inside the release would be scanned as part of it
    BuildState(out, "", kind="synfashion").check_kind()  # another command's folder or a user's: refused before the scan
    cache_path = out / STATE_DIR / SCAN_CACHE
    if scan is None:  # a resumed build reads only the files that changed since its first scan
        cached = load_scan_cache(cache_path, config.scan) if (out / STATE_DIR / "fingerprint").is_file() else {}
        scan = scan_release(source, config.scan, workers=workers, progress=progress, cache=cached, pool=pool)
    if scan.rejected and not config.allow_rejected:
        raise RejectedInputsError(scan.rejected, source)
    if not scan.records:
        raise BuildError(scan.no_records_message())

    assignment = _splits(scan, config.split)
    records = sorted((r.with_split(assignment.split_of(r.project_id)) for r in scan.records), key=lambda r: r.key)
    samples = [r.metadata() for r in records]
    layout = release_layout(infer_extra_features(samples), garments=config.garments)
    build = PlannedBuild(layout, samples, plan_shards(samples, config.shard_size), config.output_settings())
    fingerprint = fingerprint_of({"builder": "synfashion", "builder_version": __version__,
                                  "parameters": config.parameters(), **build.identity()})
    state = BuildState(out, fingerprint, kind="synfashion", durable=config.fsync)

    def describe_difference(old: Manifest | None) -> str | None:
        previous = old.parameters if old is not None else state.stored_settings()
        diffs = differences(previous, config.parameters()) if previous is not None else []
        if diffs:
            return f"settings as built -> now: {summary(diffs)}"
        return "the same settings; the release's files (or synfashion's version) differ" if previous else None

    state.prepare(build.all_outputs(), overwrite=config.overwrite, describe_difference=describe_difference,
                  settings=config.parameters())
    save_scan_cache(cache_path, scan.checked, config.scan, durable=config.fsync)

    def release_files(plan: ShardPlan) -> ReleaseFiles:
        paths = [build.by_key[k]["source_path"] for k in plan.keys]
        return ReleaseFiles(str(source), {p: scan.stamps.get(p) for p in paths})

    # each output holds every image once, plus headers (a tar member's header and padding: about 2 KiB per file)
    needed = (sum(s["num_bytes"] for s in samples) + 2048 * len(samples)) * len(build.outputs(build.plans[0]))
    with disk_full_as_error(out, needed, "the shards"):
        ensure_space(out, needed - _bytes_in_place(state, build), "the shards")
        written, reused = write_outputs(build, state, release_files, workers=workers, progress=progress, pool=pool)
        entries = [written[rel] for rel in build.all_outputs()]
        manifest = assemble_manifest(
            build, entries, kind="synfashion", fingerprint=fingerprint, parameters=config.parameters(),
            source={"name": source.name, "sidecar": Path(scan.sidecar).name if scan.sidecar else None},
            splits={"groups": len(assignment.groups), "notes": assignment.notes},
            rejected=[r.as_dict() for r in scan.rejected], ignored=scan.ignored,
            scan={"notes": scan.notes, "candidates": scan.candidates, "outside_links": scan.outside_links},
        )
        manifest = finalize(state, manifest, render_dataset_card(manifest.document(), display_names=DISPLAY_NAMES))
    return BuildResult(out=out, manifest=manifest, shards_written=len(entries) - reused, shards_reused=reused)


def _bytes_in_place(state: BuildState, build: PlannedBuild) -> int:
    """Bytes of outputs an earlier run left (a resumed build does not need room for them again)."""
    known = state.known_entries()
    return sum(known[rel].get("num_bytes", 0) for rel in build.all_outputs() if rel in known)
