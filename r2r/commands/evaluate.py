"""`r2r evaluate` (arguments into an `EvalJob`, then one scoring run), `r2r evaluate-stats` (a `StatsJob`: a real
set's reference statistics as shareable files) and `r2r evaluate-table`.

Every `evaluate` / `evaluate-stats` option comes from the `EvalJob` / `MetricSettings` / `StatsJob` field it fills
(r2r/evaluation/run.py). No torch import here: the handlers import the work.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from synfashion.cliutil import NO_PROGRESS_HELP, add_options, from_args, options

from ..evaluation.run import RANDOM_WARNING, EvalJob, MetricSettings, StatsJob
from ..evaluation.spaces import SPACES

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
                    "one JSON with the numbers, per category, the exact protocol and every image it could not use. "
                    "--features adds FD and KID in the DINOv2 / CLIP spaces (FID is always in the JSON). The real "
                    "set's features are cached (--stats-cache), so the next method scored against the same photos "
                    "computes none; --real-stats reads files written by r2r evaluate-stats instead of --real.",
    )
    add_options(p, EvalJob, ("translated", "real", "out", "source", "split", "method", "pairs_csv", *METRIC_OPTIONS,
                             "device", "batch_size", "num_workers", "features_out", "overwrite"))
    p.add_argument("--no-progress", action="store_true", help=NO_PROGRESS_HELP)  # evaluate()'s, no setting
    # the command's exit status only (the JSON lists unreadable images either way), so no setting
    p.add_argument("--skip-bad-images", action="store_true",
                   help="images that do not decode are left out as always (each listed in the JSON), and do not "
                        "make the exit status 1")
    p.set_defaults(func=_cmd_evaluate)

    p = subparsers.add_parser(
        "evaluate-stats", help="a real set's reference statistics as a shareable file (for --real-stats)",
        description="Computes (or takes from the statistics cache) the features of a set of real photos in each "
                    "--features space and writes them as a statistics file: safetensors, the features in the set's "
                    "order, with the network, its weights' digest, the preprocessing protocol and the images' "
                    "digest in its metadata. `r2r evaluate --real-stats FILE` then scores against it without the "
                    "photos, and refuses a file made with another network, weights or protocol.",
    )
    add_options(p, StatsJob, ("real", "out", "real_split", "features", "inception_weights", "dinov2_weights",
                              "clip_weights", "random_weights", "weights_seed", "allow_download", "stats_cache",
                              "use_stats_cache", "device", "batch_size", "num_workers", "overwrite"))
    p.add_argument("--no-progress", action="store_true", help=NO_PROGRESS_HELP)  # make_stats()'s, no setting
    p.set_defaults(func=_cmd_stats)

    # no settings: result files in, tables out
    p = subparsers.add_parser("evaluate-table", help="the paper-style table of several `r2r evaluate` results",
                              description="Puts `r2r evaluate` JSON files side by side (rows in the order given): a "
                                          "rich table, and optionally markdown and CSV. Rows whose protocol differs "
                                          "from the first row's are marked.")
    p.add_argument("results", nargs="+", type=Path, help="JSON files written by `r2r evaluate`")
    p.add_argument("--markdown", help="write the markdown table here ('-': stdout)")
    p.add_argument("--csv", help="write the CSV here ('-': stdout)")
    p.add_argument("--per-category", action="store_true", help="add a row per category under each method")
    p.add_argument("--space", choices=SPACES, default=None,
                   help="show KID, FD (and precision/recall where computed) in this feature space instead of the "
                        "paper's KID (default: the paper's table: Inception KID, LPIPS, SSIM)")
    p.set_defaults(func=_cmd_table)


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from r2r.progress import stderr_console

    from ..evaluation.run import evaluate, problem_count, tune_allocator

    job = from_args(EvalJob, args)
    tune_allocator()
    result = evaluate(job, progress=not args.no_progress)
    console = stderr_console()
    if result["protocol"]["random_weights"]:
        console.print(f"[bold red]{RANDOM_WARNING}[/]")
    kid = result["kid_x1000"]
    kid_text = "n/a" if kid is None else f"{kid:.3f} ({result['kid_std_x1000']:.3f})"
    fid = result["spaces"]["inception"]["fd"]
    console.print(
        f"[green]{result['method']}[/]: n={result['n']}  KIDx1000 {kid_text}  FID "
        f"{'n/a' if fid is None else f'{fid:.3f}'}  LPIPS {result['lpips']:.4f} ({result['lpips_std']:.4f})  SSIM "
        f"{result['ssim']:.4f} ({result['ssim_std']:.4f}) -> {job.out}",
        highlight=False,
    )
    for space, numbers in result["spaces"].items():
        if space != "inception":
            kid, fd = numbers["kid_x1000"], numbers["fd"]
            console.print(f"  {space}: KIDx1000 {'n/a' if kid is None else f'{kid:.3f}'}  FD "
                          f"{'n/a' if fd is None else f'{fd:.3f}'}", highlight=False)
    cached = [s for s, o in result["inputs"]["real_features"].items() if o["from"] != "computed"]
    if cached:
        console.print(f"  real features of {', '.join(cached)}: from "
                      f"{', '.join(sorted({result['inputs']['real_features'][s]['from'] for s in cached}))} "
                      "(not recomputed)", highlight=False)
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


def _cmd_stats(args: argparse.Namespace) -> int:
    from r2r.progress import stderr_console
    from rich.markup import escape

    from ..evaluation.run import make_stats, tune_allocator

    job = from_args(StatsJob, args)
    tune_allocator()
    written = make_stats(job, progress=not args.no_progress)
    console = stderr_console()
    if job.random_weights:
        console.print(f"[bold red]{RANDOM_WARNING}[/]")
    for w in written:
        console.print(f"[green]{w['space']}[/] ({escape(w['network'])}): {w['n']} images, features "
                      f"{w['from']} -> {escape(str(w['path']))}", highlight=False)
    return 0


def _cmd_table(args: argparse.Namespace) -> int:
    from ..evaluation.table import (
        csv_text,
        load_results,
        markdown,
        print_rich,
        write_output,
    )

    results = load_results(args.results)
    print_rich(results, args.per_category, args.space)
    if args.markdown:
        write_output(args.markdown, markdown(results, args.per_category, args.space))
    if args.csv:
        write_output(args.csv, csv_text(results, args.per_category))
    return 0
