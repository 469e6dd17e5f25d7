"""`synfashion sample`: arguments into a `SampleConfig`, then the generated release (synfashion/sample/)."""

from __future__ import annotations

import argparse

from ..cliutil import add_options, from_args
from ..parallel import default_workers
from ..sample.release import SampleConfig
from . import console


def register(subparsers: argparse._SubParsersAction) -> None:
    s = subparsers.add_parser("sample", help="generate the embedded sample release (same layout as the real one)")
    s.add_argument("out")  # generate_sample's output folder, not a setting of the release
    add_options(s, SampleConfig, ("projects_per_category", "textures_per_project", "width", "height", "image_format",
                                  "seed"))
    # generate_sample's, not a setting of the release (same bytes with any count): the machine's cores
    s.add_argument("--workers", type=int, default=default_workers(), help="processes (default: every core)")
    s.set_defaults(func=cmd_sample)


def cmd_sample(args: argparse.Namespace) -> int:
    from ..sample import generate_sample

    summary = generate_sample(args.out, from_args(SampleConfig, args), workers=args.workers)
    console.print(
        f"[green]sample release[/]: {summary.num_images} images, {summary.num_projects} projects, "
        f"{summary.num_textures} textures -> {summary.root}"
    )
    return 0
