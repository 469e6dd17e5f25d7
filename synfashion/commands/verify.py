"""`synfashion verify`: re-hash and re-read a built folder (synfashion/verify.py); exit 1 when anything is wrong."""

from __future__ import annotations

import argparse

from rich.console import Console

from ..parallel import default_workers


def register(subparsers: argparse._SubParsersAction) -> None:
    v = subparsers.add_parser("verify",
                              help="re-hash shards and samples, check Parquet/WebDataset parity and split leaks")
    v.add_argument("out")  # the folder checked
    # verify_dataset's, no setting: the machine's cores
    v.add_argument("--workers", type=int, default=default_workers(), help="shards checked in parallel")
    v.set_defaults(func=cmd_verify)


def cmd_verify(args: argparse.Namespace) -> int:
    from ..verify import verify_dataset

    report = verify_dataset(args.out, workers=args.workers, progress=True)  # progress on stderr
    console = Console(soft_wrap=True)  # the verdict is the command's result: stdout, one line
    checked = ", ".join(f"{v} {k}" for k, v in report.checked.items())
    if report.ok:
        console.print(f"[green]OK[/] {args.out}: {checked}")
        return 0
    console.print(f"[red]FAILED[/] {args.out}: {len(report.problems)} problem(s) ({checked})")
    for p in report.problems[:200]:
        console.print(f"  - {p}", markup=False, highlight=False)
    return 1
