import io

import pytest
from PIL import Image

from synfashion.imagecheck import ImageRejected, inspect_image
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


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
@pytest.mark.parametrize("keep", [0.5, 0.9, -2])
def test_truncated_files_are_caught(fmt, keep):
    data = image_bytes(fmt, size=(200, 300))
    cut = data[: int(len(data) * keep)] if keep > 0 else data[:keep]
    with pytest.raises(ImageRejected) as e:
        inspect_image(cut)
    assert e.value.reason == "corrupt"


def test_png_bit_flip_in_pixel_data_is_caught():
    data = bytearray(image_bytes("PNG", size=(200, 300)))
    data[len(data) // 2] ^= 0xFF
    with pytest.raises(ImageRejected):
        inspect_image(bytes(data))


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
