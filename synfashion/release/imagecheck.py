"""Validation of one image file's bytes, without re-encoding them.

Packaging keeps the original bytes, so this module only *reads*: it proves the file is intact, guards against
decompression bombs before any pixel is allocated, and reports mode, size and EXIF orientation. It never raises
for odd-but-valid images (CMYK, 16-bit, palette, RGBA): those are data, not errors.

Two levels (`--validate`):
- "structure" (default): PNG: every chunk's CRC checked and IEND present, so every byte of the file is covered by a
  checksum. JPEG (no checksum exists): every marker segment parsed with consistent lengths, the entropy-coded data
  of every scan checked for illegal markers, EOI present. That is every condition on which a JPEG decoder raises
  (libjpeg treats damaged entropy data as a warning, not an error), at a fraction of a decode's cost. For a
  plain 8-bit grey or colour JPEG the walk also reads size and mode from the frame header, so PIL is not asked.
  Other formats are decoded fully.
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
# Start-of-frame markers: C0-C3, C5-C7, C9-CB, CD-CF (C4 is DHT, C8 reserved, CC is DAC)
_JPEG_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}


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

    def __reduce__(self):
        # Scan workers return these to the parent process. BaseException pickles as cls(*self.args), i.e. with the
        # one formatted message, which __init__ cannot take: the parent then fails to unpickle the result and the
        # process pool reports itself broken instead of the file's verdict.
        return type(self), (self.reason, self.detail)


@dataclass(frozen=True)
class _JpegHeader:
    """What the structure walk learns on the way (enough to skip a PIL parse for a plain JPEG)."""

    sof: int  # frame marker (0xC0 baseline, 0xC2 progressive, ...)
    precision: int
    width: int
    height: int
    components: int
    plain: bool  # no EXIF (orientation) and no MPF (PIL calls those MPO): PIL would report nothing more


def check_jpeg_structure(data: bytes) -> _JpegHeader:
    """Walk SOI .. EOI: segment lengths in bounds, a frame header before the first scan, scans free of illegal
    markers, EOI present. Returns the frame header."""
    n = len(data)
    if not data.startswith(b"\xff\xd8"):
        raise ImageRejected("corrupt", "JPEG does not start with SOI")
    i, scans, frame, plain = 2, 0, None, True
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
            return _JpegHeader(*frame, plain=plain)
        if 0xD0 <= marker <= 0xD7 or marker == 0x01:
            i += 2
            continue
        if i + 4 > n:
            raise ImageRejected("corrupt", f"JPEG truncated inside the segment header at offset {i}")
        length = int.from_bytes(data[i + 2 : i + 4], "big")
        end = i + 2 + length
        if length < 2 or end > n:
            raise ImageRejected("corrupt", f"JPEG segment 0x{marker:02x} at offset {i} runs past the end of the file")
        if marker in _JPEG_SOF:
            if frame is not None:
                raise ImageRejected("corrupt", f"JPEG has a second frame header at offset {i}")
            if length < 8 or length != 8 + 3 * data[i + 9]:
                raise ImageRejected("corrupt", f"JPEG frame header at offset {i} has an inconsistent length")
            frame = (marker, data[i + 4], int.from_bytes(data[i + 7 : i + 9], "big"),
                     int.from_bytes(data[i + 5 : i + 7], "big"), data[i + 9])
        elif (marker == 0xE1 and data.startswith(b"Exif\0\0", i + 4)) or (
            marker == 0xE2 and data.startswith(b"MPF\0", i + 4)
        ):
            plain = False
        if marker != 0xDA:
            i = end
            continue
        if frame is None:
            raise ImageRejected("corrupt", f"JPEG scan at offset {i} comes before any frame header")
        scans += 1
        m = _JPEG_MARKER_IN_SCAN.search(data, end)
        if m is None:
            raise ImageRejected("corrupt", f"JPEG truncated in the data of scan {scans} (no EOI marker)")
        i = m.start()


def _plain_jpeg_info(data: bytes, max_pixels: int) -> ImageInfo | None:
    """Structure-check a JPEG and, when it is a plain 8-bit grey or colour one, say what it is without PIL.

    PIL's open costs as much as the whole walk; for the common case the walk already holds every answer (PIL maps
    1 component to "L" and 3 to "RGB"). Anything else (EXIF, CMYK, 12-bit, lossless, MPO) returns None: PIL
    decides, as it always did.
    """
    h = check_jpeg_structure(data)
    if not (h.plain and h.sof in (0xC0, 0xC1, 0xC2) and h.precision == 8 and h.components in (1, 3)):
        return None
    if not (0 < h.width * h.height <= min(max_pixels, Image.MAX_IMAGE_PIXELS or max_pixels)):
        return None  # let the PIL path word the rejection
    return ImageInfo(width=h.width, height=h.height, mode="L" if h.components == 1 else "RGB", format="JPEG",
                     orientation=1)


def inspect_image(data: bytes, *, max_pixels: int = DEFAULT_MAX_PIXELS, validate: str = "structure") -> ImageInfo:
    """Prove `data` is an intact image (see the module docstring for what each level checks); return what it is."""
    if validate not in VALIDATION_LEVELS:
        raise ValueError(f"validate must be one of {VALIDATION_LEVELS}, got {validate!r}")
    if not data:
        raise ImageRejected("empty", "file has 0 bytes")
    walked = False  # the JPEG structure walk already ran (it raises on any damage it finds)
    if validate == "structure" and data.startswith(b"\xff\xd8"):
        info = _plain_jpeg_info(data, max_pixels)
        if info is not None:
            return info
        walked = True
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
                if fmt == "JPEG" and not walked:
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
    except MemoryError:
        raise ImageRejected("too-large", "decoding it ran out of memory") from None
    except Exception as e:  # noqa: BLE001 - the bytes are untrusted data: whatever a decoder raises on them (PIL's
        # plugins raise struct.error, IndexError, TypeError, ZeroDivisionError... on crafted files) is a verdict on
        # this file, not a failure of the scan
        raise ImageRejected("corrupt", f"{type(e).__name__}: {e}") from None
    if orientation not in range(1, 9):
        orientation = 1
    return ImageInfo(width=width, height=height, mode=mode, format=fmt, orientation=orientation)
