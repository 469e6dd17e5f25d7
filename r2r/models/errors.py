"""The one error of model arguments and files: a `ModelFileError` names the argument or file and what is wrong.

Missing things (a folder, model_index.json) are FileNotFoundError instead, as Python names them. `loading` turns a
library's own load failure into one such line. A leaf: no torch, nothing of r2r.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator


class ModelFileError(ValueError):
    """A model argument or file that cannot be loaded; the message names it and the problem (one line).

    Missing things (a folder, model_index.json) are FileNotFoundError instead, as Python names them."""


@contextlib.contextmanager
def loading(what: str, also: tuple[type[BaseException], ...] = ()) -> Iterator[None]:
    """Turn a loader's OSError / SafetensorError (after `check`'s checks), and the types in `also`, into one line
    naming `what`."""
    from synfashion.fs.space import NoSpaceError

    try:
        yield
    except (ModelFileError, NoSpaceError):
        raise
    except Exception as e:
        if not (isinstance(e, (OSError, *also)) or type(e).__name__ == "SafetensorError"):
            raise
        first = next((line.strip() for line in str(e).splitlines() if line.strip()), type(e).__name__)
        raise ModelFileError(f"cannot load {what}: {first}") from None
