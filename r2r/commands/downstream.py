"""`r2r downstream`: arguments into a `DownstreamConfig`, then one run (r2r/downstream/runner.py).

Every process of an `accelerate launch -m r2r.cli downstream ...` run parses the same arguments, so nothing here
depends on the rank. Every option comes from the field it fills (r2r/downstream/config.py). No torch import here
(`r2r --help` stays instant). Bad input is a DownstreamError (a ValueError): `r2r` prints one line, exit status 2.
"""

from __future__ import annotations

import argparse

from synfashion.cliutil import add_options, from_args

from ..downstream.config import DEFAULT_MODEL, DownstreamConfig


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "downstream", help="train a garment classifier on each variant (rendered, translated, ...), test on real "
                           "photos",
        description="Sim-to-real evidence: train the same classifier (same initial weights, seed, schedule and "
                    "transforms) on the 20-category label of each --train dataset, and score every one on the same "
                    "test sets: real photos and each source's held-out split. Writes OUT/results.json, results.md, "
                    "accuracy.png, confusion/<variant>.png, models/<variant>/ (safetensors) and per-epoch "
                    "checkpoints; running the same command again continues an interrupted run. Multi-GPU: "
                    "accelerate launch -m r2r.cli downstream ...",
    )
    add_options(p, DownstreamConfig, ("train", "test_real", "test_split", "out"))
    add_options(p.add_mutually_exclusive_group(), DownstreamConfig, ("model", "arch"))
    add_options(p.add_argument_group("images"), DownstreamConfig,
                ("size", "resize", "flip", "balanced", "num_workers", "skip_bad_images"))
    add_options(p.add_argument_group("training"), DownstreamConfig,
                ("epochs", "batch_size", "lr", "weight_decay", "seed", "mixed_precision", "channels_last", "device",
                 "overwrite", "progress"))
    p.set_defaults(func=_cmd)


def config_of(args: argparse.Namespace) -> DownstreamConfig:
    return from_args(DownstreamConfig, args, model=args.model if args.model or args.arch else DEFAULT_MODEL)


def _cmd(args: argparse.Namespace) -> int:
    cfg = config_of(args)  # validated before torch is imported
    from ..downstream.runner import run_downstream

    run_downstream(cfg)
    return 0
