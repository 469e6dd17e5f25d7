"""Pictures copied into a page's own folder, so the page (`r2r report`, `r2r study-page`) works wherever it is moved.

Why: a report that links `../renders/x.png` breaks when the folder is moved, zipped or mailed. Every picture a page
shows is re-encoded once, downscaled to `max_side`, into `<page folder>/<SUBDIR>/<sha256 prefix>.<ext>`. The file
name is a hash of the bytes, never a name from the input (names come from users), and equal pictures share one file.
Writes are atomic. A file is removed (`prune`) only when its bytes prove a page wrote it (its name is the hash of
its bytes) and the page no longer uses it; a file that only looks like ours is kept, and one in the way of a picture
is refused by name. The page folder itself is claimed by its command (`synfashion.fs.ownership.OwnedFolder`). No
HTML here: the pages own their markup.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from synfashion.cliutil import option
from synfashion.fs.atomic import write_bytes_atomic
from synfashion.fs.filehash import file_sha256
from synfashion.fs.ownership import OwnershipError

SUBDIR = "report_files"  # r2r report's pictures
STUDY_SUBDIR = "study_files"  # r2r study-page's: each page prunes only its own folder, so both can share an OUT
PAGE_SUBDIRS = (SUBDIR, STUDY_SUBDIR)
FORMATS = {"jpeg": ".jpg", "png": ".png"}
_OURS = re.compile(r"^[0-9a-f]{16}\.(jpg|png)$")


@dataclass(frozen=True)
class PictureSettings:
    max_side: int = option("--max-side", default=512, type=int,
                           help="longest side of each copied picture in pixels; 0 keeps the original size")
    format: str = option("--image-format", default="jpeg", choices=tuple(FORMATS),
                         help="copied pictures: jpeg (quality 92) or png (lossless)")

    def __post_init__(self) -> None:
        if self.max_side < 0:
            raise ValueError(f"--max-side must be >= 0 (0 keeps the original size), got {self.max_side}")
        if self.format not in FORMATS:
            raise ValueError(f"--image-format must be one of {', '.join(FORMATS)}, got {self.format!r}")

    def describe(self) -> str:
        size = "original size" if self.max_side == 0 else f"longest side at most {self.max_side} px"
        kind = "JPEG quality 92" if self.format == "jpeg" else "PNG (lossless)"
        return f"{kind}, {size}"


def as_pil(image) -> Image.Image:
    """A PIL image, a uint8 HWC array or a uint8 CHW tensor (as loaders decode) -> RGB PIL image."""
    if isinstance(image, Image.Image):
        return image.convert("RGB")
    arr = image.numpy() if hasattr(image, "numpy") else np.asarray(image)
    if arr.ndim == 3 and arr.shape[0] == 3 and arr.shape[-1] != 3:
        arr = arr.transpose(1, 2, 0)
    return Image.fromarray(np.ascontiguousarray(arr, dtype=np.uint8), "RGB")


def fit(image: Image.Image, max_side: int) -> Image.Image:
    """`image` scaled down (never up) so that its longest side is at most `max_side` (0: unchanged)."""
    if max_side and max(image.size) > max_side:
        scale = max_side / max(image.size)
        size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
        return image.resize(size, Image.Resampling.LANCZOS)
    return image


class PictureFolder:
    """Stores pictures under `page_dir/subdir` and hands back the relative link a page uses for each."""

    def __init__(self, page_dir: Path, settings: PictureSettings = PictureSettings(), subdir: str = SUBDIR):
        self.page_dir = Path(page_dir)
        self.subdir = subdir
        self.folder = self.page_dir / subdir
        self.settings = settings
        self.used: set[str] = set()

    def add(self, image) -> str:
        """Store `image` (see `as_pil`); returns its link relative to the page, e.g. 'report_files/0123abcd.jpg'."""
        img = fit(as_pil(image), self.settings.max_side)
        buf = io.BytesIO()
        if self.settings.format == "jpeg":
            img.save(buf, format="JPEG", quality=92)
        else:
            img.save(buf, format="PNG", compress_level=6)
        data = buf.getvalue()
        name = hashlib.sha256(data).hexdigest()[:16] + FORMATS[self.settings.format]
        path = self.folder / name
        if os.path.lexists(path):
            if not _written_by_a_page(path):
                raise OwnershipError(f"{path} is in the way of a picture of this page and its bytes are not that "
                                     "picture: move it away and run again (nothing of it was changed)")
        else:
            write_bytes_atomic(path, data, durable=False)
        self.used.add(name)
        return f"{self.subdir}/{name}"

    def prune(self) -> int:
        """Remove pictures an earlier page left here that this page does not use: only files whose bytes hash to
        their name (what `add` writes); anything else stays, whatever its name."""
        if not self.folder.is_dir():
            return 0
        removed = 0
        for p in self.folder.iterdir():
            if p.name not in self.used and _written_by_a_page(p):
                p.unlink()
                removed += 1
        return removed


def _written_by_a_page(path: Path) -> bool:
    """`path` is a regular file named as `add` names a picture: the sha256 of its bytes, and that is what they hash
    to (a user's file that merely looks like ours is not)."""
    if not _OURS.match(path.name):
        return False
    try:
        st = os.lstat(path)
    except OSError:
        return False
    return stat.S_ISREG(st.st_mode) and file_sha256(path).startswith(path.name.split(".")[0])
