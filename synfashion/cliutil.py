"""What both commands (`synfashion`, `r2r`) share in parsing: options declared on config dataclass fields, every
option's default shown in `--help`, and sizes.

Why: a default written twice (once in a config dataclass, once in `add_argument`) drifts. So a config field that is
also a command-line option says so where its default is written:

    strength: float = option("--strength", default=0.3, type=float, help="fraction of the schedule ...")

`add_options(parser, Config, names)` adds such fields to a parser or argument group (flag, help, type, choices and
default, all from the field), and `from_args(Config, args, **values)` builds the dataclass back from the parsed
namespace, converting what the command line spells differently (comma-separated lists, 'none', sizes such as
'256MB', `--no-x` switches). Each action it adds keeps its field (`action.config`), so tests/test_cli_defaults.py can
compare every default `--help` shows with the dataclass. A user choosing `--shard-size` or `--strength` sees what
they get without it, for every subcommand alike (`DefaultsHelpFormatter`). Declaring an option imports nothing but
the standard library, so torch-free config modules stay torch-free.
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

_KEY = "cli"  # the field metadata key that holds a field's Option
# Every command's --no-progress says the same (synfashion/quiet.py: the libraries' own bars follow it).
NO_PROGRESS_HELP = ("no progress bars, ours or the Hugging Face libraries' (theirs are also off when stderr is not a "
                    "terminal)")


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


def printable(text: str) -> str:
    """`text` with control characters and undecodable bytes escaped as Python writes them ("\\n", "\\x1b",
    "\\udcff"), so a name from data (a file name, a method name in a votes file) can neither move the cursor
    nor recolour a terminal, wherever it is printed or written as text. Other Unicode is kept."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def parse_size(text: str) -> int:
    """'256MB', '1GiB', '5000000' -> bytes."""
    t = text.strip().upper().replace("IB", "B")
    for unit, mult in (("KB", 2**10), ("MB", 2**20), ("GB", 2**30), ("B", 1)):
        if t.endswith(unit):
            return int(float(t[: -len(unit)]) * mult)
    return int(t)


def format_size(n: int) -> str:
    """268435456 -> '256MB' (the largest unit that divides it; `parse_size` reads it back)."""
    for unit, mult in (("GB", 2**30), ("MB", 2**20), ("KB", 2**10)):
        if n and n % mult == 0:
            return f"{n // mult}{unit}"
    return str(n)


def comma_tuple(text: str) -> tuple[str, ...]:
    """'a, b,' -> ('a', 'b'): a comma-separated option."""
    return tuple(t.strip() for t in text.split(",") if t.strip())


def comma_tuple_or_none(text: str | None) -> tuple[str, ...] | None:
    """A comma-separated filter: not given (None or '') keeps everything."""
    return comma_tuple(text) if text else None


def comma_text(values: Iterable[str]) -> str:
    """('a', 'b') -> 'a,b': how `--help` shows a comma-separated default."""
    return ",".join(values)


@dataclasses.dataclass(frozen=True)
class Option:
    """How one config field is spelled on the command line (see `option`)."""

    flag: str  # "--strength"; without a leading '-', a positional argument of that name
    help: str | None = None
    type: Callable[[str], Any] | None = None  # argparse's: command-line text -> value (a bad value: usage error)
    parse: Callable[[Any], Any] | None = None  # parsed value -> field value, when the config is built (one-line error)
    show: Callable[[Any], Any] | None = None  # field default -> argparse default (what --help shows, `parse` reads)
    choices: Sequence[Any] | None = None
    metavar: str | None = None
    dest: str | None = None  # the namespace attribute (default: argparse's, from the flag)
    append: bool = False  # repeatable, each use one item; not given: the field's default
    nargs: str | None = None
    const: Any = None

    def dest_for(self, flag: str | None = None) -> str:
        flag = flag or self.flag
        return self.dest or flag.lstrip("-").replace("-", "_")

    def switch(self, default: Any) -> bool:
        """A bool field is an on/off switch: `--x` turns a False field on, `--no-x` turns a True field off."""
        return isinstance(default, bool) and self.type is None and self.choices is None

    def value(self, given: Any, default: Any) -> Any:
        """The field value for what argparse parsed (`given`)."""
        if self.switch(default):
            return not given if self.flag.startswith("--no-") else given
        if given is None:  # a repeatable option never given: the field's own default
            return default if self.append else None
        if self.append:
            given = tuple(given)
        return self.parse(given) if self.parse else given


def option(flag: str, *, default: Any = dataclasses.MISSING, default_factory: Any = dataclasses.MISSING,
           **kwargs: Any) -> Any:
    """A dataclass field that is also a command-line option: the default is written here and nowhere else.

    `kwargs` are `Option`'s (help, type, parse, show, choices, metavar, dest, append, nargs, const). A bool field
    becomes a switch; a field without a default, a required option (or a positional argument).
    """
    return dataclasses.field(default=default, default_factory=default_factory,
                             metadata={_KEY: Option(flag, **kwargs)})


def reuse(cls: type, name: str, **changes: Any) -> Any:
    """Field `name` of dataclass `cls` again, for another config that takes the same setting (same default, same
    option; `changes` replaces parts of the option, e.g. its help)."""
    f = {f.name: f for f in dataclasses.fields(cls)}[name]
    opt = f.metadata.get(_KEY)
    meta = {_KEY: dataclasses.replace(opt, **changes)} if opt is not None else {}
    return dataclasses.field(default=f.default, default_factory=f.default_factory, metadata=meta)


def options(cls: type) -> dict[str, Option]:
    """The fields of `cls` that are command-line options, in declaration order."""
    return {f.name: f.metadata[_KEY] for f in dataclasses.fields(cls) if _KEY in f.metadata}


def field_default(cls: type, name: str) -> Any:
    """A field's default (called for a default_factory); MISSING for a required field."""
    f = {f.name: f for f in dataclasses.fields(cls)}[name]
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return dataclasses.MISSING


@dataclasses.dataclass(frozen=True)
class ConfigRef:
    """What an argparse action fills: field `name` of `cls`, whose default (or the command's declared one) is
    `default`. Kept on the action as `action.config`."""

    cls: type
    name: str
    option: Option
    default: Any


def add_options(parser: argparse.ArgumentParser | argparse._ActionsContainer, cls: type,
                names: Iterable[str] | None = None, *, flags: Mapping[str, str] | None = None,
                helps: Mapping[str, str] | None = None,
                defaults: Mapping[str, Any] | None = None) -> dict[str, argparse.Action]:
    """Add the options of dataclass `cls` (`names` in that order; default all, in declaration order) to `parser`.

    flags / helps: another spelling or help for some fields in this command (e.g. `--eval-device` where `--device`
    is the model's). defaults: a command's own default for a field, itself a constant of a config (e.g. a DKI
    method's step count); None means the handler fills the field. Returns the actions by field name.
    """
    opts = options(cls)
    flags, helps, defaults = flags or {}, helps or {}, defaults or {}
    actions = {}
    for name in (names if names is not None else opts):
        opt = opts[name]
        default = defaults[name] if name in defaults else field_default(cls, name)
        has_value = default is not None and default is not dataclasses.MISSING
        shown = opt.show(default) if opt.show is not None and has_value else default  # as the command line spells it
        flag = flags.get(name, opt.flag)
        positional = not flag.startswith("-")
        kwargs: dict[str, Any] = {}
        text = helps.get(name, opt.help)
        if text is not None:  # "{default}" in a help text: the default, as the command line spells it
            kwargs["help"] = text.replace("{default}", comma_text(map(str, shown)) if isinstance(shown, tuple)
                                          else str(shown))
        if opt.switch(default):
            kwargs["action"] = "store_true"
        else:
            if opt.append:
                kwargs["action"] = "append"  # its argparse default stays None: the field's default is not a list
            elif default is not dataclasses.MISSING:
                kwargs["default"] = shown
            if default is dataclasses.MISSING and not positional:
                kwargs["required"] = True
            for key in ("type", "choices", "metavar", "nargs", "const"):
                if getattr(opt, key) is not None:
                    kwargs[key] = getattr(opt, key)
        if opt.dest is not None and not positional:
            kwargs["dest"] = opt.dest
        action = parser.add_argument(flag, **kwargs)
        action.config = ConfigRef(cls, name, opt, default)
        actions[name] = action
    return actions


def from_args(cls: type, args: argparse.Namespace, *, flags: Mapping[str, str] | None = None, **values: Any):
    """Dataclass `cls` from parsed arguments: `values` as given; every option field whose attribute the namespace
    holds, converted (`Option.value`); the rest keep their defaults. `flags`: as given to `add_options`."""
    flags = flags or {}
    kwargs = dict(values)
    for name, opt in options(cls).items():
        if name in kwargs:
            continue
        dest = opt.dest_for(flags.get(name))
        if hasattr(args, dest):
            kwargs[name] = opt.value(getattr(args, dest), field_default(cls, name))
    return cls(**kwargs)
