"""The `r2r` subcommands, argparse only: one module per command or family, each with `register(subparsers)`.

Each option's flag, help and default come from the config dataclass field it fills (`synfashion.cliutil.option`);
a flag written by hand here fills no config field, and says so. A command module imports no torch at import time
(its handler imports the work), so `r2r --help` stays instant. r2r/cli.py lists these modules in order.
"""
