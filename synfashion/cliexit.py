"""How both commands (`synfashion`, `r2r`) end when a run does not succeed: one line, never a traceback.

- An expected error (bad input, a missing file, a full disk, ...) is one line naming the file and the fix; exit
  status 2. A data-loading error raised in a torch DataLoader worker reaches the main process with the worker's
  whole traceback as its message ("Caught SampleDecodeError in DataLoader worker process 0. Original Traceback
  ..."); `error_text` keeps only the original message. Library messages name their remedy the Python way
  (`on_error='skip'`); `error_text` shows the command's own flag instead (`--skip-bad-images`), when the
  command has it.
- Ctrl-C is one line, "interrupted; run the same command again to resume" (every writer here is atomic and
  resumable), exit status 130, whatever the command was doing: a KeyboardInterrupt, or any error it turned into
  while the command unwound (a DataLoader whose workers got the signal too). A second Ctrl-C while the command
  cleans up ends the process at once.

Standard library only: `r2r --help` stays instant. Reads and writes nothing.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any

EXIT_ERROR = 2
EXIT_INTERRUPTED = 130  # 128 + SIGINT, what a shell reports for a process Ctrl-C ended
INTERRUPTED = "interrupted; run the same command again to resume"

# A library message's Python spelling of a remedy -> (the parsed option's attribute, how the command line spells
# it). Replaced only in commands that have that option (the attribute is in their namespace).
FLAG_SPELLINGS: tuple[tuple[str, str, str], ...] = (
    ("on_error='skip'", "skip_bad_images", "--skip-bad-images"),
    ("in loader.skipped", "skip_bad_images", "in the run's output"),
    ("captions='none'", "captions", "--captions none"),
    ("caption_column=", "caption_column", "--caption-column "),
    ("overwrite=True", "overwrite", "--overwrite"),
)


def worker_message(text: str, name: str) -> str:
    """The original message of an exception named `name` that torch's DataLoader re-raised from a worker (which
    puts the worker's traceback in the message); any other text unchanged."""
    if not text.startswith(f"Caught {name} ") or "Original Traceback" not in text:
        return text
    last = None
    for last in re.finditer(rf"^(?:[\w.]+\.)?{re.escape(name)}: ", text, re.M):
        pass
    return text[last.end():].strip() if last else text


def error_text(exc: BaseException, args: Any = None) -> str:
    """What a command prints for an expected error (see the module docstring); `args`: the parsed namespace."""
    text = worker_message(str(exc), type(exc).__name__)
    for python, dest, flag in FLAG_SPELLINGS:
        if args is not None and hasattr(args, dest):
            text = text.replace(python, flag)
    return text


class _Interrupts:
    """SIGINT while a command runs: the first raises KeyboardInterrupt (so files are closed and locks released);
    a second one, while that unwinds, says so and ends the process."""

    def __init__(self, say: Callable[[str], None]):
        self.say, self.seen, self.pid = say, 0, os.getpid()

    def __call__(self, signum: int, frame: object) -> None:
        self.seen += 1
        if self.seen == 1 or os.getpid() != self.pid:  # a forked worker (a DataLoader's) just stops: no second line
            raise KeyboardInterrupt
        self.say(INTERRUPTED)
        sys.stderr.flush()
        os._exit(EXIT_INTERRUPTED)


@contextlib.contextmanager
def _handling(interrupts: _Interrupts) -> Iterator[None]:
    main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGINT, interrupts) if main else None
    try:
        yield
    finally:
        if main:
            signal.signal(signal.SIGINT, previous if previous is not None else signal.default_int_handler)


def run(func: Callable[[Any], int | None], args: Any, *,
        expected: tuple[type[BaseException], ...], show_error: Callable[[str], None],
        show_interrupted: Callable[[str], None]) -> int:
    """Run a parsed command: its exit status, 2 after an expected error, 130 after Ctrl-C (each one line)."""
    interrupts = _Interrupts(show_interrupted)
    with _handling(interrupts):
        try:
            return int(func(args) or 0)
        except KeyboardInterrupt:
            show_interrupted(INTERRUPTED)
            return EXIT_INTERRUPTED
        except expected as e:
            if interrupts.seen:  # what the interruption turned into while the command unwound
                show_interrupted(INTERRUPTED)
                return EXIT_INTERRUPTED
            show_error(error_text(e, args))
            return EXIT_ERROR
        except BaseException:
            if interrupts.seen:
                show_interrupted(INTERRUPTED)
                return EXIT_INTERRUPTED
            raise


__all__ = ["EXIT_ERROR", "EXIT_INTERRUPTED", "FLAG_SPELLINGS", "INTERRUPTED", "error_text", "run", "worker_message"]
