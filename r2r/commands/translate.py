"""`r2r translate-images` and `r2r translate-dataset`: arguments into a `TranslateJob` / `DatasetJob`, then one run.

Also the model and RIG option groups that `r2r ablate` shares (`add_model_options`, `add_rig_options`). Every
option comes from the field it fills (r2r/config.py, r2r/translate/job.py, r2r/translate/sizes.py). No torch
import here: the handlers import the work.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from synfashion.cliutil import NO_PROGRESS_HELP, add_options, from_args

from ..cliargs import add_parser
from ..config import ModelSpec, RIGParams
from ..translate.folder import RUN_RECORD
from ..translate.job import DatasetJob, TranslateJob
from ..translate.sizes import SizePolicy

# --help order of the model group (ModelSpec declares --model-revision after --unet)
MODEL_OPTIONS = ("model", "revision", "negative_embedding", "negative_token", "lora", "lora_scale", "unet", "dtype",
                 "device")


def add_model_options(p: argparse.ArgumentParser) -> None:
    add_options(p.add_argument_group("model (base + DKI artifacts)"), ModelSpec, MODEL_OPTIONS)


def add_rig_options(p: argparse.ArgumentParser, job: type) -> None:
    """The RIG settings, then `job`'s batch size and seed, then the size policy (--resize or --pad)."""
    g = p.add_argument_group("RIG (realistic image generation) settings")
    add_options(g, RIGParams)
    add_options(g, job, ("batch_size", "seed"))
    add_options(g.add_mutually_exclusive_group(), SizePolicy)


def model_spec(args: argparse.Namespace) -> ModelSpec:
    return from_args(ModelSpec, args)


def rig_params(args: argparse.Namespace) -> RIGParams:
    return from_args(RIGParams, args)


def size_policy(args: argparse.Namespace) -> SizePolicy:
    return from_args(SizePolicy, args)


def register(subparsers: argparse._SubParsersAction) -> None:
    p = add_parser(
        subparsers, "translate-images",
        help="translate a folder of rendered images (RIG) into PNGs with the same names",
        description="Rendered-to-real translation of every image under --input (FashionR2R RIG). Outputs are "
                    "lossless PNGs with the same relative names, written atomically; existing outputs are skipped "
                    f"(resume); settings and model identity go to OUTPUT/{RUN_RECORD}. For a built SynFashion "
                    "dataset use translate-dataset: it writes a built dataset (verify, push, load_dataset).",
    )
    add_options(p, TranslateJob, ("input", "output"))
    add_model_options(p)
    add_rig_options(p, TranslateJob)
    add_options(p, TranslateJob, ("overwrite",))
    p.add_argument("--no-progress", action="store_true", help=NO_PROGRESS_HELP)  # translate_folder's, no setting
    p.set_defaults(func=_cmd_images)

    p = add_parser(
        subparsers, "translate-dataset",
        help="translate splits of a built SynFashion dataset into a built translated dataset (verify, push, load)",
        description="Rendered-to-real translation (FashionR2R RIG) of a built SynFashion dataset (a folder, a Hub "
                    "dataset id, or a folder of WebDataset tars) into a new built dataset: Parquet configs 'renders' "
                    "(translated image + the source row's metadata + source_key/source_sha256) and 'pairs' (rendered "
                    "and translated side by side), WebDataset tars, manifest.json and a card. Resumable (kill it, "
                    "run it again); several GPUs: accelerate launch -m r2r.cli translate-dataset ... (or torchrun).",
    )
    add_options(p, DatasetJob, ("source", "out", "splits", "categories", "limit", "revision"))
    add_model_options(p)
    add_rig_options(p, DatasetJob)
    add_options(p, DatasetJob, ("allow_rejected", "shard_size", "formats", "num_workers"))
    # a file the handler reads into DatasetJob.evaluation
    p.add_argument("--eval-json", type=Path, help="an `r2r evaluate` JSON to show in the card")
    add_options(p, DatasetJob, ("overwrite",))
    # not given: the launcher's RANK / WORLD_SIZE (loaders' DistInfo.resolve), then DatasetJob's rank 0 of 1
    p.add_argument("--rank", type=int, help="this process's rank, for a run started without a launcher")
    p.add_argument("--world-size", type=int, help="number of ranks, with --rank")
    add_options(p, DatasetJob, ("finalize_only",))
    p.add_argument("--no-progress", action="store_true", help=NO_PROGRESS_HELP)  # translate_dataset's, no setting
    p.set_defaults(func=_cmd_dataset)


def _cmd_images(args: argparse.Namespace) -> int:
    from r2r.progress import stderr_console

    from ..translate.folder import translate_folder

    job = from_args(TranslateJob, args, model=model_spec(args), params=rig_params(args), size=size_policy(args))
    report = translate_folder(job, progress=not args.no_progress)
    stderr_console().print(
        f"[green]translated[/] {len(report.translated)}, skipped {len(report.skipped)} (existing), "
        f"rejected {len(report.rejected)}" + (f", failed {len(report.failed)}" if report.failed else "")
        + f" in {report.seconds:.1f}s -> {job.output}"
    )
    if report.failed:
        names = sorted(report.failed)
        shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
        raise ValueError(f"{len(names)} image(s) came out non-finite (NaN/inf) and were not written (a rerun retries "
                         f"them): {shown}; the model or a DKI artifact produces NaN, or float16 overflowed (try "
                         "--dtype bfloat16 or float32)")
    return 1 if report.rejected else 0


def _cmd_dataset(args: argparse.Namespace) -> int:
    from r2r.progress import stderr_console
    from rich.markup import escape

    from loaders.distributed import DistInfo

    from ..translate.dataset import translate_dataset

    evaluation = None
    if args.eval_json:
        from ..evaluation.results import read_result

        evaluation = read_result(args.eval_json)  # the one validating reader; translate_dataset checks whose it is
    dist = DistInfo.resolve(args.rank, args.world_size)
    job = from_args(DatasetJob, args, model=model_spec(args), params=rig_params(args), size=size_policy(args),
                    evaluation=evaluation, rank=dist.rank, world_size=dist.world_size)
    report = translate_dataset(job, progress=not args.no_progress)
    console = stderr_console()
    for r in report.rejected:
        console.print(f"[yellow]rejected[/] {escape(r['key'])}: {escape(r['reason'])}", highlight=False)
    if report.finalized and report.manifest is not None:
        m = report.manifest
        console.print(f"[green]translated dataset[/] {escape(str(job.out))}: {m.counts['total']} images "
                      f"({', '.join(f'{k} {v}' for k, v in m.counts['per_split'].items() if v)}), {len(m.shards)} "
                      f"shard files; {report.translated} translated now, {report.reused} from earlier runs, "
                      f"{report.seconds:.1f}s", highlight=False)
    else:
        console.print(f"rank {job.rank}/{job.world_size}: {report.translated} translated, {report.reused} from "
                      "earlier runs; its shards are written. Run with --finalize once every rank has finished.",
                      highlight=False)
    return 0
