"""The build core every dataset goes through: planned shards + a byte source + schemas -> outputs -> manifest, card.

Two front ends feed it: `release.py` (a scanned release folder) and r2r's translate-dataset (bytes a translation
staged, see `staging.py`). Both hand it records that already carry their split, a `Layout` (which Parquet configs,
with which columns), and a `ByteSource`; the core writes every output file of every shard through the shard
writers as an independent job (any worker count, any order, any subset of shards: a rank of a distributed run
writes its own), records each in the build state, and finally writes the card and the manifest, last, whose
presence means "complete". It never scans, splits or translates anything.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field

from .. import __version__
from ..fs.atomic import write_bytes_atomic
from ..manifest import Manifest, ShardEntry, compute_counts
from ..parallel import parallel_map
from ..schema import RENDERS_CONFIG, Layout
from .output_jobs import WEBDATASET, ByteSource, OutputJob, SourceChangedError, run_output_job
from .plan import ShardPlan
from .state import BuildError, BuildState

FORMATS = ("parquet", "webdataset")


@dataclass(frozen=True)
class OutputSettings:
    """How outputs are written (the formats are part of the output's identity, the rest only of its speed)."""

    formats: tuple[str, ...] = FORMATS
    row_group_size: int = 100
    durable: bool = False  # fsync every output before its rename

    def __post_init__(self) -> None:
        bad = set(self.formats) - set(FORMATS)
        if bad or not self.formats:
            raise ValueError(f"unknown format(s) {sorted(bad)}; choose from {', '.join(FORMATS)}")
        if self.row_group_size <= 0:
            raise ValueError("row group size must be positive")


@dataclass(frozen=True)
class PlannedBuild:
    """What the core writes: the records (with their split), the shard plan, and how each shard is made."""

    layout: Layout
    samples: Sequence[dict]  # metadata of every record, sorted by key
    plans: Sequence[ShardPlan]
    settings: OutputSettings
    by_key: dict[str, dict] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.by_key:
            object.__setattr__(self, "by_key", {s["key"]: s for s in self.samples})

    def outputs(self, plan: ShardPlan) -> dict[str, str]:
        return plan.paths(self.layout, self.settings.formats)

    def all_outputs(self) -> list[str]:
        return [rel for p in self.plans for rel in self.outputs(p).values()]

    def identity(self) -> dict:
        """What determines the bytes of every output (the caller adds its own parameters and source)."""
        return {"layout": self.layout.features(), "formats": list(self.settings.formats),
                "row_group_size": self.settings.row_group_size, "samples": list(self.samples),
                "plans": [[p.split, p.index, p.count, list(p.keys)] for p in self.plans]}


def write_outputs(
    build: PlannedBuild,
    state: BuildState,
    source_for: Callable[[ShardPlan], ByteSource],
    *,
    shards: Callable[[ShardPlan], bool] = lambda plan: True,
    workers: int = 1,
    progress: bool = True,
    pool: Executor | None = None,
    description: str = "writing shards",
) -> tuple[dict[str, dict], int]:
    """Write (or reuse) every output of the selected shards; returns (rel -> manifest entry, outputs reused)."""
    known = state.known_entries()
    jobs = []
    for plan in build.plans:
        if not shards(plan):
            continue
        records = tuple(build.by_key[k] for k in plan.keys)
        source = source_for(plan)
        for name, rel in build.outputs(plan).items():
            schema = None if name == WEBDATASET else build.layout.config(name)
            jobs.append(OutputJob(str(state.out), name, rel, plan.split, records, schema, source,
                                  build.settings.row_group_size, build.settings.durable, known.get(rel),
                                  str(state.done_record(rel))))
    # bytes to write; of a shard's files the tar is the slowest (a header per member), so one byte more puts it
    # first among equals
    weights = [sum(m["num_bytes"] for m in j.records) + (j.name == WEBDATASET) for j in jobs]
    try:
        results = list(parallel_map(
            run_output_job, jobs, workers=workers, chunksize=1, description=description, progress=progress,
            weights=weights, weights_in_bytes=True, largest_first=True, pool=pool,
        ))
    except SourceChangedError as e:
        raise BuildError(str(e)) from None
    return {j.rel: entry for j, (entry, _) in zip(jobs, results)}, sum(reused for _, reused in results)


def collect_entries(build: PlannedBuild, state: BuildState, written: dict[str, dict]) -> list[dict]:
    """Every output's entry in plan order: from this run, else from a done record another process left (a rank of
    a distributed run); an output nobody finished is an error naming it."""
    known = state.known_entries()
    entries, missing = [], []
    for rel in build.all_outputs():
        entry = written.get(rel) or known.get(rel)
        if entry is None:
            missing.append(rel)
        else:
            entries.append(entry)
    if missing:
        raise BuildError(f"{len(missing)} output(s) of {state.out} are not written yet, e.g. {missing[0]}: run the "
                         "rank(s) that own them again, then finalize")
    return entries


def sample_locations(build: PlannedBuild) -> dict[str, dict[str, str]]:
    """key -> {format: path of the shard holding it} (its renders Parquet file and its tar)."""
    where: dict[str, dict[str, str]] = {}
    for plan in build.plans:
        outputs = build.outputs(plan)
        loc = {fmt: rel for fmt, rel in (("parquet", outputs.get(RENDERS_CONFIG)), (WEBDATASET, outputs.get(WEBDATASET)))
               if rel}
        where.update(dict.fromkeys(plan.keys, loc))
    return where


def assemble_manifest(build: PlannedBuild, entries: list[dict], *, kind: str, fingerprint: str, source: dict,
                      parameters: dict, **fields) -> Manifest:
    """The manifest of a finished build: counts from the records, every shard and where each sample is."""
    where = sample_locations(build)
    return Manifest(
        samples=[{**s, "shards": where.get(s["key"], {})} for s in build.samples],
        shards=[ShardEntry.from_dict(e, "build") for e in entries],
        parameters={**parameters, "formats": list(build.settings.formats)},
        counts=compute_counts(list(build.samples)), kind=kind, fingerprint=fingerprint, builder_version=__version__,
        source=source, features=build.layout.features() if "parquet" in build.settings.formats else {}, **fields,
    )


def finalize(state: BuildState, manifest: Manifest, card: str) -> Manifest:
    """Card, then the manifest (its presence means complete, and it records the card's hash), then the state goes."""
    data = card.encode()
    write_bytes_atomic(state.out / "README.md", data, durable=state.durable)
    manifest.card_sha256 = hashlib.sha256(data).hexdigest()
    manifest.write(state.out, durable=state.durable)
    state.finish()
    return manifest
