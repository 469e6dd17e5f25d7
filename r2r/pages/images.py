"""Pictures copied into a page's own folder, so the page (`r2r report`, `r2r study-page`) works wherever it is moved.

Why: a report that links `../renders/x.png` breaks when the folder is moved, zipped or mailed. Every picture a page
shows is re-encoded once, downscaled to `max_side`, into `<page folder>/<SUBDIR>/<sha256 prefix>.<ext>`. The file
name is a hash of the bytes, never a name from the input (names come from users), and equal pictures share one file.
Writes are atomic. Only files with our hashed names are ever removed (`prune`), and only those the page no longer
uses. No HTML here: the pages own their markup.
"""

from __future__ import annotations

import hashlib
import io
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from synfashion.cliutil import option
from synfashion.fs.atomic import write_bytes_atomic

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
        if not (path.is_file() and path.stat().st_size == len(data)):
            write_bytes_atomic(path, data, durable=False)
        self.used.add(name)
        return f"{self.subdir}/{name}"

    def prune(self) -> int:
        """Remove pictures an earlier page left here that this page does not use (our hashed names only)."""
        if not self.folder.is_dir():
            return 0
        removed = 0
        for p in self.folder.iterdir():
            if _OURS.match(p.name) and p.name not in self.used and p.is_file() and not p.is_symlink():
                p.unlink()
                removed += 1
        return removed
