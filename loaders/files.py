"""A user's files, read safely: the one way every reader of image files (and their caption sidecars) opens one.

Image folders (`ImageFolderDataset`: real photos, DKI data, downstream's test photos, evaluate's real set),
evaluate's method folders, `r2r report`, `r2r translate-images` and a `datasets` row's image path all read through
here, with the checks `synfashion build` applies to a release (synfashion/release/scan.py, imagecheck.py):
- only a regular file is opened (O_NONBLOCK, then fstat: a FIFO, socket or device is refused, never waited on,
  and a link to /dev/zero is a device, never read until memory runs out);
- a symbolic link is followed only while it stays inside the folder being read (`root`);
- at most `max_bytes` are read (a bigger file is refused before it is read);
- the pixels an image declares are bounded before it is decoded (`decode.decode_image`'s `max_pixels`).
A file that fails is an `ImageFileError` naming the file and the problem, never its bytes: readers with a skip mode
list it with that reason, the others stop with that one line. `list_files` lists every entry with a wanted
extension that is not a folder, whatever it is, so the read (not the listing) says what is wrong with it: no input
is left out silently. Reads only.
"""

from __future__ import annotations

import os
from collections.abc import Collection
from pathlib import Path

from synfashion.release.imagecheck import DEFAULT_MAX_PIXELS, ImageRejected
from synfashion.release.scan import DEFAULT_MAX_BYTES, open_regular_file

from .errors import LoaderError

TEXT_MAX_BYTES = 64 * 2**20  # a caption sidecar or metadata file

__all__ = ["DEFAULT_MAX_BYTES", "DEFAULT_MAX_PIXELS", "ImageFileError", "list_files", "read_file", "read_text_file"]


class ImageFileError(LoaderError):
    """A file that is not read: not a regular file, a link out of its folder, too large, unreadable. `reason` is a
    short code (as in a build's manifest: "special-file", "outside-link", "too-large", "unreadable"), `detail` the
    sentence. Constructible from the message alone (DataLoader workers re-raise by message)."""

    def __init__(self, message: str, reason: str = "unreadable", detail: str | None = None):
        super().__init__(message)
        self.reason, self.detail = reason, detail if detail is not None else message


def _error(path: Path, reason: str, detail: str) -> ImageFileError:
    return ImageFileError(f"{path}: {detail}", reason, detail)


def list_files(root: str | Path, extensions: Collection[str], *, hidden: bool = False) -> list[str]:
    """Relative '/'-separated names under `root` of every entry whose lower-cased extension is in `extensions` and
    which is not a folder (regular files, links, FIFOs alike: `read_file` says what is wrong with one), sorted.
    Hidden names (a leading '.') are left out unless `hidden`; links to folders are not descended (os.walk's
    rule)."""
    root = Path(root)
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        rel_dir = Path(dirpath).relative_to(root).as_posix()
        top = rel_dir == "."
        dirnames[:] = sorted(d for d in dirnames if hidden or not d.startswith("."))
        for name in filenames:
            if (hidden or not name.startswith(".")) and os.path.splitext(name)[1].lower() in extensions:
                found.append(name if top else f"{rel_dir}/{name}")
    return sorted(found)


def read_file(path: str | Path, *, root: str | Path | None = None, max_bytes: int = DEFAULT_MAX_BYTES,
              head: int | None = None) -> bytes:
    """The bytes of `path` if it is a regular file of at most `max_bytes` (and, with `root`, still inside `root`
    once links resolve); else `ImageFileError` naming it and the problem. `head`: only the first `head` bytes
    (enough for an image's header)."""
    path = Path(path)
    if root is not None:
        try:
            resolved, inside = path.resolve(), Path(root).resolve()
        except (RuntimeError, OSError) as e:  # Python 3.11's resolve() raises RuntimeError on a symlink loop
            raise _error(path, "unreadable", f"cannot be resolved ({e})") from None
        if not resolved.is_relative_to(inside):
            raise _error(path, "outside-link", f"is a symbolic link to {resolved}, outside {root}; only files inside "
                                               "the folder are read")
    try:
        fd, st = open_regular_file(path)
    except ImageRejected as e:
        raise _error(path, e.reason, f"{e.detail}; only regular files are read") from None
    except OSError as e:
        raise _error(path, "unreadable", f"cannot be opened ({e.strerror or e})") from None
    with open(fd, "rb") as f:
        if st.st_size > max_bytes:
            raise _error(path, "too-large", f"{st.st_size:,} bytes is more than the {max_bytes:,} a file may have "
                                            "here")
        try:
            data = f.read(st.st_size + 1 if head is None else min(head, st.st_size))
        except OSError as e:
            raise _error(path, "unreadable", f"cannot be read ({e.strerror or e})") from None
    if head is None and len(data) != st.st_size:
        raise _error(path, "unreadable", "changed size while it was being read")
    return data


def read_text_file(path: str | Path, *, root: str | Path | None = None, max_bytes: int = TEXT_MAX_BYTES) -> str:
    """A caption sidecar or metadata file as UTF-8 text, through `read_file` (UnicodeDecodeError when not UTF-8)."""
    return read_file(path, root=root, max_bytes=max_bytes).decode("utf-8")


HEADER_BYTES = 2**20  # enough of an image file for its size and orientation (EXIF and ICC segments come first)


def image_header(path: str | Path, *, root: str | Path | None = None,
                 max_pixels: int = DEFAULT_MAX_PIXELS) -> tuple[int, int, int]:
    """(width, height, EXIF orientation) of an image file as stored, from its first bytes read through `read_file`;
    `ImageFileError` when the file is not read, or declares more than `max_pixels` ("too-large") or no image
    format is recognised ("not-an-image")."""
    import io
    import warnings

    from PIL import Image

    from .decode import read_orientation

    data = read_file(path, root=root, head=HEADER_BYTES)
    try:
        with warnings.catch_warnings():  # PIL's own bomb warning: the bound below decides, with a clear error
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            im = Image.open(io.BytesIO(data))
        with im:
            width, height = im.size
            orientation = read_orientation(im)
    except Exception as e:  # noqa: BLE001 - PIL raises many types on bad bytes; the problem, never the bytes
        raise _error(Path(path), "not-an-image", f"is not an image PIL can read ({type(e).__name__})") from None
    if width * height > max_pixels:
        raise _error(Path(path), "too-large", f"declares {width}x{height} ({width * height:,} pixels), more than the "
                                              f"decompression-bomb guard of {max_pixels:,}; not decoded")
    return width, height, orientation
