"""The Hugging Face libraries' own progress bars, on or off for the length of one command.

Our commands draw their own bars (rich, on stderr) and obey --no-progress; huggingface_hub, datasets, transformers
and diffusers draw theirs with tqdm whatever the command was told ("Loading pipeline components...", "Loading
weights", "Generating test split", "Writing model shards"), and into a log file too, as carriage-return frames.
`library_bars(show)` turns theirs off unless the command shows progress and stderr is a terminal.

How: libraries not imported yet read environment variables when they are imported (tqdm's TQDM_DISABLE,
HF_HUB_DISABLE_PROGRESS_BARS, HF_DATASETS_DISABLE_PROGRESS_BARS), so those are set (and inherited by worker
processes); libraries already imported are switched off through their own functions. Everything is put back
afterwards, so a test that calls a command's `main()` in its own process leaves no setting behind. Importing this
module imports nothing but the standard library.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Iterator

ENV = {"TQDM_DISABLE": "1", "HF_HUB_DISABLE_PROGRESS_BARS": "1", "HF_DATASETS_DISABLE_PROGRESS_BARS": "1"}


def _switches() -> list[tuple[Callable[[], bool], Callable[[], None], Callable[[], None]]]:
    """(is on, turn off, turn on) of each bar switch among the libraries already imported."""
    out = []
    if "huggingface_hub" in sys.modules:
        from huggingface_hub import utils as hub

        out.append((lambda: not hub.are_progress_bars_disabled(), hub.disable_progress_bars,
                    hub.enable_progress_bars))
    if "datasets" in sys.modules:
        import datasets

        out.append((lambda: not datasets.are_progress_bars_disabled(), datasets.disable_progress_bars,
                    datasets.enable_progress_bars))
    for name in ("transformers.utils.logging", "diffusers.utils.logging"):
        module = sys.modules.get(name)
        if module is not None:
            out.append((module.is_progress_bar_enabled, module.disable_progress_bar, module.enable_progress_bar))
    return out


def wanted(show: bool) -> bool:
    """Whether the libraries' bars are shown: the command shows progress, and stderr is a terminal."""
    return show and sys.stderr.isatty()


@contextlib.contextmanager
def library_bars(show: bool) -> Iterator[None]:
    """Within the block, the Hugging Face libraries' bars are off unless `wanted(show)`."""
    if wanted(show):
        yield
        return
    saved = {k: os.environ.get(k) for k in ENV}
    os.environ.update(ENV)
    turned_off = []
    for is_on, off, on in _switches():
        if is_on():
            off()
            turned_off.append(on)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        with contextlib.suppress(Exception):  # huggingface_hub warns, and keeps them off, if its variable is set
            for on in turned_off:
                on()


__all__ = ["ENV", "library_bars", "wanted"]
