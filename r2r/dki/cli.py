"""`r2r train-negative` and `r2r train-positive`: argument parsing into the typed configs, then one trainer call.

Why: the lead wires `register(subparsers)` into `r2r`'s COMMAND_MODULES; every process of an
`accelerate launch -m r2r.cli train-...` run parses the same arguments, so nothing here may depend on the rank.
Parsing imports no torch (fast `--help`). Bad input surfaces as DKIError (a ValueError): `r2r` prints one line.
Until `r2r` lists this module, `python -m r2r.dki.cli train-negative ...` runs the same commands.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..cliargs import deprecated_alias

from .config import LR_SCHEDULERS, STYLE_TEMPLATES, DataConfig, NegativeConfig, PositiveConfig, RunConfig, TrainConfig

DEFAULTS = {"negative": {"steps": 2000, "lr": 2e-3}, "positive": {"steps": 5000, "lr": 1e-4, "lr_full": 1e-5}}


def _common(p: argparse.ArgumentParser, method: str) -> None:
    p.add_argument("--model", required=True, help="SD-1.5-architecture diffusers folder or Hub id (safetensors)")
    p.add_argument("--out", required=True, type=Path,
                   help="output folder (artifacts, card, loss curve, checkpoints); a non-empty one needs --resume or "
                        "--overwrite")
    p.add_argument("--revision", help="Hub revision of --model")
    d = p.add_argument_group("data")
    d.add_argument("--source-type", choices=("auto", "folder", "synfashion", "datasets"), default="auto",
                   help="how to read the source (auto: a SynFashion build if it has manifest.json or data/renders/, "
                        "an image folder for other folders, a datasets id otherwise)")
    d.add_argument("--split", default="train", help="split of a SynFashion build / datasets source")
    d.add_argument("--category", action="append", help="SynFashion category to keep (repeatable)")
    d.add_argument("--view", action="append", help="SynFashion view to keep: front, back, random1, random2")
    d.add_argument("--resolution", type=int, default=512, help="square training size in pixels")
    d.add_argument("--random-crop", action="store_true", help="random crops (disables latent caching)")
    d.add_argument("--flip", type=float, default=0.0, help="horizontal flip probability (both flips are cached)")
    d.add_argument("--min-size", type=int, help="smallest accepted image side (default: --resolution)")
    d.add_argument("--no-cache-latents", action="store_true", help="VAE-encode every step (as diffusers' examples)")
    d.add_argument("--num-workers", type=int, default=2, help="image decoding processes")
    d.add_argument("--skip-bad-images", action="store_true", 
                   help="skip undecodable images (counted) instead of failing")
    t = p.add_argument_group("training")
    t.add_argument("--steps", type=int, default=DEFAULTS[method]["steps"], help="optimizer steps")
    t.add_argument("--lr", type=float, help=f"learning rate (default {DEFAULTS[method]['lr']:g}"
                   + (f"; {DEFAULTS['positive']['lr_full']:g} with --full)" if method == "positive" else ")"))
    t.add_argument("--batch-size", type=int, default=8, help="per process and micro-step")
    t.add_argument("--grad-accum", type=int, default=1, help="micro-steps per optimizer step")
    t.add_argument("--mixed-precision", choices=("no", "fp16", "bf16"), default="no",
                   help="compute dtype of the frozen weights (trainable ones stay float32)")
    t.add_argument("--lr-scheduler", choices=LR_SCHEDULERS, default="constant_with_warmup",
                   help="learning-rate schedule (diffusers.optimization.get_scheduler)")
    t.add_argument("--lr-warmup-steps", dest="warmup_steps", type=int, default=0,
                   help="linear learning-rate warm-up steps (optimizer steps)")
    deprecated_alias(t, "--warmup-steps", "--lr-warmup-steps", dest="warmup_steps", type=int)
    t.add_argument("--lr-num-cycles", type=int, default=1, help="cycles of cosine_with_restarts")
    t.add_argument("--lr-power", type=float, default=1.0, help="power of the polynomial schedule")
    t.add_argument("--weight-decay", type=float, default=1e-2, help="AdamW weight decay")
    t.add_argument("--max-grad-norm", type=float, default=1.0, help="gradient clipping (0: off)")
    t.add_argument("--snr-gamma", type=float, help="Min-SNR loss weighting (e.g. 5.0); off by default")
    t.add_argument("--gradient-checkpointing", action="store_true", help="recompute activations (less memory)")
    t.add_argument("--compile", action="store_true", help="torch.compile the UNet (CUDA)")
    t.add_argument("--seed", type=int, default=0, help="seed of initialisation, data order, noise and timesteps")
    t.add_argument("--checkpoint-every", type=int, default=500,
                   help="steps between resumable checkpoints (0: at the end only)")
    t.add_argument("--keep-checkpoints", type=int, default=2, help="checkpoints kept (older ones are removed)")
    again = t.add_mutually_exclusive_group()
    again.add_argument("--resume", nargs="?", const="latest", default=None, metavar="CHECKPOINT",
                       help="continue the run in OUT from its newest intact checkpoint (or the one given)")
    again.add_argument("--overwrite", action="store_true",
                       help="start a new run in a non-empty OUT: removes what an earlier training run wrote there "
                            "(checkpoints, artifacts, card, loss curve, run record), never other files")
    t.add_argument("--log-every", type=int, default=10, help="steps between loss read-backs (each one syncs)")
    t.add_argument("--report-to", choices=("none", "tensorboard", "wandb"), default="none",
                   help="experiment tracker (accelerate): tensorboard writes OUT/logs; the loss curve PNG and the run "
                        "record are written either way")
    t.add_argument("--base-model-id", help="the model card's base_model (default: --model, or the folder name)")
    t.add_argument("--no-progress", action="store_true", help="no progress bars")


def register(subparsers: argparse._SubParsersAction) -> None:
    neg = subparsers.add_parser(
        "train-negative", help="DKI: textual inversion of a negative-domain token on rendered images",
        description="Negative-domain DKI (FashionR2R): learn a new token (default <rendered>) on rendered images; "
                    "only its embedding rows are trained. Writes OUT/learned_embeds.safetensors (diffusers "
                    "load_textual_inversion format), README.md (model card) and loss_curve.png. Several processes "
                    "(GPUs, or CPU processes on gloo): accelerate launch --multi_gpu --num_processes N -m r2r.cli "
                    "train-negative ... or torchrun --nproc_per_node N -m r2r.cli train-negative ...",
    )
    _common(neg, "negative")
    neg.add_argument("--renders", required=True, dest="source",
                     help="rendered images: a SynFashion build folder, an image folder or a datasets id")
    neg.add_argument("--placeholder-token", dest="token", default="<rendered>",
                     help="the new token learned on the renders, the negative prompt later (must not be in the "
                          "vocabulary)")
    deprecated_alias(neg, "--token", "--placeholder-token", dest="token")
    neg.add_argument("--init-token", default="rendered", help="word whose embedding initialises the vectors")
    neg.add_argument("--init-embedding", help="start from a saved {token: tensor} .safetensors embedding")
    neg.add_argument("--num-vectors", type=int, default=1, help="embedding vectors for the token (K)")
    neg.add_argument("--template", action="append", dest="templates",
                     help=f"training prompt with '{{}}' for the token (repeatable; default {len(STYLE_TEMPLATES)} "
                          "style templates)")
    neg.set_defaults(func=_cmd_negative)

    pos = subparsers.add_parser(
        "train-positive", help="DKI: finetune the UNet on real photos (LoRA by default, or --full)",
        description="Positive-domain DKI (FashionR2R): finetune the UNet on real photos. LoRA by default "
                    "(OUT/pytorch_lora_weights.safetensors, for load_lora_weights / r2r translate-images --lora); "
                    "--full writes a whole pipeline folder. Plus README.md (model card) and loss_curve.png.",
    )
    _common(pos, "positive")
    pos.add_argument("--real", required=True, dest="source",
                     help="real photos: an image folder or a datasets id (with an optional caption column)")
    kind = pos.add_mutually_exclusive_group()
    kind.add_argument("--lora-rank", type=int, default=4, help="LoRA rank (default 4)")
    kind.add_argument("--full", action="store_true", help="finetune every UNet weight; save a pipeline folder")
    pos.add_argument("--lora-alpha", type=float, help="LoRA alpha (default: the rank)")
    pos.add_argument("--captions", default="auto",
                     help="auto (metadata.jsonl/csv, <name>.txt sidecars, a text/caption column), none, or a "
                          "metadata file")
    pos.add_argument("--caption-column", help="caption column of a datasets source or metadata file")
    pos.add_argument("--image-column", default="image", help="image column of a datasets source")
    pos.add_argument("--caption-template", default="",
                     help="caption of images without one (default empty); '{category}' is filled for SynFashion")
    pos.add_argument("--ema", action="store_true", help="export an exponential moving average of the weights")
    pos.add_argument("--ema-decay", type=float, default=0.9999, help="decay of the EMA (with --ema)")
    pos.set_defaults(func=_cmd_positive)


def _data(args: argparse.Namespace) -> DataConfig:
    return DataConfig(
        source=str(args.source), kind=args.source_type, split=args.split,
        categories=tuple(args.category) if args.category else None,
        views=tuple(args.view) if args.view else None, resolution=args.resolution, random_crop=args.random_crop,
        flip=args.flip, min_size=args.min_size, captions=getattr(args, "captions", "none"),
        caption_column=getattr(args, "caption_column", None), image_column=getattr(args, "image_column", "image"),
        caption_template=getattr(args, "caption_template", ""), num_workers=args.num_workers,
        skip_bad_images=args.skip_bad_images, cache_latents=not args.no_cache_latents,
    )


def _train(args: argparse.Namespace, lr: float) -> TrainConfig:
    return TrainConfig(
        steps=args.steps, lr=lr, batch_size=args.batch_size, grad_accum=args.grad_accum,
        mixed_precision=args.mixed_precision, seed=args.seed, warmup_steps=args.warmup_steps,
        lr_scheduler=args.lr_scheduler, lr_num_cycles=args.lr_num_cycles, lr_power=args.lr_power,
        report_to=args.report_to,
        weight_decay=args.weight_decay, max_grad_norm=args.max_grad_norm or None, snr_gamma=args.snr_gamma,
        checkpoint_every=args.checkpoint_every, keep_checkpoints=args.keep_checkpoints,
        gradient_checkpointing=args.gradient_checkpointing, compile=args.compile, log_every=args.log_every,
        progress=not args.no_progress,
    )


def negative_run(args: argparse.Namespace) -> RunConfig:
    method = NegativeConfig(
        token=args.token, init_token=args.init_token, num_vectors=args.num_vectors,
        init_embedding=args.init_embedding, templates=tuple(args.templates) if args.templates else STYLE_TEMPLATES,
    )
    return RunConfig(model=args.model, out=str(args.out), data=_data(args),
                     train=_train(args, args.lr or DEFAULTS["negative"]["lr"]), method=method,
                     revision=args.revision, base_model_id=args.base_model_id, resume=args.resume,
                     overwrite=args.overwrite)


def positive_run(args: argparse.Namespace) -> RunConfig:
    method = PositiveConfig(lora_rank=args.lora_rank, lora_alpha=args.lora_alpha, full=args.full, ema=args.ema,
                            ema_decay=args.ema_decay)
    lr = args.lr or (DEFAULTS["positive"]["lr_full"] if args.full else DEFAULTS["positive"]["lr"])
    return RunConfig(model=args.model, out=str(args.out), data=_data(args), train=_train(args, lr), method=method,
                     revision=args.revision, base_model_id=args.base_model_id, resume=args.resume,
                     overwrite=args.overwrite)


def _report(result) -> int:
    from accelerate import PartialState
    from rich.console import Console

    if not PartialState().is_main_process:
        return 0

    Console(stderr=True).print(
        f"[green]done[/]: {result.steps} steps, final loss {result.final_loss:.5f}, "
        f"{result.samples_per_second:.1f} samples/s -> {result.out}"
        + (f" ({', '.join(p.name for p in result.artifacts)})" if result.artifacts else "")
    )
    return 0


def _cmd_negative(args: argparse.Namespace) -> int:
    from .negative import NegativeTrainer

    return _report(NegativeTrainer(negative_run(args)).fit())


def _cmd_positive(args: argparse.Namespace) -> int:
    from .positive import PositiveTrainer

    return _report(PositiveTrainer(positive_run(args)).fit())


def main(argv: list[str] | None = None) -> int:
    """`python -m r2r.dki.cli train-...` (and `accelerate launch -m r2r.dki.cli ...`) with `r2r`'s error handling."""
    import sys

    from ..cli import build_parser, run_command

    try:
        return run_command(build_parser(("r2r.dki.cli",)).parse_args(argv))
    finally:
        sys.stdout.flush()


if __name__ == "__main__":
    raise SystemExit(main())
