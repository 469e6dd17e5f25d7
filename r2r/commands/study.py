"""`r2r study-page` (arguments into `StudySettings`, then one page: r2r/pages/study.py) and `r2r study-results`
(the votes files counted: r2r/pages/study_results.py). The page's settings come from their fields; inputs and
outputs are written here. No torch import.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from synfashion.cliutil import add_options, from_args

from ..cliargs import add_parser
from ..pages.images import PictureSettings
from ..pages.study import StudySettings


def register(subparsers: argparse._SubParsersAction) -> None:
    p = add_parser(
        subparsers, "study-page", help="a static pairwise preference page (user study) from `r2r evaluate` results",
        description="Writes OUT/index.html: one trial at a time, the rendered source and two methods' outputs in "
                    "seeded random left/right order, three questions (realism, quality, consistency with the "
                    "source) answered with keys 1/2 or buttons; votes stay in the browser and download as JSON "
                    "for `r2r study-results`. The first file is the reference, compared with each other file.",
    )
    # what is read and where the page goes (no settings of the page)
    p.add_argument("results", nargs="+", metavar="EVAL_JSON",
                   help="`r2r evaluate` result files: the reference first, then the methods to compare it with")
    p.add_argument("--out", required=True, help="folder for the page, study.json and the pictures")
    p.add_argument("--overwrite", action="store_true",  # write_study's, not a setting of the page
                   help="replace a page of other settings in --out (it may have gone to raters; only what "
                        "study-page wrote is replaced)")
    add_options(p, StudySettings)
    add_options(p, PictureSettings)
    p.set_defaults(func=_cmd_page)

    # no settings: votes files in, tables out
    p = add_parser(subparsers, "study-results", help="percentages of preference votes from `r2r study-page` exports",
                   description="Counts the votes files downloaded from `r2r study-page` pages: per comparison and "
                               "question, the percentage of votes preferring each method, as in the paper's "
                               "user-study table. A malformed file is refused with one line naming it.")
    p.add_argument("votes", nargs="+", metavar="VOTES_JSON", help="exported votes files (one per participant)")
    p.add_argument("--markdown", help="also write the markdown table here ('-': stdout instead of the rich table)")
    p.add_argument("--json", help="also write the counts as JSON here ('-': stdout instead of the rich table)")
    p.set_defaults(func=_cmd_results)


def _cmd_page(args: argparse.Namespace) -> int:
    from rich.console import Console

    from ..evaluation.table import shown as escape  # markup and control characters of names from users escaped
    from ..pages.study import QUESTIONS, STUDY_HTML, STUDY_JSON, write_study
    from ..quiet import quiet_dataset_bars

    settings = from_args(StudySettings, args, pictures=from_args(PictureSettings, args))
    quiet_dataset_bars()
    record = write_study([Path(p) for p in args.results], Path(args.out), settings, overwrite=args.overwrite)
    console = Console(stderr=True, soft_wrap=True)
    for x in record["left_out"]:
        console.print(f"[yellow]left out[/] {escape(x['source_key'])}: {escape(x['reason'])}", highlight=False)
    console.print(f"study {record['id']}: {len(record['trials'])} pairs x {len(QUESTIONS)} questions, methods "
                  f"{escape(', '.join(record['methods']))} -> {escape(str(Path(args.out) / STUDY_HTML))} (what was "
                  f"drawn: {escape(str(Path(args.out) / STUDY_JSON))})", highlight=False)
    return 0


def _cmd_results(args: argparse.Namespace) -> int:
    from ..evaluation.table import write_output
    from ..pages.study_results import as_json, load_votes, markdown, print_rich, tally

    files = [load_votes(Path(p)) for p in args.votes]
    comparisons = tally(files)
    if args.markdown != "-" and args.json != "-":
        print_rich(comparisons, files)
    if args.markdown:
        write_output(args.markdown, markdown(comparisons, files))
    if args.json:
        write_output(args.json, json.dumps(as_json(comparisons, files), indent=1, ensure_ascii=False) + "\n")
    return 0
