"""What a user typed: a local path or a Hub repo id. The one rule, and the one way a Hub read failure becomes a line.

Every command that takes a dataset or a model (build sources, translate-dataset, evaluate, DKI data, downstream,
model and artifact flags, push/pull) decides "path or Hub id" here, so `./x`, `~/x`, `/x`, `a/b/c` and `x\\y` are
always paths (a missing one is "not found", never a Hub error), an existing folder wins over a Hub id of the same
spelling, and `owner/name` or `owner/name@revision` is a Hub id. Reading failures of any Hub repo (dataset or model)
are turned into one line naming what was typed, the repo, and what to do by `synfashion.hub.errors.hub_read_error`.
No network and no huggingface_hub import here.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

# A repo name part as the Hub allows it (letters, digits, '-', '_', '.'; no leading '.', no '--' or '..' checks
# here: the Hub answers those); an optional single namespace; an optional @revision (branch, tag or commit).
_PART = r"[A-Za-z0-9][\w.-]{0,95}"
HUB_ID = re.compile(rf"(?P<repo>{_PART}(?:/{_PART})?)(?:@(?P<revision>[\w./-]+))?")
COMMIT = re.compile(r"[0-9a-f]{40}")


class RefError(ValueError):
    """What was typed is neither an existing path nor a Hub id; the message names it (one line)."""


def looks_like_path(text: str) -> bool:
    """Whether `text` was meant as a local path rather than a Hub id: it starts with '.', '/' or '~', ends with
    '/', holds a backslash or more than one '/', or is absolute. A missing one is a missing path, never a repo."""
    return (text.startswith((".", "/", "~")) or text.endswith("/") or "\\" in text or text.count("/") > 1
            or os.path.isabs(text))


def split_revision(text: str) -> tuple[str, str | None]:
    """`owner/name@revision` -> ("owner/name", "revision"); no "@" -> (text, None)."""
    repo_id, _, revision = text.partition("@")
    return repo_id, revision or None


def is_hub_id(text: str, *, namespaced: bool = True) -> bool:
    """Whether `text` names a Hub repo (`owner/name`, `owner/name@revision`; with `namespaced=False` also `name`):
    not an existing path, not path-looking, well formed."""
    if not text or Path(text).expanduser().exists() or looks_like_path(text):
        return False
    m = HUB_ID.fullmatch(text)
    return m is not None and (not namespaced or "/" in m.group("repo"))


def local_path(text: str) -> Path | None:
    """The path `text` names when it exists (with '~' expanded), else None."""
    path = Path(text).expanduser()
    return path if path.exists() else None


__all__ = ["COMMIT", "HUB_ID", "RefError", "is_hub_id", "local_path", "looks_like_path", "split_revision"]
