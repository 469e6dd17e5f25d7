"""`r2r tiny-model`: a tiny random-weight SD-1.5-architecture pipeline folder (r2r/tiny.py), for tests and demos."""

from __future__ import annotations

import argparse
from pathlib import Path

from synfashion.cliutil import add_options, from_args

from ..tiny import TinyModelConfig


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "tiny-model", help="write a tiny random-weight SD-1.5-architecture pipeline folder (tests, demos)",
        description="Write a tiny Stable-Diffusion-1.5-architecture diffusers pipeline with random weights. "
                    "It loads with StableDiffusionPipeline.from_pretrained(OUT) like real weights.",
    )
    p.add_argument("out", type=Path, help="output folder")  # save_tiny_model's, not a setting of the model
    add_options(p, TinyModelConfig, ("seed",))
    p.add_argument("--overwrite", action="store_true", help="replace OUT if it exists")  # save_tiny_model's too
    p.set_defaults(func=_cmd_tiny_model)


def _cmd_tiny_model(args: argparse.Namespace) -> int:
    from r2r.progress import stderr_console

    from ..tiny import save_tiny_model

    out = save_tiny_model(args.out, from_args(TinyModelConfig, args), overwrite=args.overwrite)
    stderr_console().print(f"[green]tiny model[/] written to {out}")
    return 0
