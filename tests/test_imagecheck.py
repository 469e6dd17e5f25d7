import io

import pytest
from PIL import Image

from synfashion.release.imagecheck import ImageRejected, inspect_image
from tests.conftest import image_bytes


@pytest.mark.parametrize(
    "fmt,mode,expect_mode",
    [("JPEG", "RGB", "RGB"), ("JPEG", "L", "L"), ("JPEG", "CMYK", "CMYK"), ("PNG", "RGBA", "RGBA"),
     ("PNG", "P", "P"), ("PNG", "I;16", "I;16"), ("PNG", "LA", "LA"), ("WEBP", "RGB", "RGB")],
)
def test_odd_but_valid_images_are_accepted(fmt, mode, expect_mode):
    info = inspect_image(image_bytes(fmt, mode=mode))
    assert (info.width, info.height, info.format, info.orientation) == (48, 64, fmt, 1)
    assert info.mode == expect_mode


def test_exif_orientation_recorded():
    img = Image.new("RGB", (40, 30), "red")
    exif = Image.Exif()
    exif[0x0112] = 6
    buf = io.BytesIO()
    img.save(buf, "JPEG", exif=exif)
    info = inspect_image(buf.getvalue())
    assert info.orientation == 6 and (info.width, info.height) == (40, 30)


LEVELS = ["structure", "decode"]


@pytest.mark.parametrize("validate", LEVELS)
@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
@pytest.mark.parametrize("keep", [0.01, 0.5, 0.9, -2])
def test_truncated_files_are_caught(fmt, keep, validate):
    data = image_bytes(fmt, size=(200, 300))
    cut = data[: int(len(data) * keep)] if keep > 0 else data[:keep]
    with pytest.raises(ImageRejected) as e:
        inspect_image(cut, validate=validate)
    assert e.value.reason in ("corrupt", "not-an-image")


@pytest.mark.parametrize("validate", LEVELS)
def test_progressive_and_optimized_jpeg_accepted(validate):
    for opts in ({"progressive": True}, {"optimize": True}, {"quality": 30, "subsampling": 0}):
        assert inspect_image(image_bytes("JPEG", size=(120, 90), **opts), validate=validate).format == "JPEG"


def test_jpeg_structure_walker_on_its_own():
    from synfashion.release.imagecheck import check_jpeg_structure

    good = image_bytes("JPEG", size=(120, 90))
    check_jpeg_structure(good)
    check_jpeg_structure(good + b"trailing bytes after EOI are tolerated")
    for bad, msg in ((good[:-2], "no EOI"), (good[:40], "runs past the end"), (b"\xff\xd8\xff\xd9", "no image scan")):
        with pytest.raises(ImageRejected, match=msg):
            check_jpeg_structure(bad)


def test_jpeg_with_bad_segment_length_is_caught():
    data = bytearray(image_bytes("JPEG", size=(120, 90)))
    i = data.index(b"\xff\xdb")  # first quantisation table segment
    data[i + 2 : i + 4] = (60000).to_bytes(2, "big")
    with pytest.raises(ImageRejected) as e:
        inspect_image(bytes(data))
    assert e.value.reason == "corrupt"


def test_jpeg_with_marker_inside_scan_data_is_caught():
    data = bytearray(image_bytes("JPEG", size=(200, 300)))
    sos = data.index(b"\xff\xda")
    data[sos + 200 : sos + 202] = b"\xff\xc4"  # a DHT marker in the middle of the entropy-coded data
    with pytest.raises(ImageRejected):
        inspect_image(bytes(data))


def test_bad_validation_level():
    with pytest.raises(ValueError, match="validate"):
        inspect_image(image_bytes(), validate="paranoid")


@pytest.mark.parametrize("validate", ["structure", "decode"])
def test_png_bit_flip_in_pixel_data_is_caught(validate):
    data = bytearray(image_bytes("PNG", size=(200, 300)))
    data[len(data) // 2] ^= 0xFF
    with pytest.raises(ImageRejected):
        inspect_image(bytes(data), validate=validate)


@pytest.mark.parametrize("data,reason", [(b"", "empty"), (b"hello, not an image", "not-an-image")])
def test_non_images(data, reason):
    with pytest.raises(ImageRejected) as e:
        inspect_image(data)
    assert e.value.reason == reason


def test_decompression_bomb_guard_before_decoding():
    data = image_bytes("PNG", size=(400, 400))
    with pytest.raises(ImageRejected) as e:
        inspect_image(data, max_pixels=100_000)
    assert e.value.reason == "too-large" and "400x400" in str(e.value)


def _pil_info(data: bytes):
    """What PIL says (the "decode" level never takes the JPEG fast path)."""
    return inspect_image(data, validate="decode")


@pytest.mark.parametrize(
    "mode,opts",
    [("RGB", {}), ("L", {}), ("RGB", {"progressive": True}), ("RGB", {"optimize": True}),
     ("RGB", {"quality": 30, "subsampling": 0}), ("L", {"progressive": True}), ("RGB", {"icc_profile": b"x" * 3000}),
     ("CMYK", {}), ("RGB", {"exif": Image.Exif().tobytes()})],
)
def test_jpeg_fast_path_agrees_with_pil(mode, opts):
    from synfashion.release.imagecheck import _plain_jpeg_info

    data = image_bytes("JPEG", size=(72, 40), mode=mode, **opts)
    fast = _plain_jpeg_info(data, 10**9)
    assert fast is None or fast == _pil_info(data)
    assert inspect_image(data) == _pil_info(data)
    # the fast path is taken for plain grey/colour files and left to PIL otherwise
    assert (fast is not None) == (mode in ("RGB", "L") and "exif" not in opts)


def test_jpeg_without_frame_header_before_scan_is_caught():
    data = bytearray(image_bytes("JPEG", size=(72, 40)))
    sof = data.index(b"\xff\xc0")
    data[sof + 1] = 0xFE  # turn the frame header into a comment
    with pytest.raises(ImageRejected, match="before any frame header"):
        inspect_image(bytes(data))


def test_jpeg_fast_path_keeps_the_bomb_guard():
    data = image_bytes("JPEG", size=(400, 400))
    with pytest.raises(ImageRejected) as e:
        inspect_image(data, max_pixels=100_000)
    assert e.value.reason == "too-large" and "400x400" in str(e.value)
