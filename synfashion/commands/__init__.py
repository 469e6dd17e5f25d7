"""The `synfashion` subcommands, argparse only: one module per command or family, each with `register(subparsers)`.

Each option's flag, help and default come from the config dataclass field it fills (`synfashion.cliutil.option`);
a flag written by hand here fills no config field, and says so. synfashion/cli.py lists these modules in order.
Also the commands' console and `say`, their one way to print a line that holds names from a release.
"""

from __future__ import annotations

from rich.console import Console
from rich.text import Text

console = Console(stderr=True)


def say(label: tuple[str, str], text: str) -> None:
    """One line: a coloured label, then `text` exactly as it is. Names from a release may hold rich markup
    ("x[/bold].jpg") or control characters; Text never parses markup, and `printable` escapes control characters, so
    a name can neither crash the output nor drive the terminal."""
    from ..release.scan import printable

    console.print(Text.assemble(label, printable(text)), highlight=False, soft_wrap=True)
