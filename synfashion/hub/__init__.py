"""The Hub round trip of a built folder: `push_dataset`, `pull_dataset`, `webdataset_urls`, and their errors.

`push.py` publishes (one commit, private by default, licence guardrail; `push_files` is that commit for any repo
type, used by `r2r push-model` too), `pull.py` brings a revision back and
verifies it, `stream.py` streams WebDataset shards, `errors.py` turns client failures into messages that name the
repo, the file and the fix (the commands are synfashion/commands/hub.py). The names below are imported on first
use, so `synfashion --help` does not import huggingface_hub.
"""

from __future__ import annotations

import importlib

_WHERE = {
    "HubAuthError": "errors", "HubConnectionError": "errors", "HubError": "errors", "HubNotFoundError": "errors",
    "HubQuotaError": "errors", "HubRepoTypeError": "errors", "LicenseGuardError": "errors",
    "pull_dataset": "pull", "PUBLIC_WARNING": "push", "PushResult": "push", "card_license": "push",
    "push_dataset": "push", "push_files": "push", "LicenseGuard": "push", "local_file": "push",
    "webdataset_urls": "stream",
}
__all__ = sorted(_WHERE)


def __getattr__(name: str):
    if name in _WHERE:
        return getattr(importlib.import_module(f".{_WHERE[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
