"""Full validation of one image file's bytes, without re-encoding them.

Packaging keeps the original bytes, so this module only *reads*: it proves the whole compressed stream decodes,
guards against decompression bombs before any pixel is allocated, and reports mode, size and EXIF orientation.
It never raises for odd-but-valid images (CMYK, 16-bit, palette, RGBA): those are data, not errors.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

from PIL import Image, ImageFile

# The release is 768x1024; 64 Mpx leaves room for any plausible re-release while refusing bombs.
DEFAULT_MAX_PIXELS = 64_000_000
_EXIF_ORIENTATION = 0x0112
_PNG_IEND = b"\x00\x00\x00\x00IEND\xaeB`\x82"


@dataclass(frozen=True)
class ImageInfo:
    width: int
    height: int
    mode: str
    format: str
    orientation: int


class ImageRejected(ValueError):
    """An input that cannot be packaged; `reason` is a short machine-readable code for the manifest."""

    def __init__(self, reason: str, detail: str):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


def inspect_image(data: bytes, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> ImageInfo:
    """Decode `data` completely enough to prove it is intact; return what it is.

    JPEGs are decoded in draft mode (DCT scaling): libjpeg still entropy-decodes every scan, so truncation and
    most corruption surface, at a fraction of a full decode's cost. Other formats are decoded fully, and PNGs
    additionally get their chunk CRCs checked by `verify()`.
    """
    if not data:
        raise ImageRejected("empty", "file has 0 bytes")
    ImageFile.LOAD_TRUNCATED_IMAGES = False  # a truncated file must fail, whatever a caller set globally
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as img:
                width, height = img.size
                if width * height > max_pixels:
                    raise ImageRejected(
                        "too-large", f"{width}x{height} exceeds the decompression-bomb guard of {max_pixels} pixels"
                    )
                fmt = img.format or "unknown"
                mode = img.mode
                orientation = int(img.getexif().get(_EXIF_ORIENTATION, 1) or 1)
                if fmt == "JPEG":
                    img.draft(img.mode, (max(1, width // 8), max(1, height // 8)))
                img.load()
                if getattr(img, "n_frames", 1) > 1:
                    img.seek(img.n_frames - 1)  # every frame of a multi-frame file must decode too
                    img.load()
            if fmt == "PNG":
                with Image.open(io.BytesIO(data)) as img:
                    img.verify()
                if not data.endswith(_PNG_IEND):  # pixels can decode fully from a file cut after its last IDAT
                    raise ImageRejected("corrupt", "PNG does not end with an IEND chunk (truncated file)")
    except ImageRejected:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise ImageRejected("too-large", str(e)) from None
    except Image.UnidentifiedImageError:
        raise ImageRejected("not-an-image", "no image format recognised these bytes") from None
    except (OSError, SyntaxError, ValueError, EOFError) as e:
        raise ImageRejected("corrupt", f"{type(e).__name__}: {e}") from None
    if orientation not in range(1, 9):
        orientation = 1
    return ImageInfo(width=width, height=height, mode=mode, format=fmt, orientation=orientation)
