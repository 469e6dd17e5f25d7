"""Image bytes -> an upright 8-bit RGB PIL image: the one decoder every loader and the translation side share.

Packaging keeps the original file bytes (never re-encoded), so everything a reader must normalise happens here,
once: the EXIF orientation tag is applied, every PIL mode becomes RGB (alpha composited on a chosen background,
16-bit scaled rather than clipped, CMYK converted), and JPEGs are decoded at a reduced DCT scale when the
caller needs far fewer pixels than the file holds. This module does not resize, crop or make tensors.
"""

from __future__ import annotations

import io
import os
import warnings

import numpy as np
from PIL import Image, UnidentifiedImageError

from synfashion.release.imagecheck import DEFAULT_MAX_PIXELS

EXIF_ORIENTATION_TAG = 0x0112

# EXIF orientation -> the PIL transpose that makes the image upright (1 = already upright).
_ORIENTATION_TRANSPOSE: dict[int, Image.Transpose] = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
_SWAPS_AXES = frozenset({5, 6, 7, 8})

_ALPHA_MODES = frozenset({"RGBA", "LA", "PA", "RGBa", "La"})
_SIXTEEN_BIT_MODES = frozenset({"I;16", "I;16B", "I;16L", "I;16N", "I"})

RGB = tuple[int, int, int]
WHITE: RGB = (255, 255, 255)


def tune_decoder(blocks: int = 16) -> None:
    """Let PIL keep freed image memory for reuse (it keeps none by default), unless PILLOW_BLOCKS_MAX says
    otherwise: decoding one image after another then stops paying page faults for fresh buffers (~8% faster
    per 768x1024 image here). Process-wide, so the loaders call it in their worker processes only."""
    if "PILLOW_BLOCKS_MAX" not in os.environ and Image.core.get_blocks_max() == 0:
        Image.core.set_blocks_max(blocks)


def read_orientation(img: Image.Image) -> int:
    """The EXIF orientation tag (1..8), 1 when absent or invalid."""
    try:
        value = int(img.getexif().get(EXIF_ORIENTATION_TAG, 1) or 1)
    except Exception:  # a malformed EXIF block must not make a decodable image unreadable
        return 1
    return value if value in range(1, 9) else 1


def apply_orientation(img: Image.Image, orientation: int) -> Image.Image:
    method = _ORIENTATION_TRANSPOSE.get(orientation)
    return img.transpose(method) if method is not None else img


def to_rgb(img: Image.Image, background: RGB = WHITE) -> Image.Image:
    """Any PIL mode -> 8-bit RGB.

    Alpha (RGBA, LA, palette or grey with a transparent colour) is composited over `background`, so a cut-out
    render becomes an opaque garment on the colour the model expects. 16-bit grey (I;16*, and I as PNG decoders
    produce it) is scaled by 255/65535, not clipped to its low byte. Float grey (F) is read as [0, 1].
    """
    mode = img.mode
    if mode == "RGB":
        return img
    if mode in _SIXTEEN_BIT_MODES:
        a = np.clip(np.asarray(img).astype(np.int64), 0, 65535)  # numpy reads either byte order
        return Image.fromarray(((a * 255 + 32767) // 65535).astype(np.uint8), "L").convert("RGB")
    if mode == "F":
        a = np.nan_to_num(np.asarray(img, dtype=np.float32), nan=0.0)
        return Image.fromarray(np.clip(np.rint(a * 255.0), 0, 255).astype(np.uint8), "L").convert("RGB")
    if mode in ("P", "L", "RGBX") and "transparency" in img.info:
        img = img.convert("RGBA")
        mode = "RGBA"
    if mode in _ALPHA_MODES:
        rgba = img if mode == "RGBA" else img.convert("RGBA")
        canvas = Image.new("RGB", rgba.size, tuple(background))
        canvas.paste(rgba.convert("RGB"), mask=rgba.getchannel("A"))
        return canvas
    if mode == "1":
        img = img.convert("L")
    return img.convert("RGB")  # L, P, CMYK (Adobe-inverted CMYK JPEGs are un-inverted by PIL), YCbCr, RGBX, HSV


def decode_image(
    data: bytes,
    *,
    min_size: tuple[int, int] | None = None,
    background: RGB = WHITE,
    orientation: int | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> Image.Image:
    """Decode `data` into an upright RGB image.

    `min_size` (width, height, in the upright frame) lets a JPEG be decoded at 1/2, 1/4 or 1/8 scale when the
    result still covers it: libjpeg then skips most of the inverse DCT, which is the bulk of decoding. The scale
    is only reduced when the reduced image is at least `min_size`, so no detail below the target is lost.
    `orientation` overrides the EXIF tag (pass the dataset's stored value to skip parsing EXIF again).
    `max_pixels`: an image that declares more pixels is refused (`PIL.Image.DecompressionBombError`) before it is
    decoded; the bound `synfashion build` applies (synfashion.release.imagecheck.DEFAULT_MAX_PIXELS).

    Raises whatever PIL raises for undecodable bytes; callers wrap it with the sample's name.
    """
    try:
        with warnings.catch_warnings():  # PIL's own bomb warning: the bound below decides, with a clear error
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))
    except UnidentifiedImageError:  # PIL's message names the BytesIO's memory address: a reason differing per run;
        # the problem is named, never the bytes (they may be anything: a key file, a password line)
        raise UnidentifiedImageError(f"not an image format PIL can identify ({len(data):,} bytes)") from None
    if img.width * img.height > max_pixels:  # before a single pixel is allocated
        raise Image.DecompressionBombError(
            f"{img.width}x{img.height} ({img.width * img.height:,} pixels) exceeds the decompression-bomb guard of "
            f"{max_pixels:,} pixels; not decoded")
    if orientation is None:
        orientation = read_orientation(img)
    if min_size is not None and img.format == "JPEG":
        want_w, want_h = min_size
        if orientation in _SWAPS_AXES:
            want_w, want_h = want_h, want_w
        if img.width >= 2 * want_w and img.height >= 2 * want_h:
            img.draft(img.mode, (max(1, want_w), max(1, want_h)))
    img.load()
    return apply_orientation(to_rgb(img, background), orientation)
