"""The `synfashion` command: sample, build, verify, stats, push, pull. Argument parsing only; work lives in modules."""

# (This docstring is `synfashion --help`'s description.) Each subcommand lives in its own module of
# synfashion/commands/, its options built from the config dataclasses (each default written once).

from __future__ import annotations

import argparse
import functools
import sys
from types import ModuleType

from .cliutil import DefaultsHelpFormatter
from .commands import build, hub, sample, say, stats, verify

# Modules with a `register(subparsers)` function, in the order their commands are listed.
COMMAND_MODULES: tuple[ModuleType, ...] = (sample, build, verify, stats, hub)


def make_parser(modules: tuple[ModuleType, ...] = COMMAND_MODULES) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="synfashion", description=__doc__, formatter_class=DefaultsHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True,
                           parser_class=functools.partial(argparse.ArgumentParser,
                                                          formatter_class=DefaultsHelpFormatter))
    for module in modules:
        module.register(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    args = make_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (ValueError, RuntimeError, OSError) as e:
        for i, line in enumerate(str(e).split("\n")):  # messages quote names and patterns: never read as markup
            say(("error", "red") if i == 0 else ("", ""), (": " if i == 0 else "") + line)
        return 2


if __name__ == "__main__":
    sys.exit(main())
