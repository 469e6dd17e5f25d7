"""`r2r train-negative` and `r2r train-positive`: arguments into a `RunConfig`, then one trainer call.

Every process of an `accelerate launch -m r2r.cli train-...` run parses the same arguments, so nothing here may
depend on the rank. Every option comes from the field it fills (r2r/dki/config.py); a method's own steps and
learning rate are its config's constants (NegativeConfig.STEPS, PositiveConfig.LR, ...). No torch import here (fast
`--help`). Bad input surfaces as DKIError (a ValueError): `r2r` prints one line.
"""

from __future__ import annotations

import argparse

from synfashion.cliutil import add_options, from_args

from ..cliargs import deprecated_alias
from ..dki.config import DataConfig, NegativeConfig, PositiveConfig, RunConfig, TrainConfig

DATA_OPTIONS = ("kind", "split", "categories", "views", "resolution", "random_crop", "flip", "min_size",
                "cache_latents", "num_workers", "skip_bad_images")
CAPTION_OPTIONS = ("captions", "caption_column", "image_column", "caption_template")  # train-positive's


def _common(p: argparse.ArgumentParser, method: type[NegativeConfig] | type[PositiveConfig]) -> None:
    add_options(p, RunConfig, ("model", "out", "revision"))
    add_options(p.add_argument_group("data"), DataConfig, DATA_OPTIONS)
    t = p.add_argument_group("training")
    lr_help = f"learning rate (default {method.LR:g}" + (
        f"; {method.LR_FULL:g} with --full)" if method is PositiveConfig else ")")
    # --lr not given: the method's, which for train-positive depends on --full (the handler fills it)
    add_options(t, TrainConfig, ("steps", "lr", "batch_size", "grad_accum", "mixed_precision", "lr_scheduler",
                                 "warmup_steps"), defaults={"steps": method.STEPS, "lr": None}, helps={"lr": lr_help})
    deprecated_alias(t, "--warmup-steps", "--lr-warmup-steps", dest="warmup_steps", type=int)
    add_options(t, TrainConfig, ("lr_num_cycles", "lr_power", "weight_decay", "max_grad_norm", "snr_gamma",
                                 "gradient_checkpointing", "compile", "seed", "checkpoint_every", "keep_checkpoints"))
    add_options(t.add_mutually_exclusive_group(), RunConfig, ("resume", "overwrite"))
    add_options(t, TrainConfig, ("log_every", "report_to"))
    add_options(t, RunConfig, ("base_model_id",))
    add_options(t, TrainConfig, ("progress",))


def register(subparsers: argparse._SubParsersAction) -> None:
    neg = subparsers.add_parser(
        "train-negative", help="DKI: textual inversion of a negative-domain token on rendered images",
        description="Negative-domain DKI (FashionR2R): learn a new token (default <rendered>) on rendered images; "
                    "only its embedding rows are trained. Writes OUT/learned_embeds.safetensors (diffusers "
                    "load_textual_inversion format), README.md (model card) and loss_curve.png. Several processes "
                    "(GPUs, or CPU processes on gloo): accelerate launch --multi_gpu --num_processes N -m r2r.cli "
                    "train-negative ... or torchrun --nproc_per_node N -m r2r.cli train-negative ...",
    )
    _common(neg, NegativeConfig)
    # DataConfig.source (required: no default), named for what this method trains on
    neg.add_argument("--renders", required=True, dest="source",
                     help="rendered images: a SynFashion build folder, an image folder or a datasets id")
    add_options(neg, NegativeConfig, ("token",))
    deprecated_alias(neg, "--token", "--placeholder-token", dest="token")
    add_options(neg, NegativeConfig, ("init_token", "init_embedding", "num_vectors", "templates"))
    neg.set_defaults(func=_cmd_negative)

    pos = subparsers.add_parser(
        "train-positive", help="DKI: finetune the UNet on real photos (LoRA by default, or --full)",
        description="Positive-domain DKI (FashionR2R): finetune the UNet on real photos. LoRA by default "
                    "(OUT/pytorch_lora_weights.safetensors, for load_lora_weights / r2r translate-images --lora); "
                    "--full writes a whole pipeline folder. Plus README.md (model card) and loss_curve.png.",
    )
    _common(pos, PositiveConfig)
    # DataConfig.source (required: no default), named for what this method trains on
    pos.add_argument("--real", required=True, dest="source",
                     help="real photos: an image folder or a datasets id (with an optional caption column)")
    add_options(pos.add_mutually_exclusive_group(), PositiveConfig, ("lora_rank", "full"))
    add_options(pos, PositiveConfig, ("lora_alpha",))
    add_options(pos, DataConfig, CAPTION_OPTIONS)
    add_options(pos, PositiveConfig, ("ema", "ema_decay"))
    pos.set_defaults(func=_cmd_positive)


def _run(args: argparse.Namespace, method: NegativeConfig | PositiveConfig, **data: str) -> RunConfig:
    return from_args(RunConfig, args, data=from_args(DataConfig, args, source=str(args.source), **data),
                     train=from_args(TrainConfig, args, lr=args.lr or method.default_lr), method=method)


def negative_run(args: argparse.Namespace) -> RunConfig:
    # textual inversion trains on its prompt templates, never on captions
    return _run(args, from_args(NegativeConfig, args), captions="none")


def positive_run(args: argparse.Namespace) -> RunConfig:
    return _run(args, from_args(PositiveConfig, args))


def _report(result) -> int:
    from accelerate import PartialState
    from r2r.progress import stderr_console

    if not PartialState().is_main_process:
        return 0

    stderr_console().print(
        f"[green]done[/]: {result.steps} steps, final loss {result.final_loss:.5f}, "
        f"{result.samples_per_second:.1f} samples/s -> {result.out}"
        + (f" ({', '.join(p.name for p in result.artifacts)})" if result.artifacts else "")
    )
    return 0


def _cmd_negative(args: argparse.Namespace) -> int:
    from ..dki.negative import NegativeTrainer

    return _report(NegativeTrainer(negative_run(args)).fit())


def _cmd_positive(args: argparse.Namespace) -> int:
    from ..dki.positive import PositiveTrainer

    return _report(PositiveTrainer(positive_run(args)).fit())
