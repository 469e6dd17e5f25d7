"""loaders.decode and loaders.transforms: shapes, ranges, orientation, modes, reduced decoding, augmentation."""

from __future__ import annotations

import io
import random

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image, ImageOps

from loaders import (
    EVAL_512,
    TRAIN_512,
    TRANSLATE_768x1024,
    ImageTransform,
    TransformConfig,
    decode_image,
    to_float,
    to_uint8,
)
from loaders.decode import EXIF_ORIENTATION_TAG


def encode(img: Image.Image, fmt: str = "PNG", orientation: int | None = None, **kw) -> bytes:
    buf = io.BytesIO()
    if orientation is not None:
        exif = Image.Exif()
        exif[EXIF_ORIENTATION_TAG] = orientation
        kw["exif"] = exif
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def garment(w: int = 768, h: int = 1024, seed: int = 0) -> Image.Image:
    """A smooth, asymmetric test picture (gradients plus a little noise), like a render."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    arr = np.stack([x * 255 / w, y * 255 / h, (x // 32 + y // 32) % 2 * 180], -1) + rng.normal(0, 4, (h, w, 3))
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))


def as_u8(t: torch.Tensor) -> np.ndarray:
    """CHW float [-1, 1] -> HWC uint8."""
    return to_uint8(t).permute(1, 2, 0).numpy()


# ------------------------------------------------------------------------------------------ shapes, ranges
@pytest.mark.parametrize("config, shape", [(TRAIN_512, (3, 512, 512)), (EVAL_512, (3, 512, 512)),
                                           (TRANSLATE_768x1024, (3, 1024, 768))])
def test_presets_give_their_size_in_range(config, shape):
    out = ImageTransform(config)(encode(garment(), "JPEG", quality=90), random.Random(0))
    assert out.shape == shape and out.dtype == torch.float32 and out.is_contiguous()
    assert out.min() >= -1.0 and out.max() <= 1.0 and out.min() < -0.5 and out.max() > 0.5


def test_translation_preset_is_identity_sized_on_renders():
    img = garment()
    out = ImageTransform(TRANSLATE_768x1024)(encode(img))
    assert np.array_equal(as_u8(out), np.asarray(img))  # PNG in, nothing resized: exact


def test_uint8_output_and_conversion_agree():
    data = encode(garment(200, 300))
    u8 = ImageTransform(EVAL_512.with_(size=(64, 64), output="uint8"))(data)
    f = ImageTransform(EVAL_512.with_(size=(64, 64)))(data)
    assert u8.dtype == torch.uint8 and u8.shape == (3, 64, 64)
    assert torch.allclose(to_float(u8), f, atol=1e-6)


@settings(max_examples=40, deadline=None)
@given(w=st.integers(1, 300), h=st.integers(1, 300), tw=st.integers(1, 200), th=st.integers(1, 200),
       resize=st.sampled_from(["cover", "contain"]), crop=st.sampled_from(["center", "random"]))
def test_any_size_in_gives_the_target_size_out(w, h, tw, th, resize, crop):
    img = Image.new("RGB", (w, h), (10, 200, 30))
    out = ImageTransform(TransformConfig(size=(tw, th), resize=resize, crop=crop, flip=0.5))(img, random.Random(1))
    assert out.shape == (3, th, tw)
    assert out.min() >= -1 and out.max() <= 1


def test_cover_center_crop_matches_pil_reference():
    img = garment(768, 1024, seed=3)
    out = as_u8(ImageTransform(EVAL_512)(encode(img)))
    # cover: the full width, the central 768 rows, resized to 512x512
    ref = np.asarray(img.resize((512, 512), Image.Resampling.BICUBIC, box=(0, 128, 768, 896)))
    diff = np.abs(out.astype(int) - ref.astype(int))
    assert diff.mean() < 0.5 and diff.max() <= 16


def test_contain_pads_with_the_background():
    img = Image.new("RGB", (100, 50), (255, 0, 0))
    out = as_u8(ImageTransform(TransformConfig(size=(64, 64), resize="contain", background=(0, 0, 255)))(img))
    assert (out[0, 32] == (0, 0, 255)).all() and (out[63, 32] == (0, 0, 255)).all()  # top and bottom bands
    assert (out[32, 32] == (255, 0, 0)).all()


def test_random_crop_and_flip_depend_only_on_the_rng():
    data = encode(garment(300, 200))
    t = ImageTransform(TransformConfig(size=(100, 100), crop="random", flip=0.5))
    assert torch.equal(t(data, random.Random(5)), t(data, random.Random(5)))
    outs = {t(data, random.Random(s)).sum().item() for s in range(8)}
    assert len(outs) > 1
    always = ImageTransform(TransformConfig(size=(100, 100), flip=1.0))(data, random.Random(0))
    never = ImageTransform(TransformConfig(size=(100, 100), flip=0.0))(data)
    assert torch.equal(always, never.flip(-1))


def test_invalid_configs_are_refused():
    for bad in ({"size": (0, 5)}, {"resize": "stretch"}, {"crop": "top"}, {"flip": 2.0}, {"output": "half"},
                {"background": (0, 0, 300)}):
        with pytest.raises(ValueError):
            TransformConfig(**bad)


# ------------------------------------------------------------------------------------------ orientation
_INVERSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180, 4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE, 6: Image.Transpose.ROTATE_90, 7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_270,
}


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_is_applied(orientation):
    upright = garment(30, 20, seed=orientation)
    stored = upright.transpose(_INVERSE[orientation]) if orientation > 1 else upright
    data = encode(stored, "PNG", orientation=orientation)
    decoded = decode_image(data)
    assert decoded.size == (30, 20)
    assert np.array_equal(np.asarray(decoded), np.asarray(upright))
    assert np.array_equal(np.asarray(decoded), np.asarray(ImageOps.exif_transpose(Image.open(io.BytesIO(data)))))


def test_orientation_in_a_jpeg_and_through_the_transform():
    upright = garment(96, 128)
    data = encode(upright.transpose(Image.Transpose.ROTATE_90), "JPEG", orientation=6, quality=95)
    out = ImageTransform(TransformConfig(size=(96, 128)))(data)
    ref = np.asarray(ImageOps.exif_transpose(Image.open(io.BytesIO(data))).convert("RGB"))
    assert out.shape == (3, 128, 96) and np.array_equal(as_u8(out), ref)
    assert np.abs(ref.astype(int) - np.asarray(upright).astype(int)).mean() < 6  # only JPEG loss
    # a known orientation (from the dataset's metadata) overrides the tag
    assert decode_image(data, orientation=1).size == (128, 96)


# ------------------------------------------------------------------------------------------ modes
def test_rgba_is_composited_on_the_background():
    arr = np.zeros((4, 4, 4), np.uint8)
    arr[..., 0] = 200
    arr[0, 0, 3], arr[0, 1, 3], arr[0, 2, 3] = 0, 255, 128
    img = decode_image(encode(Image.fromarray(arr, "RGBA")), background=(0, 255, 0))
    px = np.asarray(img)
    assert tuple(px[0, 0]) == (0, 255, 0)
    assert tuple(px[0, 1]) == (200, 0, 0)
    assert abs(int(px[0, 2, 0]) - 100) <= 2 and abs(int(px[0, 2, 1]) - 127) <= 2


def test_la_and_palette_transparency_are_composited():
    la = Image.fromarray(np.dstack([np.full((2, 2), 50, np.uint8), np.array([[0, 255], [255, 255]], np.uint8)]), "LA")
    px = np.asarray(decode_image(encode(la), background=(255, 255, 255)))
    assert tuple(px[0, 0]) == (255, 255, 255) and tuple(px[0, 1]) == (50, 50, 50)
    pal = Image.new("P", (2, 1))
    pal.putpalette([0, 0, 0, 10, 20, 30] + [0] * 762)
    pal.putpixel((0, 0), 0)
    pal.putpixel((1, 0), 1)
    pal.info["transparency"] = 0
    px = np.asarray(decode_image(encode(pal, transparency=0), background=(9, 9, 9)))
    assert tuple(px[0, 0]) == (9, 9, 9) and tuple(px[0, 1]) == (10, 20, 30)


def test_grayscale_and_bilevel_become_rgb():
    l = Image.fromarray(np.array([[0, 77, 255]], np.uint8), "L")
    px = np.asarray(decode_image(encode(l)))
    assert px.shape == (1, 3, 3) and (px[0, 1] == 77).all()
    one = Image.fromarray(np.array([[0, 1]], bool))
    px = np.asarray(decode_image(encode(one)))
    assert (px[0, 0] == 0).all() and (px[0, 1] == 255).all()


def test_sixteen_bit_is_scaled_not_clipped():
    arr = np.array([[0, 257 * 128, 65535, 300]], np.uint16)
    img = Image.fromarray(arr)
    assert img.mode.startswith("I;16")
    px = np.asarray(decode_image(encode(img)))
    assert list(px[0, :, 0]) == [0, 128, 255, 1]


def test_float_images_are_read_as_unit_range():
    img = Image.fromarray(np.array([[0.0, 0.5, 1.0, 7.0]], np.float32), "F")
    px = np.asarray(decode_image(encode(img, "TIFF")))
    assert list(px[0, :, 0]) == [0, 128, 255, 255]


def test_cmyk_jpeg_converts_like_pil():
    rgb = garment(64, 64)
    data = encode(rgb.convert("CMYK"), "JPEG", quality=95)
    got = np.asarray(decode_image(data)).astype(int)
    ref = np.asarray(Image.open(io.BytesIO(data)).convert("RGB")).astype(int)
    assert np.array_equal(got, ref)
    assert np.abs(got - np.asarray(rgb).astype(int)).mean() < 8


# ------------------------------------------------------------------------------------------ reduced decoding
def test_jpeg_is_decoded_at_reduced_scale_when_the_target_is_small():
    data = encode(garment(1024, 1024), "JPEG", quality=90)
    assert decode_image(data, min_size=(128, 128)).size == (128, 128)
    assert decode_image(data, min_size=(200, 200)).size == (256, 256)
    assert decode_image(data, min_size=(600, 600)).size == (1024, 1024)
    # the transform keeps a 2x margin (decodes at 256 for a 128 target), so the antialiased resize still filters
    small = ImageTransform(TransformConfig(size=(128, 128)))(data)
    full = ImageTransform(TransformConfig(size=(128, 128), reduced_decode=False))(data)
    assert (to_uint8(small).int() - to_uint8(full).int()).abs().float().mean() < 1.5


def test_reduced_decode_respects_rotated_orientation():
    upright = garment(512, 1024)
    data = encode(upright.transpose(Image.Transpose.ROTATE_90), "JPEG", orientation=6, quality=90)
    img = decode_image(data, min_size=(128, 256))
    assert img.size == (128, 256)
    img = decode_image(data, min_size=(256, 128))  # a landscape need covers only at 1/2 in the upright frame
    assert img.width >= 256 and img.height >= 128


def test_undecodable_bytes_raise():
    with pytest.raises(Exception):
        decode_image(b"not an image")
    with pytest.raises(Exception):
        decode_image(encode(garment(64, 64), "JPEG")[:200])
