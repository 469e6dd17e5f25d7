"""The one settings comparison: what differs between the settings a folder records and the settings of this run.

Every command that refuses to mix two runs in one folder (build, translate-images, translate-dataset, ablate, DKI
training's --resume, downstream) names the settings that differ, and only those, with this function.

Why normalise first: settings come back from JSON (lists, strings) and are compared with settings built in this
process (tuples, Paths, dataclasses). `[]` and `()` are the same setting; so are `Path("a")` and `"a"` (and `1` and
`1.0`, as Python compares them). A comparison that sees a type change as a change refuses the very rerun it exists
to allow (a refusal that listed `params.tac_blocks: [] -> ()`). Nested dicts are compared field by field, so a
refusal names `method_config.lora_rank: 16 -> 8`, never two whole dicts. Reads nothing, writes nothing.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Iterable, Mapping
from pathlib import PurePath
from typing import Any

_SHOWN_CHARS = 60  # a value longer than this is cut in a message


def normalise(value: Any) -> Any:
    """`value` as JSON would bring it back: tuples and sets as lists, Paths as strings, dataclasses and mappings as
    dicts with string keys, enums as their values."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = dataclasses.asdict(value)
    if isinstance(value, Mapping):
        return {str(k): normalise(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [normalise(v) for v in value]
    if isinstance(value, (set, frozenset)):
        return sorted((normalise(v) for v in value), key=repr)
    if isinstance(value, PurePath):
        return str(value)
    if isinstance(value, enum.Enum):
        return normalise(value.value)
    return value  # numbers compare as numbers already: 1 == 1.0


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= _SHOWN_CHARS else text[:_SHOWN_CHARS - 1] + "…"


def differences(old: Mapping | None, new: Mapping | None, *, ignore: Iterable[str] = ()) -> list[str]:
    """'a.b: old -> new' for every setting (leaf) that differs once both sides are normalised; a setting that only
    one side has counts as None there. `ignore`: dotted names (or their prefixes) left out of the
    comparison, e.g. a plan derived from the other settings."""
    skipped = tuple(ignore)
    out: list[str] = []

    def walk(a: Any, b: Any, name: str) -> None:
        if any(name == s or name.startswith(s + ".") for s in skipped):
            return
        if isinstance(a, dict) and isinstance(b, dict):
            for k in sorted(set(a) | set(b)):
                walk(a.get(k), b.get(k), f"{name}.{k}" if name else k)
        elif a != b:
            out.append(f"{name}: {_shown(a)} -> {_shown(b)}")

    walk(normalise(dict(old or {})), normalise(dict(new or {})), "")
    return out


def summary(diffs: list[str], limit: int = 6) -> str:
    """The differences for a one-line message: the first `limit`, then how many more."""
    shown = "; ".join(diffs[:limit])
    return shown + (f"; and {len(diffs) - limit} more" if len(diffs) > limit else "")


__all__ = ["differences", "normalise", "summary"]
