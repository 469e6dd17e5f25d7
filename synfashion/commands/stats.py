"""`synfashion stats`: tables and contact sheets of a built folder (synfashion/stats.py)."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    st = subparsers.add_parser("stats", help="tables per split x category x view and a contact sheet per split")
    # write_stats' input and output folders (no settings)
    st.add_argument("out")
    st.add_argument("--sheets", default=None, help="folder for contact-sheet PNGs (default OUT/stats)")
    st.set_defaults(func=cmd_stats)


def cmd_stats(args: argparse.Namespace) -> int:
    from rich.console import Console

    from ..stats import write_stats

    write_stats(args.out, args.sheets, console=Console())
    return 0
