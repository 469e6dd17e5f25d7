"""Package SynFashion as a Hugging Face dataset (Parquet, WebDataset, card, manifest), check it, and publish it on
the Hub. `synfashion sample` writes a small release to try every command on."""

# (This docstring is `synfashion --help`'s description.) Argument parsing and dispatch only: each subcommand lives
# in its own module of synfashion/commands/, its options built from the config dataclasses (each default written
# once). How a run ends (an error, Ctrl-C) is synfashion/cliexit.py.

from __future__ import annotations

import argparse
import functools
import sys
from types import ModuleType

from . import cliexit
from .cliutil import DefaultsHelpFormatter
from .quiet import library_bars
from .commands import build, hub, sample, say, stats, verify

# Modules with a `register(subparsers)` function, in the order their commands are listed.
COMMAND_MODULES: tuple[ModuleType, ...] = (sample, build, verify, stats, hub)


def make_parser(modules: tuple[ModuleType, ...] = COMMAND_MODULES) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="synfashion", description=__doc__.strip(), formatter_class=DefaultsHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True,
                           parser_class=functools.partial(argparse.ArgumentParser,
                                                          formatter_class=DefaultsHelpFormatter))
    for module in modules:
        module.register(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    args = make_parser().parse_args(argv)

    def show_error(text: str) -> None:
        for i, line in enumerate(text.split("\n")):  # messages quote names and patterns: never read as markup
            say(("error", "red") if i == 0 else ("", ""), (": " if i == 0 else "") + line)

    with library_bars(not getattr(args, "no_progress", False)):
        return cliexit.run(args.func, args, expected=(ValueError, RuntimeError, OSError), show_error=show_error,
                           show_interrupted=lambda text: say((text, "yellow"), ""))


if __name__ == "__main__":
    sys.exit(main())
