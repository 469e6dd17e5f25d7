"""`r2r evaluate` (arguments into an `EvalJob`, then one scoring run) and `r2r evaluate-table`.

Every `evaluate` option comes from the `EvalJob` / `MetricSettings` field it fills (r2r/evaluation/run.py). No torch
import here: the handlers import the work.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from synfashion.cliutil import NO_PROGRESS_HELP, add_options, from_args, options

from ..evaluation.run import RANDOM_WARNING, EvalJob, MetricSettings

# the metric settings `r2r ablate` shares (it spells device and batch size --eval-device, --eval-batch-size)
METRIC_OPTIONS = tuple(n for n in options(MetricSettings) if n not in ("real", "device", "batch_size"))


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "evaluate", help="KID to real photos, LPIPS and SSIM to the source: the paper's protocol for any method",
        description="Scores translated images the way the FashionR2R paper does: KID (torch-fidelity 0.3.0's "
                    "protocol) between the translated images and real photos, LPIPS (v0.1, AlexNet) and SSIM "
                    "(Gaussian 11/1.5, valid region) between each translated image and its rendered source. "
                    "--translated is a translated dataset (its manifest names each row's source) or a folder of "
                    "another method's outputs (paired with --source's split by file name, or by --pairs). Writes "
                    "one JSON with the numbers, per category, the exact protocol and every image it could not use.",
    )
    add_options(p, EvalJob, ("translated", "real", "out", "source", "split", "method", "pairs_csv", *METRIC_OPTIONS,
                             "device", "batch_size", "num_workers", "features_out", "overwrite"))
    p.add_argument("--no-progress", action="store_true", help=NO_PROGRESS_HELP)  # evaluate()'s, no setting
    # the command's exit status only (the JSON lists unreadable images either way), so no setting
    p.add_argument("--skip-bad-images", action="store_true",
                   help="images that do not decode are left out as always (each listed in the JSON), and do not "
                        "make the exit status 1")
    p.set_defaults(func=_cmd_evaluate)

    # no settings: result files in, tables out
    p = subparsers.add_parser("evaluate-table", help="the paper-style table of several `r2r evaluate` results",
                              description="Puts `r2r evaluate` JSON files side by side (rows in the order given): a "
                                          "rich table, and optionally markdown and CSV. Rows whose protocol differs "
                                          "from the first row's are marked.")
    p.add_argument("results", nargs="+", type=Path, help="JSON files written by `r2r evaluate`")
    p.add_argument("--markdown", help="write the markdown table here ('-': stdout)")
    p.add_argument("--csv", help="write the CSV here ('-': stdout)")
    p.add_argument("--per-category", action="store_true", help="add a row per category under each method")
    p.set_defaults(func=_cmd_table)


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from rich.console import Console

    from ..evaluation.run import evaluate, problem_count

    job = from_args(EvalJob, args)
    result = evaluate(job, progress=not args.no_progress)
    console = Console(stderr=True)
    if result["protocol"]["random_weights"]:
        console.print(f"[bold red]{RANDOM_WARNING}[/]")
    kid = result["kid_x1000"]
    kid_text = "n/a" if kid is None else f"{kid:.3f} ({result['kid_std_x1000']:.3f})"
    console.print(
        f"[green]{result['method']}[/]: n={result['n']}  KIDx1000 {kid_text}  LPIPS {result['lpips']:.4f} "
        f"({result['lpips_std']:.4f})  SSIM {result['ssim']:.4f} ({result['ssim_std']:.4f}) -> {job.out}",
        highlight=False,
    )
    problems = problem_count(result)
    unreadable = len(result["problems"]["unreadable"]) + len(result["problems"]["real_unreadable"])
    if problems:
        skip = ("; unreadable images accepted (--skip-bad-images)" if args.skip_bad_images
                else "; pass --skip-bad-images to accept unreadable images" if unreadable else "")
        console.print(f"[yellow]{problems} problem(s)[/]: unpaired {len(result['problems']['unpaired'])}, unreadable "
                      f"{len(result['problems']['unreadable'])}, untranslated "
                      f"{len(result['problems']['untranslated'])}, unreadable real "
                      f"{len(result['problems']['real_unreadable'])} (listed in {job.out}){skip}", highlight=False)
    return 1 if problems - (unreadable if args.skip_bad_images else 0) else 0


def _cmd_table(args: argparse.Namespace) -> int:
    from ..evaluation.table import csv_text, load_results, markdown, print_rich, write_output

    results = load_results(args.results)
    print_rich(results, args.per_category)
    if args.markdown:
        write_output(args.markdown, markdown(results, args.per_category))
    if args.csv:
        write_output(args.csv, csv_text(results, args.per_category))
    return 0
