"""The `r2r` command. Argument parsing and dispatch only; each subcommand lives in its own module of r2r/commands/.

Why this shape: every command module exposes `register(subparsers)`, which adds its parsers (their options built
from the config dataclasses, each default written once) and sets `func`. Adding a command is one line in
COMMAND_MODULES. Expected failures (bad input, missing files, a full disk, a busy output folder) print one clear
line and exit with status 2. Every subcommand's `--help` shows its defaults (synfashion/cliutil.py).
"""

from __future__ import annotations

import argparse
import functools
import sys
from types import ModuleType

from rich.console import Console

from .cliargs import DefaultsHelpFormatter
from .commands import ablate, dki, downstream, evaluate, push_model, report, study, tiny, translate

# Modules with a `register(subparsers)` function, in the order their commands are listed.
COMMAND_MODULES: tuple[ModuleType, ...] = (translate, evaluate, report, study, tiny, dki, push_model, downstream,
                                           ablate)


def build_parser(modules: tuple[ModuleType, ...] = COMMAND_MODULES) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="r2r", description="FashionR2R rendered-to-real translation (RIG) with diffusers models.",
        formatter_class=DefaultsHelpFormatter,
    )
    subparsers = parser.add_subparsers(
        dest="command", required=True, metavar="COMMAND",
        parser_class=functools.partial(argparse.ArgumentParser, formatter_class=DefaultsHelpFormatter),
    )
    for module in modules:
        module.register(subparsers)
    return parser


# What a command raises for bad input or a bad environment: printed as one line, exit status 2. NoSpaceError is an
# OSError (a full disk); FolderBusyError (another run holds the output folder) is a RuntimeError.
EXPECTED_ERRORS: tuple[type[BaseException], ...] = (
    ValueError, FileNotFoundError, FileExistsError, RuntimeError,
    PermissionError, IsADirectoryError, NotADirectoryError,  # an output path a user mistyped: one line, not a trace
)


def run_command(args: argparse.Namespace) -> int:
    """Run a parsed command; expected errors become one line on stderr and exit status 2, Ctrl-C one line and exit
    status 130 (synfashion/cliexit.py)."""
    from rich.markup import escape

    from synfashion import cliexit
    from synfashion.fs.space import NoSpaceError
    from synfashion.quiet import library_bars

    # soft_wrap: a message stays one line whatever the terminal width (rich would wrap it); escape: messages quote
    # file names, which are never read as markup
    console = Console(stderr=True, soft_wrap=True)
    with library_bars(not getattr(args, "no_progress", False)):
        return cliexit.run(args.func, args, expected=(*EXPECTED_ERRORS, NoSpaceError),
                           show_error=lambda text: console.print(f"[red]error[/]: {escape(text)}", highlight=False),
                           show_interrupted=lambda text: console.print(f"[yellow]{escape(text)}[/]", highlight=False))


def main(argv: list[str] | None = None) -> int:
    return run_command(build_parser().parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
