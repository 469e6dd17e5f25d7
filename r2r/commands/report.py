"""`r2r report`: arguments into `ReportSettings`, then one page from `r2r evaluate` results or a translate-images
run (r2r/pages/report.py). The page's settings come from their fields; the inputs and the report folder are written
here (they choose what is read and where the page goes, not how it looks). No torch import.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from synfashion.cliutil import add_options, from_args

from ..cliargs import add_parser
from ..pages.images import PictureSettings
from ..pages.report import ReportSettings


def register(subparsers: argparse._SubParsersAction) -> None:
    p = add_parser(
        subparsers, "report", help="HTML page + PNG grid: each source image next to every method's output",
        description="A self-contained page (report.html, pictures in report_files/ beside it) and report.png. "
                    "From `r2r evaluate` JSON files: one row per source image, its rendered source and each "
                    "method's output with per-image LPIPS and SSIM. From a translate-images run (--input/--output): "
                    "rendered next to translated.",
    )
    # what is read and where the page goes (no settings of the page): the handler checks how they combine
    p.add_argument("results", nargs="*", metavar="EVAL_JSON", help="`r2r evaluate` result files, one per method")
    p.add_argument("--out", help="report folder to write: a new or empty folder, or one an earlier `r2r report` "
                                 "wrote (never a folder the report reads, such as --output)")
    p.add_argument("--input", help="the folder given to translate-images --input (instead of EVAL_JSON files)")
    p.add_argument("--output", help="the folder given to translate-images --output")
    add_options(p, ReportSettings, ("limit", "sort"))
    add_options(p, PictureSettings)
    add_options(p, ReportSettings, ("grid_rows",))
    p.set_defaults(func=_cmd)


def _cmd(args: argparse.Namespace) -> int:
    from ..pages.report import content_from_evaluations, content_from_folder, write_report
    from ..quiet import quiet_dataset_bars

    settings = from_args(ReportSettings, args, pictures=from_args(PictureSettings, args))
    if args.input or args.output:
        if args.results:
            raise ValueError("give either `r2r evaluate` JSON files or --input/--output (a translate-images run), "
                             "not both")
        if not (args.input and args.output):
            raise ValueError("--input and --output go together: the folders given to translate-images")
        if not args.out:
            raise ValueError("--out is required: the report folder to write (a folder of its own, not the "
                             "--output folder it reads)")
        content = content_from_folder(Path(args.input), Path(args.output), settings)
        out = Path(args.out)
    else:
        if not args.results:
            raise ValueError("give `r2r evaluate` JSON files (r2r report eval/ours.json eval/cut.json --out report/), "
                             "or --input/--output for a translate-images run")
        folders = [p for p in args.results if Path(p).is_dir()]
        if folders:
            raise ValueError(f"{folders[0]} is a folder: for a translate-images run use --input RENDERS --output "
                             "TRANSLATED; EVAL_JSON arguments are `r2r evaluate` result files")
        if not args.out:
            raise ValueError("--out is required with `r2r evaluate` JSON files: the report folder to write")
        quiet_dataset_bars()
        content = content_from_evaluations([Path(p) for p in args.results], settings)
        out = Path(args.out)
    page, png = write_report(content, out, settings)
    print(f"report: {page} and {png}")
    return 0
