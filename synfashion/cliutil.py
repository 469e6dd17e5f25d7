"""What both commands (`synfashion`, `r2r`) share in parsing: every option's default shown in `--help`, and sizes.

Why: a user choosing `--shard-size` or `--strength` must see what they get without it, for every subcommand alike.
"""

from __future__ import annotations

import argparse


class DefaultsHelpFormatter(argparse.HelpFormatter):
    """Appends "(default: X)" to every option that takes a value and has a default, unless the help says it.

    Unlike argparse.ArgumentDefaultsHelpFormatter it skips on/off flags (their default is "off") and defaults of
    None (the help text says what happens then), and it shows an empty-string default as ''.
    """

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        if (not action.option_strings or action.nargs == 0 or default is None or default is argparse.SUPPRESS
                or "%(default)" in text or "default" in text.lower()):
            return text
        shown = "''" if default == "" else "%(default)s"
        return f"{text} (default: {shown})" if text else f"(default: {shown})"


def parse_size(text: str) -> int:
    """'256MB', '1GiB', '5000000' -> bytes."""
    t = text.strip().upper().replace("IB", "B")
    for unit, mult in (("KB", 2**10), ("MB", 2**20), ("GB", 2**30), ("B", 1)):
        if t.endswith(unit):
            return int(float(t[: -len(unit)]) * mult)
    return int(t)
