"""What a translation run records about itself, for both commands: the library versions, and how two runs' settings
differ (a run into a folder made with other settings is refused, naming the differences). No torch at import."""

from __future__ import annotations

import platform


def versions() -> dict:
    import diffusers
    import torch
    import transformers

    from synfashion import __version__ as synfashion_version

    return {"torch": torch.__version__, "diffusers": diffusers.__version__, "transformers": transformers.__version__,
            "python": platform.python_version(), "synfashion": synfashion_version}


def differences(old: dict, new: dict, prefix: str = "") -> list[str]:
    """'a.b: old -> new' for every leaf that differs between two nested settings dicts (values shortened)."""
    def shown(v) -> str:
        text = repr(v)
        return text[:60] + "…" if len(text) > 60 else text

    out = []
    for k in sorted(set(old) | set(new)):
        a, b = old.get(k), new.get(k)
        if isinstance(a, dict) and isinstance(b, dict):
            out += differences(a, b, f"{prefix}{k}.")
        elif a != b:
            out.append(f"{prefix}{k}: {shown(a)} -> {shown(b)}")
    return out
