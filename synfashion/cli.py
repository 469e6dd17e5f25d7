"""The `synfashion` command: sample, build, verify, stats, push, pull. Argument parsing only; work lives in modules."""

from __future__ import annotations

import argparse
import functools
import sys
from pathlib import Path

from rich.console import Console
from rich.text import Text

from .cliutil import DefaultsHelpFormatter, parse_size

console = Console(stderr=True)


def _say(label: tuple[str, str], text: str) -> None:
    """One line: a coloured label, then `text` exactly as it is. Names from a release may hold rich markup
    ("x[/bold].jpg") or control characters; Text never parses markup, and `printable` escapes control characters, so
    a name can neither crash the output nor drive the terminal."""
    from .release.scan import printable

    console.print(Text.assemble(label, printable(text)), highlight=False, soft_wrap=True)


def cmd_sample(args: argparse.Namespace) -> int:
    from .sample import SampleConfig, generate_sample

    cfg = SampleConfig(
        projects_per_category=args.projects, textures_per_project=args.textures, width=args.width,
        height=args.height, image_format=args.format, seed=args.seed,
    )
    summary = generate_sample(args.out, cfg, workers=args.workers)
    console.print(
        f"[green]sample release[/]: {summary.num_images} images, {summary.num_projects} projects, "
        f"{summary.num_textures} textures -> {summary.root}"
    )
    return 0


def cmd_build(args: argparse.Namespace) -> int:
    from .build import BuildConfig, RejectedInputsError, build_dataset
    from .release.scan import ScanConfig
    from .schema import DEFAULT_PATTERN
    from .splits import SplitConfig

    split_kwargs = {"tie_textures": args.split_by == "project-texture"}
    split = SplitConfig.parse(args.split, **split_kwargs) if args.split else SplitConfig(**split_kwargs)
    config = BuildConfig(
        formats=tuple(f.strip() for f in args.formats.split(",") if f.strip()),
        shard_size=parse_size(args.shard_size),
        split=split,
        scan=ScanConfig(
            pattern=args.pattern or DEFAULT_PATTERN,
            metadata=Path(args.metadata) if args.metadata else None,
            validate=args.validate,
            follow_outside_links=args.follow_outside_links,
        ),
        allow_rejected=args.allow_rejected,
        overwrite=args.overwrite,
        garments=not args.no_garments,
        fsync=args.fsync,
    )
    try:
        result = build_dataset(args.source, args.out, config, workers=args.workers)
    except RejectedInputsError as e:
        for r in e.rejected:  # every one: the build stopped, so no manifest lists them
            _say(("rejected", "yellow"), f" {r.source_path}: {r.reason}: {r.detail}")
        _say(("error", "red"), f": {len(e.rejected)} input file(s) under {args.source} cannot be packaged (listed "
             "above); fix or remove them, or pass --allow-rejected to build without them (each is then listed in "
             "manifest.json)")
        return 2
    m = result.manifest.to_dict()
    _say(("built", "green"), f" {result.out}: {m['counts']['total']} images "
         f"({', '.join(f'{k} {v}' for k, v in m['counts']['per_split'].items())}), {len(m['shards'])} shard files "
         f"({result.shards_reused} reused), {len(m['rejected'])} rejected")
    for note in m.get("scan", {}).get("notes", []):
        _say(("scan note", "yellow"), f": {note}")
    for note in m["splits"]["notes"]:
        _say(("split note", "yellow"), f": {note}")
    for r in m["rejected"]:
        _say(("rejected", "yellow"), f" {r['source_path']}: {r['reason']}: {r['detail']}")
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    from .verify import verify_dataset

    report = verify_dataset(args.out, workers=args.workers, progress=True)
    checked = ", ".join(f"{v} {k}" for k, v in report.checked.items())
    if report.ok:
        console.print(f"[green]OK[/] {args.out}: {checked}")
        return 0
    console.print(f"[red]FAILED[/] {args.out}: {len(report.problems)} problem(s) ({checked})")
    for p in report.problems[:200]:
        console.print(f"  - {p}", markup=False, highlight=False)
    return 1


def cmd_stats(args: argparse.Namespace) -> int:
    from .stats import write_stats

    write_stats(args.out, args.sheets, console=Console())
    return 0


def make_parser() -> argparse.ArgumentParser:
    from .parallel import default_workers
    from .schema import DEFAULT_PATTERN

    p = argparse.ArgumentParser(prog="synfashion", description=__doc__, formatter_class=DefaultsHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True,
                           parser_class=functools.partial(argparse.ArgumentParser,
                                                          formatter_class=DefaultsHelpFormatter))

    s = sub.add_parser("sample", help="generate the embedded sample release (same layout as the real one)")
    s.add_argument("out")
    s.add_argument("--projects", type=int, default=2, help="projects per category")
    s.add_argument("--textures", type=int, default=2, help="textures per project")
    s.add_argument("--width", type=int, default=768)
    s.add_argument("--height", type=int, default=1024)
    s.add_argument("--format", choices=["jpg", "png"], default="jpg")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--workers", type=int, default=default_workers(), help="processes (default: every core)")
    s.set_defaults(func=cmd_sample)

    b = sub.add_parser("build", help="package a release folder as Parquet + WebDataset shards with card and manifest")
    b.add_argument("source", help="release folder: <category>/<image files> (+ optional metadata sidecar)")
    b.add_argument("out", help="output folder (resumed if it holds an interrupted build of the same inputs)")
    b.add_argument("--formats", default="parquet,webdataset",
                   help="comma-separated: parquet (Hub layout, data/), webdataset (tars, webdataset/); default both")
    b.add_argument("--workers", type=int, default=default_workers(),
                   help="processes for checking images and writing shards (default: every core)")
    b.add_argument("--shard-size", default="256MB", help="image bytes per shard, e.g. 256MB")
    b.add_argument("--split", default=None, help="fractions, e.g. train=0.8,validation=0.1,test=0.1")
    b.add_argument("--split-by", choices=["project-texture", "project"], default="project-texture",
                   help="group projects that share a texture (no leak) or split by project only")
    b.add_argument("--pattern", default=None, help=f"file-stem regex with groups project/texture/view; with a '/' "
                   f"it is matched on the path below the category folder (default {DEFAULT_PATTERN!r})")
    b.add_argument("--metadata", default=None, help="CSV/JSONL sidecar keyed by file_name (overrides the pattern)")
    b.add_argument("--follow-outside-links", action="store_true",
                   help="package what symbolic links leading outside the release point to (default: reject them); "
                        "every such link is named in the build's notes")
    b.add_argument("--validate", choices=["structure", "decode"], default="structure",
                   help="structure: PNG CRCs, JPEG marker/scan structure (default); decode: also decode every pixel")
    b.add_argument("--no-garments", action="store_true",
                   help="skip the garments config (one row per garment, 4 view columns: a second copy of the bytes)")
    b.add_argument("--allow-rejected", action="store_true", help="build without rejected inputs (listed in manifest)")
    b.add_argument("--overwrite", action="store_true", help="replace a finished build of other inputs in OUT")
    b.add_argument("--fsync", action="store_true",
                   help="fsync every output before its rename, so a finished build survives a power cut (slower; "
                        "without it a rerun after a power cut re-hashes and rewrites whatever was lost)")
    b.set_defaults(func=cmd_build)

    v = sub.add_parser("verify", help="re-hash shards and samples, check Parquet/WebDataset parity and split leaks")
    v.add_argument("out")
    v.add_argument("--workers", type=int, default=default_workers(), help="shards checked in parallel")
    v.set_defaults(func=cmd_verify)

    st = sub.add_parser("stats", help="tables per split x category x view and a contact sheet per split")
    st.add_argument("out")
    st.add_argument("--sheets", default=None, help="folder for contact-sheet PNGs (default OUT/stats)")
    st.set_defaults(func=cmd_stats)

    from .hub import cli as hub_cli  # push / pull live in their own module

    hub_cli.register(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    args = make_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (ValueError, RuntimeError, OSError) as e:
        for i, line in enumerate(str(e).split("\n")):  # messages quote names and patterns: never read as markup
            _say(("error", "red") if i == 0 else ("", ""), (": " if i == 0 else "") + line)
        return 2


if __name__ == "__main__":
    sys.exit(main())
