"""The one error of model arguments and files: a `ModelFileError` names the argument or file and what is wrong.

Missing things (a folder, model_index.json) are FileNotFoundError instead, as Python names them. `loading` turns a
library's own load failure (torch's many-line state-dict size mismatch included) into one such line naming the file. A leaf: no torch, nothing of r2r.
"""

from __future__ import annotations

import contextlib
import re
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
        mismatch = _size_mismatch(e)
        if mismatch is not None:  # torch's load_state_dict: a line per tensor, none naming the file
            raise ModelFileError(f"cannot load {what}: its tensors do not fit the model's layers ({mismatch})") from None
        if not (isinstance(e, (OSError, *also)) or type(e).__name__ == "SafetensorError"):
            raise
        first = next((line.strip() for line in str(e).splitlines() if line.strip()), type(e).__name__)
        raise ModelFileError(f"cannot load {what}: {first}") from None


_MISMATCH = re.compile(r"size mismatch for (\S+): copying a param with shape torch\.Size\(\[([^\]]*)\]\) from "
                       r"checkpoint, the shape in current model is torch\.Size\(\[([^\]]*)\]\)")


def _size_mismatch(e: BaseException) -> str | None:
    """'N tensors of other shapes, e.g. NAME: [a, b] in the file, [c, d] in the model' from torch's state-dict
    error, or None when `e` is not one."""
    if not isinstance(e, RuntimeError):
        return None
    found = _MISMATCH.findall(str(e))
    if not found:
        return None
    name, theirs, ours = found[0]
    return f"{len(found)} tensor(s) of other shapes, e.g. {name}: [{theirs}] in the file, [{ours}] in the model"
