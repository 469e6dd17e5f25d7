"""`r2r translate-dataset`: a built SynFashion split in, a built translated dataset out, through the same core.

The dataset side is synfashion's build core (`synfashion.build.core`): this module only decides what to translate,
runs the model, and hands the bytes in (`synfashion.build.staging`); the core writes the Parquet configs
(`renders` with provenance columns, `pairs`), the WebDataset tars, the manifest and the card, exactly as it does for
the original release, and `synfashion verify` / `push` work on the result unchanged.

Resume and determinism: the plan (which records, which shards, which batches) is fixed before any work from the
source and the settings, and fingerprinted. Each planned batch is committed to the staging area as a unit (every
PNG and its rendered source, then the unit's record), so a `kill -9` loses at most one batch, and a batch is always
redone whole: outputs depend on batch composition by about one pixel level, so a resumed run is byte-identical to an
uninterrupted one (float32 on CPU). A run with other settings into the same folder is refused with the differences.

Distributed: ranks (RANK/WORLD_SIZE from torchrun or accelerate, or --rank/--world-size) take every world-th shard,
translate and write it; rank 0 writes the manifest and card after the others (a barrier when the launcher set up
torch.distributed), or `--finalize` does it on its own. One rank that died can be run again alone.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch.utils.data

from synfashion import __version__ as synfashion_version
from synfashion.build import (
    BuildError, BuildState, OutputSettings, PlannedBuild, assemble_manifest, finalize, fingerprint_of, write_outputs,
)
from synfashion.build.core import collect_entries
from synfashion.build.plan import ShardPlan, plan_shards
from synfashion.build.state import check_apart
from synfashion.build.staging import Staging
from synfashion.manifest import Manifest
from synfashion.schema import RECORD_FIELDS, infer_extra_features, translated_layout
from synfashion.fs.space import disk_full_as_error
from synfashion.fs.locks import folder_lock
from synfashion.settings import differences, summary

from ..config import ModelSpec
from .engine import Translator, decode_for_model, encode_png, progress_columns, step_progress
from .job import DatasetJob  # the job itself lives torch-free in job.py
from .record import versions
from .sizes import SizePolicy, upright_size
from loaders.sources import Records, SourceError, open_records



@dataclass
class DatasetReport:
    out: Path
    translated: int = 0  # images this process translated
    reused: int = 0  # images an earlier run had already committed
    rejected: list[dict] = field(default_factory=list)
    finalized: bool = False
    manifest: Manifest | None = None
    seconds: float = 0.0
    phases: dict[str, float] = field(default_factory=dict)  # seconds: plan, load (the model), translate, write, ...


@dataclass(frozen=True)
class Unit:
    """One planned batch: the indices (into the selected source samples) translated together."""

    name: str
    shard: int  # index into the plans
    indices: tuple[int, ...]


# --------------------------------------------------------------------------------------------------- the plan
def _select(source: Records, job: DatasetJob) -> list[dict]:
    from loaders.selection import eval_subset_keys
    from synfashion.taxonomy import normalize_category

    samples = source.samples
    if job.categories:
        wanted = {normalize_category(c) for c in job.categories}
        samples = [s for s in samples if s["category"] in wanted]
    if job.limit is not None:  # per split, the keys with the lowest keyed hash: fixed, spread over categories
        chosen = eval_subset_keys(((s["key"], s["split"]) for s in samples), job.limit, job.seed)
        samples = [s for s in samples if s["key"] in chosen]
    if not samples:
        raise SourceError(f"{job.source}: no samples in split(s) {', '.join(job.splits)}"
                          + (f" of categories {', '.join(job.categories)}" if job.categories else ""))
    return samples


def _template(src: dict, size: tuple[int, int]) -> dict:
    """The translated record's metadata, but for its own bytes' sha256 and size (known once it is made)."""
    meta = {k: v for k, v in src.items() if k not in RECORD_FIELDS and k != "shards"}  # the source's extra columns
    meta.update({k: src[k] for k in ("key", "split", "category", "project", "texture", "view", "source_path")})
    meta.update(width=size[0], height=size[1], mode="RGB", format="PNG", orientation=1, sha256="", num_bytes=0,
                source_key=src["key"], source_sha256=src["sha256"])
    return meta


def _estimated_png_bytes(meta: dict) -> int:
    """Shards are planned before any image exists: a lossless PNG of a photo-like image is about half its raw
    RGB size. Only the shard count depends on it, never the content."""
    return meta["width"] * meta["height"] * 3 // 2


def _units(plans: list[ShardPlan], index: dict[str, int], model_size: dict[str, tuple[int, int]],
           batch_size: int) -> list[Unit]:
    """Each shard's records in order, cut into batches of one model size: the batches are part of the plan."""
    units = []
    for s, plan in enumerate(plans):
        runs: list[list[str]] = []
        for key in plan.keys:
            if runs and model_size[runs[-1][-1]] == model_size[key] and len(runs[-1]) < batch_size:
                runs[-1].append(key)
            else:
                runs.append([key])
        units += [Unit(f"{plan.split}-{plan.index:05d}-b{j:05d}", s, tuple(index[k] for k in run))
                  for j, run in enumerate(runs)]
    return units


# --------------------------------------------------------------------------------------------------- identity
def public_identity(spec: ModelSpec) -> dict:
    """The model as the dataset records it: names and hashes, never a local absolute path."""
    from ..models import model_identity

    ident = model_identity(spec)
    ident.pop("model_path", None)
    spec_d = {k: v for k, v in ident["spec"].items() if k != "device"}
    for key in ("model", "negative_embedding", "lora", "unet"):
        value = spec_d.get(key)
        if value and Path(value).exists():
            spec_d[key] = Path(value).resolve().name
    ident["spec"] = spec_d
    return json.loads(json.dumps(ident))


# --------------------------------------------------------------------------------------------------- reading inputs
class _Inputs(torch.utils.data.Dataset):
    """index -> (index, uint8 image at the model's size, the source's original bytes), in decode workers."""

    def __init__(self, samples: list[dict], read: Callable[[str], bytes], policy: SizePolicy, where: str):
        self.samples, self.read, self.policy, self.where = samples, read, policy, where

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int) -> tuple[int, torch.Tensor, bytes]:
        meta = self.samples[i]
        data = self.read(meta["key"])
        if hashlib.sha256(data).hexdigest() != meta["sha256"]:
            raise SourceError(f"{self.where}: the bytes of {meta['key']!r} do not hash to the sha256 its manifest "
                              "records (a corrupt or modified source); run synfashion verify on it")
        try:
            image = decode_for_model(data, meta.get("orientation"), self.policy)
        except Exception as e:  # PIL raises many types for bad bytes; name the sample
            raise SourceError(f"{self.where}: cannot decode {meta['key']!r} ({type(e).__name__}: {e})") from None
        return i, image, data


def _collate(items: list[tuple[int, torch.Tensor, bytes]]) -> tuple[list[int], torch.Tensor, list[bytes]]:
    return [i for i, _, _ in items], torch.stack([x for _, x, _ in items]), [d for _, _, d in items]


# --------------------------------------------------------------------------------------------------- the run
def _console():
    from rich.console import Console

    return Console(stderr=True)


class _Run:
    """Everything one process of a translate-dataset run knows (see the module docstring)."""

    def __init__(self, job: DatasetJob):
        self.job = job
        self.source = open_records(job.source, job.splits, revision=job.revision)
        # never write over, into or around the source or the model
        check_apart(job.out, {"source dataset": self.source.root, **job.model.inputs()})
        BuildState(job.out, "", kind="translated").check_kind()  # an original build is never ours to replace
        picked = _select(self.source, job)
        self.rejected, self.inputs, self.model_size, templates = [], [], {}, []
        for src in picked:
            w, h = upright_size(src)
            size = job.size.model_size(w, h)
            if isinstance(size, str):
                self.rejected.append({"key": src["key"], "source_path": src.get("source_path"), "reason": size})
                continue
            self.model_size[src["key"]] = size
            self.inputs.append(src)
            templates.append(_template(src, job.size.output_size(w, h)))
        if self.rejected and not job.allow_rejected:
            shown = "\n".join(f"  {r['key']}: {r['reason']}" for r in self.rejected[:20])
            raise BuildError(f"{len(self.rejected)} source image(s) cannot be translated as they are:\n{shown}\n"
                             "Pass --pad or --resize WxH, or --allow-rejected to translate the rest (the manifest "
                             "lists the rejected ones).")
        if not self.inputs:
            raise BuildError(f"nothing to translate in {job.source} (every selected image was rejected)")
        self.templates = {t["key"]: t for t in templates}
        self.index = {s["key"]: i for i, s in enumerate(self.inputs)}
        extra = infer_extra_features(templates, known=(*RECORD_FIELDS, "source_key", "source_sha256"))
        self.layout = translated_layout(extra)
        self.settings = OutputSettings(formats=tuple(job.formats))
        self.plans = plan_shards(templates, job.shard_size, size=_estimated_png_bytes)
        self.units = _units(self.plans, self.index, self.model_size, job.batch_size)
        self.identity = self._identity()
        self.fingerprint = fingerprint_of(self.identity)
        scored = ((job.evaluation or {}).get("inputs") or {}).get("translated_fingerprint")
        if job.evaluation is not None and scored != self.fingerprint:
            where = job.evaluation.get("_path", "the evaluation")
            raise BuildError(f"--eval-json {where} scored another dataset (fingerprint {str(scored)[:12]}), not this "
                             f"one ({self.fingerprint[:12]}); run `r2r evaluate` on {job.out} and pass that JSON")
        self.state = BuildState(job.out, self.fingerprint, kind="translated")
        self.staging = Staging(self.state.dir)

    def _identity(self) -> dict:
        job = self.job
        return {
            "builder": "synfashion r2r translate-dataset", "builder_version": synfashion_version,
            "source": {k: v for k, v in self.source.ref.as_dict().items() if k not in ("path", "name")},
            "selection": {"splits": list(job.splits), "categories": list(job.categories or []) or None,
                          "limit": job.limit, "rejected": [r["key"] for r in self.rejected]},
            "size_policy": job.size.describe(), "params": asdict(job.params), "model": public_identity(job.model),
            "dtype": job.model.dtype, "device_type": job.model.device.split(":")[0], "batch_size": job.batch_size,
            "seed": job.seed, "shard_size": job.shard_size, "layout": self.layout.features(),
            "formats": list(self.settings.formats), "row_group_size": self.settings.row_group_size,
            "plans": [[p.split, p.index, p.count, list(p.keys)] for p in self.plans],
        }

    def mine(self, plan_index: int) -> bool:
        return plan_index % self.job.world_size == self.job.rank

    def describe_difference(self, old: Manifest | None) -> str | None:
        previous = self.state.stored_settings()
        if previous is None and old is not None:
            previous = old.provenance.get("identity")
        if not isinstance(previous, dict):
            return None
        return summary(differences(previous, self.identity, ignore=("plans",)), limit=8) or None

    # ------------------------------------------------------------------------------------------- steps
    def prepare(self) -> str:
        job = self.job
        outputs = [rel for p in self.plans for rel in p.paths(self.layout, self.settings.formats).values()]
        return self.state.prepare(outputs, overwrite=job.overwrite, what="translated dataset",
                                  describe_difference=self.describe_difference, clean_temps=job.world_size == 1,
                                  settings=self.identity)

    def translate(self, report: DatasetReport, progress: bool) -> None:
        """Translate this rank's planned batches that are not committed yet."""
        from rich.progress import Progress

        mine = [u for u in self.units if self.mine(u.shard)]
        todo = [u for u in mine if self.staging.committed(u.name) is None]
        report.reused = sum(len(u.indices) for u in mine if u not in todo)
        if not todo:
            return
        t0 = time.perf_counter()
        translator = Translator(self.job.model, self.job.params, self.job.seed)
        report.phases["load"] = time.perf_counter() - t0
        workers = self.job.num_workers
        loader = torch.utils.data.DataLoader(
            _Inputs(self.inputs, self.source.read, self.job.size, self.source.ref.name),
            batch_sampler=[list(u.indices) for u in todo], num_workers=workers, collate_fn=_collate,
            prefetch_factor=2 if workers else None,
        )
        pending: deque[Future] = deque()
        with Progress(*progress_columns(), console=_console(), disable=not progress) as bar, \
                ThreadPoolExecutor(1, thread_name_prefix="stage") as stager:
            task = bar.add_task("translate", total=sum(len(u.indices) for u in mine), completed=report.reused,
                                step="")
            for unit, (indices, images, datas) in zip(todo, loader):
                keys = [self.inputs[i]["key"] for i in indices]
                crop = [(self.templates[k]["width"], self.templates[k]["height"]) for k in keys] \
                    if self.job.size.pad else None
                before = report.reused + report.translated
                outputs = translator(images, keys, crop, step_progress(bar, task, before, len(keys)))
                pending.append(stager.submit(self._commit, unit, keys, outputs, datas))  # PNG + writes overlap
                while len(pending) > 1:
                    pending.popleft().result()
                report.translated += len(keys)
                bar.update(task, completed=report.reused + report.translated)
            while pending:
                pending.popleft().result()

    def _commit(self, unit: Unit, keys: list[str], outputs: list[torch.Tensor], datas: list[bytes]) -> None:
        files, metas = {}, []
        for key, out, data in zip(keys, outputs, datas):
            png = encode_png(out)
            files[(key, "image")], files[(key, "source")] = png, data
            metas.append({**self.templates[key], "sha256": hashlib.sha256(png).hexdigest(), "num_bytes": len(png)})
        self.staging.commit(unit.name, files, {"samples": metas})

    def committed_samples(self, shard_filter: Callable[[int], bool]) -> list[dict]:
        """The finished records of the selected shards, from their units' records."""
        samples = []
        for unit in self.units:
            if not shard_filter(unit.shard):
                continue
            record = self.staging.committed(unit.name, rehash=False)  # the shard writers re-hash every file
            if record is None:
                plan = self.plans[unit.shard]
                raise BuildError(f"batch {unit.name} of shard {plan.split}-{plan.index:05d} is not translated yet: "
                                 f"run the rank that owns it (rank {unit.shard % self.job.world_size}) again")
            samples += record["samples"]
        return sorted(samples, key=lambda s: s["key"])

    def planned(self, samples: list[dict]) -> PlannedBuild:
        return PlannedBuild(self.layout, samples, self.plans, self.settings)

    def write_shards(self, progress: bool) -> None:
        from synfashion.parallel import default_workers

        build = self.planned(self.committed_samples(self.mine))
        source = self.staging.byte_source()
        write_outputs(build, self.state, lambda plan: source, shards=lambda plan: self.mine(self.plans.index(plan)),
                      workers=min(default_workers(), 4), progress=progress, description="writing shards")

    def finalize(self, report: DatasetReport) -> Manifest:
        from cards.dataset_card import render_dataset_card
        from synfashion.taxonomy import DISPLAY_NAMES

        build = self.planned(self.committed_samples(lambda s: True))
        entries = collect_entries(build, self.state, {})
        source = self.source.ref.as_dict()
        if "path" in source:  # relative to the output folder, so the pair moves together; never absolute
            source["path"] = os.path.relpath(Path(source["path"]).resolve(), self.job.out.resolve())
        manifest = assemble_manifest(
            build, entries, kind="translated", fingerprint=self.fingerprint, source=source,
            parameters={"shard_size": self.job.shard_size, "row_group_size": self.settings.row_group_size},
            provenance={"identity": self.identity, "params": asdict(self.job.params),
                        "model": self.identity["model"], "dtype": self.job.model.dtype,
                        "device": self.job.model.device.split(":")[0], "batch_size": self.job.batch_size,
                        "seed": self.job.seed, "size_policy": self.job.size.describe(), "versions": versions()},
            rejected=self.rejected,
        )
        card = render_dataset_card(manifest.document(), display_names=DISPLAY_NAMES, evaluation=self.job.evaluation)
        report.finalized = True
        return finalize(self.state, manifest, card)

    def reuse_finished(self, report: DatasetReport) -> Manifest:
        """The folder already holds this exact dataset: rewrite only the card (e.g. with a new evaluation)."""
        from cards.dataset_card import render_dataset_card
        from synfashion.taxonomy import DISPLAY_NAMES

        manifest = Manifest.read(self.job.out)
        samples = [{k: v for k, v in s.items() if k != "shards"} for s in manifest.samples]
        build = self.planned(samples)
        entries, _ = write_outputs(build, self.state, lambda plan: self.staging.byte_source(), progress=False)
        if any(entries[s.path] != s.to_dict() for s in manifest.shards):
            raise BuildError(f"{self.job.out}: a shard changed since the dataset was finished; run with --overwrite")
        report.reused = len(samples)
        report.finalized = True
        card = render_dataset_card(manifest.document(), display_names=DISPLAY_NAMES, evaluation=self.job.evaluation)
        return finalize(self.state, manifest, card)


def _barrier() -> bool:
    """Wait for every rank when the launcher set up torch.distributed (torchrun, accelerate); False if it did not."""
    import torch.distributed as dist

    if os.environ.get("WORLD_SIZE", "1") != "1" and dist.is_available():
        if not dist.is_initialized():
            dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
        dist.barrier()
        return True
    return False


def translate_dataset(job: DatasetJob, *, progress: bool = True) -> DatasetReport:
    """Translate the selected records of `job.source` into the built dataset `job.out` (see the module docstring)."""
    started = time.perf_counter()
    report = DatasetReport(job.out)
    run = _Run(job)
    report.rejected = run.rejected
    report.phases["plan"] = time.perf_counter() - started

    slot = run.state.dir / f"rank-{job.rank:05d}.lock" if job.world_size > 1 else None
    with disk_full_as_error(job.out, what="the translated dataset"):
        if job.finalize_only:
            with folder_lock(job.out, "r2r translate-dataset"):
                report.manifest = run.finalize(report)
        else:
            with folder_lock(job.out, "r2r translate-dataset", slot=slot):
                status = run.prepare()
                if status == "finished":
                    report.manifest = run.reuse_finished(report)
                else:
                    t0 = time.perf_counter()
                    run.translate(report, progress)
                    t1 = time.perf_counter()
                    report.phases["translate"] = t1 - t0 - report.phases.get("load", 0.0)  # the model's load apart
                    run.write_shards(progress)
                    report.phases["write"] = time.perf_counter() - t1
            synced = _barrier() if job.world_size > 1 else False
            if job.world_size == 1 or (job.rank == 0 and synced):
                if report.manifest is None:
                    t0 = time.perf_counter()
                    with folder_lock(job.out, "r2r translate-dataset"):
                        report.manifest = run.finalize(report)
                    report.phases["finalize"] = time.perf_counter() - t0
    report.seconds = time.perf_counter() - started
    return report


__all__ = ["DatasetJob", "DatasetReport", "public_identity", "translate_dataset"]
