"""Arguments of the translation commands: the model and RIG flags both commands share, and `translate-dataset`.

Parsing only (no torch import, so `--help` is instant); the work is in `dataset.py` and `folder.py`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from synfashion.cliutil import parse_size

from ..cliargs import add_parser
from ..config import ModelSpec, RIGParams


def _layers(text: str) -> int | None:
    return None if text.lower() == "none" else int(text)


def add_model_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("model (base + DKI artifacts)")
    g.add_argument("--model", required=True,
                   help="diffusers SD-1.5-architecture folder or Hub id, e.g. stable-diffusion-v1-5/stable-diffusion-v1-5")
    g.add_argument("--model-revision", default=None, help="Hub revision of --model (default: main)")
    g.add_argument("--negative-embedding",
                   help="negative (source-domain) textual inversion: a .safetensors file or a Hub model repo id "
                        "(owner/name[@revision], as `r2r push-model` publishes it)")
    g.add_argument("--negative-token", help="token for the negative embedding (default: the file's)")
    g.add_argument("--lora", help="positive-DKI LoRA (.safetensors file, folder, or Hub model repo id "
                                  "owner/name[@revision]), fused into the UNet")
    g.add_argument("--lora-scale", type=float, default=1.0, help="weight of the LoRA when it is fused")
    g.add_argument("--unet", help="positive-DKI finetuned UNet folder (diffusers format)")
    g.add_argument("--dtype", choices=("float32", "float16", "bfloat16"), default="float32",
                   help="model weights dtype (latent updates stay float32)")
    g.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")


def add_rig_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("RIG (realistic image generation) settings")
    g.add_argument("--source-prompt", default="", help="prompt of the source (inversion) branch")
    g.add_argument("--target-prompt", default="", help="prompt of the target (generation) branch")
    g.add_argument("--negative-prompt", default=None,
                   help="unconditional prompt (default: the negative embedding's token, or empty)")
    g.add_argument("--strength", type=float, default=0.3,
                   help="fraction of the schedule that is inverted and generated again")
    g.add_argument("--steps", type=int, default=50, help="DDIM steps of the full schedule (strength x steps run)")
    g.add_argument("--guidance", type=float, default=7.5, help="classifier-free guidance scale")
    g.add_argument("--tac-ratio", type=float, default=0.9, help="fraction of denoising steps with TAC (gamma)")
    g.add_argument("--tac-layers", type=_layers, default=256,
                   help="TAC in self-attention layers with >= H*W/N tokens ('none': only --tac-blocks)")
    g.add_argument("--tac-blocks", default="", help="comma-separated UNet module-name patterns, e.g. 'up_blocks.3.*'")
    g.add_argument("--no-tac", action="store_true", help="ablation: plain inversion + CFG generation")
    g.add_argument("--mask", action="store_true", help="foreground mask: exactly black/white pixels are background")
    g.add_argument("--inversion-order", choices=("reference", "standard"), default="reference",
                   help="DDIM inversion order: 'reference' as published, 'standard' as textbook (README)")
    g.add_argument("--batch-size", type=int, default=1, help="images per pipeline call (same-size images)")
    g.add_argument("--seed", type=int, default=0, help="seed recorded with the run (RIG itself draws no noise)")
    size = g.add_mutually_exclusive_group()
    size.add_argument("--resize", metavar="WxH", help="translate every image at this size (multiples of 8)")
    size.add_argument("--pad", action="store_true",
                      help="pad sizes not divisible by 8 (edges replicated) and crop the output back (otherwise "
                           "such images are rejected by name)")


def rig_params(args: argparse.Namespace) -> RIGParams:
    return RIGParams(
        source_prompt=args.source_prompt, target_prompt=args.target_prompt, negative_prompt=args.negative_prompt,
        strength=args.strength, num_inference_steps=args.steps, guidance_scale=args.guidance,
        tac_ratio=args.tac_ratio, tac_layers=args.tac_layers,
        tac_blocks=tuple(b.strip() for b in args.tac_blocks.split(",") if b.strip()),
        use_tac=not args.no_tac, mask=args.mask, inversion_order=args.inversion_order,
    )


def size_policy(args: argparse.Namespace):
    from .sizes import SizePolicy

    return SizePolicy.parse(args.resize, args.pad)


def model_spec(args: argparse.Namespace) -> ModelSpec:
    return ModelSpec(
        model=args.model, negative_embedding=args.negative_embedding, negative_token=args.negative_token,
        lora=args.lora, lora_scale=args.lora_scale, unet=args.unet, revision=args.model_revision, dtype=args.dtype,
        device=args.device,
    )


def register_dataset(subparsers: argparse._SubParsersAction) -> None:
    p = add_parser(
        subparsers, "translate-dataset",
        help="translate splits of a built SynFashion dataset into a built translated dataset (verify, push, load)",
        description="Rendered-to-real translation (FashionR2R RIG) of a built SynFashion dataset (a folder, a Hub "
                    "dataset id, or a folder of WebDataset tars) into a new built dataset: Parquet configs 'renders' "
                    "(translated image + the source row's metadata + source_key/source_sha256) and 'pairs' (rendered "
                    "and translated side by side), WebDataset tars, manifest.json and a card. Resumable (kill it, "
                    "run it again); several GPUs: accelerate launch -m r2r.cli translate-dataset ... (or torchrun).",
    )
    p.add_argument("source", help="built SynFashion folder, Hub dataset id (namespace/name), or WebDataset folder")
    p.add_argument("out", type=Path, help="output folder (resumed if it holds an interrupted run of these settings)")
    p.add_argument("--split", action="append", dest="splits", help="split to translate (repeatable; default test)")
    p.add_argument("--categories", help="comma-separated categories to keep (default all)")
    p.add_argument("--limit", type=int, help="at most N images per split (a fixed hash-chosen subset)")
    p.add_argument("--revision", help="Hub revision (branch, tag or commit) of a Hub source")
    add_model_arguments(p)
    add_rig_arguments(p)
    p.add_argument("--allow-rejected", action="store_true",
                   help="translate the rest when some images cannot be (each is listed in the manifest)")
    p.add_argument("--shard-size", default="256MB", help="estimated PNG bytes per shard")
    p.add_argument("--formats", default="parquet,webdataset", help="comma-separated: parquet, webdataset")
    p.add_argument("--num-workers", type=int, default=2, help="image decoding processes")
    p.add_argument("--eval-json", type=Path, help="an `r2r evaluate` JSON to show in the card")
    p.add_argument("--overwrite", action="store_true",
                   help="replace an earlier translated dataset of other settings in OUT (only its own files)")
    p.add_argument("--rank", type=int, help="this process's rank, for a run started without a launcher")
    p.add_argument("--world-size", type=int, help="number of ranks, with --rank")
    p.add_argument("--finalize", action="store_true",
                   help="only write the manifest and card once every rank has finished (after --rank runs)")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=_cmd_dataset)


def _cmd_dataset(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.markup import escape

    from loaders.distributed import DistInfo

    from .dataset import DatasetJob, translate_dataset
    evaluation = None
    if args.eval_json:
        from ..evaluation.results import read_result

        evaluation = read_result(args.eval_json)  # the one validating reader; translate_dataset checks whose it is
    dist = DistInfo.resolve(args.rank, args.world_size)
    job = DatasetJob(
        source=args.source, out=args.out, model=model_spec(args), params=rig_params(args),
        splits=tuple(args.splits or ("test",)),
        categories=tuple(c.strip() for c in args.categories.split(",") if c.strip()) if args.categories else None,
        limit=args.limit, batch_size=args.batch_size, seed=args.seed, size=size_policy(args),
        allow_rejected=args.allow_rejected, shard_size=parse_size(args.shard_size),
        formats=tuple(f.strip() for f in args.formats.split(",") if f.strip()), num_workers=args.num_workers,
        overwrite=args.overwrite, revision=args.revision, evaluation=evaluation, rank=dist.rank,
        world_size=dist.world_size, finalize_only=args.finalize,
    )
    report = translate_dataset(job, progress=not args.no_progress)
    console = Console(stderr=True)
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
