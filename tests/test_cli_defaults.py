"""The helper that declares command-line options on config dataclass fields (synfashion/cliutil.py): each default
written once, in the field."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import pytest

from synfashion.cliutil import DefaultsHelpFormatter, add_options, comma_text, comma_tuple, from_args, option, reuse


# --- the helper ----------------------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class _Toy:
    name: str = option("name", help="a positional")
    path: Path = option("--path", type=Path, help="required")
    level: int = option("--level", default=3, type=int, help="a number")
    tags: tuple[str, ...] = option("--tags", default=("a", "b"), parse=comma_tuple, show=comma_text, help="tags")
    item: tuple[str, ...] = option("--item", default=("x",), append=True, help="repeatable (default {default})")
    loud: bool = option("--loud", default=False, help="a switch")
    cache: bool = option("--no-cache", default=True, help="a switch that turns a True field off")
    limit: int | None = option("--limit", default=None, type=lambda t: None if t == "none" else int(t), help="n")
    internal: int = 7  # no option


@dataclasses.dataclass(frozen=True)
class _Other:
    level: int = reuse(_Toy, "level", help="the same setting elsewhere")


def _toy_parser(**kw) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(formatter_class=DefaultsHelpFormatter)
    add_options(p, _Toy, **kw)
    return p


def test_helper_round_trip():
    p = _toy_parser()
    assert from_args(_Toy, p.parse_args(["n", "--path", "p"])) == _Toy("n", Path("p"))
    args = p.parse_args(["n", "--path", "p", "--level", "4", "--tags", "c, d,", "--item", "y", "--item", "z",
                         "--loud", "--no-cache", "--limit", "none"])
    assert from_args(_Toy, args, internal=8) == _Toy("n", Path("p"), 4, ("c", "d"), ("y", "z"), True, False, None, 8)
    assert from_args(_Toy, p.parse_args(["n", "--path", "p", "--limit", "5"])).limit == 5
    text = " ".join(p.format_help().split())
    assert "--level LEVEL a number (default: 3)" in text and "--tags TAGS tags (default: a,b)" in text
    assert "repeatable (default x)" in text and "--loud a switch" in text
    with pytest.raises(SystemExit):
        p.parse_args(["n"])  # --path is required: its field has no default


def test_helper_flags_helps_defaults_and_reuse():
    p = _toy_parser(names=("name", "path", "level"), flags={"level": "--depth"}, helps={"level": "how deep"},
                    defaults={"level": 9})
    args = p.parse_args(["n", "--path", "p"])
    assert args.depth == 9 and from_args(_Toy, args, flags={"level": "--depth"}).level == 9
    assert not hasattr(args, "tags") and from_args(_Toy, args, flags={"level": "--depth"}).tags == ("a", "b")
    assert "how deep (default: 9)" in " ".join(p.format_help().split())
    q = argparse.ArgumentParser()
    (action,) = add_options(q, _Other).values()
    assert action.default == 3 and action.help == "the same setting elsewhere" and action.config.cls is _Other
    assert from_args(_Other, q.parse_args(["--level", "5"])) == _Other(5)
