"""Validation of one image file's bytes, without re-encoding them.

Packaging keeps the original bytes, so this module only *reads*: it proves the file is intact, guards against
decompression bombs before any pixel is allocated, and reports mode, size and EXIF orientation. It never raises
for odd-but-valid images (CMYK, 16-bit, palette, RGBA): those are data, not errors.

Two levels (`--validate`):
- "structure" (default): PNG: every chunk's CRC checked and IEND present, so every byte of the file is covered by a
  checksum. JPEG (no checksum exists): every marker segment parsed with consistent lengths, the entropy-coded data
  of every scan checked for illegal markers, EOI present. That is every condition on which a JPEG decoder raises
  (libjpeg treats damaged entropy data as a warning, not an error), at a fraction of a decode's cost. Other
  formats are decoded fully.
- "decode": additionally decodes every pixel (JPEG in draft mode: all scans are still entropy-decoded).
"""

from __future__ import annotations

import io
import re
import warnings
from dataclasses import dataclass

from PIL import Image, ImageFile

# The release is 768x1024; 64 Mpx leaves room for any plausible re-release while refusing bombs.
DEFAULT_MAX_PIXELS = 64_000_000
VALIDATION_LEVELS = ("structure", "decode")
_EXIF_ORIENTATION = 0x0112
_PNG_IEND = b"\x00\x00\x00\x00IEND\xaeB`\x82"
# In entropy-coded data 0xFF is followed by 0x00 (stuffing), RST0-7 or fill 0xFF; anything else is a marker.
_JPEG_MARKER_IN_SCAN = re.compile(rb"\xff[^\x00\xd0-\xd7\xff]")


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


def check_jpeg_structure(data: bytes) -> None:
    """Walk SOI .. EOI: segment lengths in bounds, scans free of illegal markers, EOI present."""
    n = len(data)
    if not data.startswith(b"\xff\xd8"):
        raise ImageRejected("corrupt", "JPEG does not start with SOI")
    i, scans = 2, 0
    while True:
        if i + 2 > n:
            raise ImageRejected("corrupt", f"JPEG truncated at offset {i} (no EOI marker)")
        if data[i] != 0xFF:
            raise ImageRejected("corrupt", f"JPEG: expected a marker at offset {i}, found 0x{data[i]:02x}")
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte before a marker
            i += 1
            continue
        if marker == 0xD9:
            if scans == 0:
                raise ImageRejected("corrupt", "JPEG has no image scan")
            return
        if 0xD0 <= marker <= 0xD7 or marker == 0x01:
            i += 2
            continue
        if i + 4 > n:
            raise ImageRejected("corrupt", f"JPEG truncated inside the segment header at offset {i}")
        length = int.from_bytes(data[i + 2 : i + 4], "big")
        end = i + 2 + length
        if length < 2 or end > n:
            raise ImageRejected("corrupt", f"JPEG segment 0x{marker:02x} at offset {i} runs past the end of the file")
        if marker != 0xDA:
            i = end
            continue
        scans += 1
        m = _JPEG_MARKER_IN_SCAN.search(data, end)
        if m is None:
            raise ImageRejected("corrupt", f"JPEG truncated in the data of scan {scans} (no EOI marker)")
        i = m.start()


def inspect_image(data: bytes, *, max_pixels: int = DEFAULT_MAX_PIXELS, validate: str = "structure") -> ImageInfo:
    """Prove `data` is an intact image (see the module docstring for what each level checks); return what it is."""
    if validate not in VALIDATION_LEVELS:
        raise ValueError(f"validate must be one of {VALIDATION_LEVELS}, got {validate!r}")
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
                # getexif() costs more than the rest of a structure check; only files with EXIF pay for it
                has_exif = fmt not in ("JPEG", "PNG") or "exif" in img.info
                orientation = int(img.getexif().get(_EXIF_ORIENTATION, 1) or 1) if has_exif else 1
                if fmt == "JPEG":
                    check_jpeg_structure(data)
                if validate == "decode" or fmt not in ("JPEG", "PNG"):
                    if fmt == "JPEG":
                        img.draft(img.mode, (max(1, width // 8), max(1, height // 8)))
                    img.load()
                    if getattr(img, "n_frames", 1) > 1:
                        img.seek(img.n_frames - 1)  # every frame of a multi-frame file must decode too
                        img.load()
            if fmt == "PNG":
                with Image.open(io.BytesIO(data)) as img:
                    img.verify()  # reads every chunk to IEND, checking each CRC
                if not data.endswith(_PNG_IEND):
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
