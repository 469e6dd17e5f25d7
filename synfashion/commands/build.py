"""`synfashion build`: arguments into a `BuildConfig` (with its `ScanConfig` and `SplitConfig`), then one build
(synfashion/build/release.py); rejected inputs are listed by name."""

from __future__ import annotations

import argparse

from ..build import BuildConfig
from ..cliutil import add_options, from_args
from ..parallel import default_workers
from ..release.scan import ScanConfig
from ..splits import SplitConfig
from . import say


def register(subparsers: argparse._SubParsersAction) -> None:
    b = subparsers.add_parser("build",
                              help="package a release folder as Parquet + WebDataset shards with card and manifest")
    # build_dataset's input and output folders, not settings of the build
    b.add_argument("source", help="release folder: <category>/<image files> (+ optional metadata sidecar)")
    b.add_argument("out", help="output folder (resumed if it holds an interrupted build of the same inputs)")
    add_options(b, BuildConfig, ("formats",))
    # build_dataset's, not a setting of the build (same bytes with any count): the machine's cores
    b.add_argument("--workers", type=int, default=default_workers(),
                   help="processes for checking images and writing shards (default: every core)")
    add_options(b, BuildConfig, ("shard_size",))
    add_options(b, SplitConfig, ("fractions", "tie_textures"))
    add_options(b, ScanConfig, ("pattern", "metadata", "follow_outside_links", "validate"))
    add_options(b, BuildConfig, ("garments", "allow_rejected", "overwrite", "fsync"))
    b.set_defaults(func=cmd_build)


def cmd_build(args: argparse.Namespace) -> int:
    from ..build import RejectedInputsError, build_dataset

    config = from_args(BuildConfig, args, split=from_args(SplitConfig, args), scan=from_args(ScanConfig, args))
    try:
        result = build_dataset(args.source, args.out, config, workers=args.workers)
    except RejectedInputsError as e:
        for r in e.rejected:  # every one: the build stopped, so no manifest lists them
            say(("rejected", "yellow"), f" {r.source_path}: {r.reason}: {r.detail}")
        unparsed = sum(r.reason == "unparseable-name" for r in e.rejected)
        if unparsed:
            say(("hint", "cyan"), f": {unparsed} file name(s) do not give project, texture and view: describe the "
                "release's naming with --pattern REGEX (named groups project, texture, view), or list them in a "
                "--metadata FILE keyed by file_name (README: 'Pointing the scanner at the real release')")
        say(("error", "red"), f": {len(e.rejected)} input file(s) under {args.source} cannot be packaged (listed "
            "above); fix or remove them, or pass --allow-rejected to build without them (each is then listed in "
            "manifest.json)")
        return 2
    m = result.manifest.to_dict()
    say(("built", "green"), f" {result.out}: {m['counts']['total']} images "
        f"({', '.join(f'{k} {v}' for k, v in m['counts']['per_split'].items())}), {len(m['shards'])} shard files "
        f"({result.shards_reused} reused), {len(m['rejected'])} rejected")
    for note in m.get("scan", {}).get("notes", []):
        say(("scan note", "yellow"), f": {note}")
    for note in m["splits"]["notes"]:
        say(("split note", "yellow"), f": {note}")
    for r in m["rejected"]:
        say(("rejected", "yellow"), f" {r['source_path']}: {r['reason']}: {r['detail']}")
    return 0
