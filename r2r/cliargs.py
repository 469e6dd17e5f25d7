"""argparse pieces every `r2r` subcommand shares: help that shows defaults, and deprecated option names.

Why: a user choosing `--strength` or `--lr` must see what they get without it, in `--help`, for every subcommand
alike; and renaming an option (`train-negative --token` became `--placeholder-token`, since `--token` means the
Hub token elsewhere) must not break scripts for a release. No torch import here (`r2r --help` stays instant).
"""

from __future__ import annotations

import argparse
import sys

from synfashion.cliutil import DefaultsHelpFormatter


def add_parser(subparsers: argparse._SubParsersAction, name: str, **kwargs) -> argparse.ArgumentParser:
    """`subparsers.add_parser` with the defaults-showing help formatter."""
    return subparsers.add_parser(name, formatter_class=DefaultsHelpFormatter, **kwargs)


class DeprecatedAlias(argparse.Action):
    """An old option name that still works, and says once on stderr which name replaces it."""

    def __init__(self, option_strings, dest, new_name: str, **kwargs):
        self.new_name = new_name
        super().__init__(option_strings, dest, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None):
        print(f"warning: {option_string} is deprecated and will be removed in the next release; use "
              f"{self.new_name}", file=sys.stderr)
        setattr(namespace, self.dest, values)


def deprecated_alias(parser: argparse.ArgumentParser | argparse._ArgumentGroup, old: str, new: str, dest: str,
                     **kwargs) -> None:
    """Keep `old` working as a hidden alias of `new` (same dest) that warns when used."""
    parser.add_argument(old, dest=dest, action=DeprecatedAlias, new_name=new, help=argparse.SUPPRESS,
                        default=argparse.SUPPRESS, **kwargs)
