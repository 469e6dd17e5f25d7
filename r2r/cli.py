"""The `r2r` command. Argument parsing and dispatch only; each subcommand lives in its own module.

Why this shape: subcommands come from several modules (translation now, DKI training later), so every module that
offers one exposes `register(subparsers)`, which adds its parser and sets `func`. Adding a command is one line in
COMMAND_MODULES. Expected failures (bad input, missing files) print one clear line and exit with status 2.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from rich.console import Console

# Modules with a `register(subparsers)` function, in the order their commands are listed.
COMMAND_MODULES: tuple[str, ...] = ("r2r.translate", "r2r.report", "r2r.tiny", "r2r.dki.cli", "r2r.evaluate")


def build_parser(modules: tuple[str, ...] = COMMAND_MODULES) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="r2r", description="FashionR2R rendered-to-real translation (RIG) with diffusers models."
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in modules:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (ValueError, FileNotFoundError, FileExistsError, RuntimeError) as e:
        Console(stderr=True).print(f"[red]error[/]: {e}", highlight=False)
        return 2


if __name__ == "__main__":
    sys.exit(main())
