"""The image transform training and translation share: bytes -> resized, cropped CHW tensor in [-1, 1].

Implemented once so that DKI training, R2R translation and evaluation see identical pixels for the same file.
Decoding is `decode.decode_image` (EXIF, modes, reduced-size JPEG decode); the crop is taken on the decoded
pixels first and only that region is resized, with torch's antialiased uint8 kernels (several times faster than
PIL's resize on CPU, and matching it to within rounding). Randomness (random crop, flip) comes only from the
`random.Random` the caller passes, so a sample's augmentation depends on (seed, epoch, key), never on which
worker or rank produced it. This module reads no files.
"""

from __future__ import annotations

import math
import random
import warnings
from dataclasses import dataclass, replace
from typing import Literal

import numpy as np
import pyarrow as pa
import torch
import torch.nn.functional as F
from PIL import Image

from .decode import RGB, WHITE, apply_orientation, decode_image, read_orientation, to_rgb

# A reduced-size JPEG decode keeps at least this factor of the target's pixels per side.
DRAFT_MARGIN = 2.0

ResizeMode = Literal["cover", "contain"]
CropMode = Literal["center", "random"]
Resample = Literal["bilinear", "bicubic"]
OutputType = Literal["float", "uint8"]


@dataclass(frozen=True)
class TransformConfig:
    """How a decoded image becomes a tensor.

    size: output (width, height).
    resize: "cover" scales the image so it covers `size` keeping its aspect, then crops (nothing is distorted,
        the overflow is cut); "contain" scales it to fit inside and pads with `background`.
    crop: where a "cover" crop is taken: "center", or "random" (uniform over the valid offsets).
    flip: probability of a horizontal flip.
    background: RGB colour that transparency is composited on and "contain" padding is filled with.
    resample: antialiased interpolation of the downscale (or upscale).
    reduced_decode: decode JPEGs at 1/2..1/8 scale when that still leaves 2x the target's pixels per side.
    output: "float" gives float32 in [-1, 1]; "uint8" gives 0..255 (4x less to move between processes;
        call `to_float` on the device).
    """

    size: tuple[int, int] = (512, 512)
    resize: ResizeMode = "cover"
    crop: CropMode = "center"
    flip: float = 0.0
    background: RGB = WHITE
    resample: Resample = "bicubic"
    reduced_decode: bool = True
    output: OutputType = "float"

    def __post_init__(self) -> None:
        w, h = self.size
        if w <= 0 or h <= 0:
            raise ValueError(f"size must be positive (width, height), got {self.size}")
        if self.resize not in ("cover", "contain"):
            raise ValueError(f"resize={self.resize!r}; choose 'cover' or 'contain'")
        if self.crop not in ("center", "random"):
            raise ValueError(f"crop={self.crop!r}; choose 'center' or 'random'")
        if not 0.0 <= self.flip <= 1.0:
            raise ValueError(f"flip is a probability, got {self.flip}")
        if self.resample not in ("bilinear", "bicubic"):
            raise ValueError(f"resample={self.resample!r}; choose 'bilinear' or 'bicubic'")
        if self.output not in ("float", "uint8"):
            raise ValueError(f"output={self.output!r}; choose 'float' or 'uint8'")
        if len(self.background) != 3 or any(not 0 <= c <= 255 for c in self.background):
            raise ValueError(f"background must be an RGB triple of 0..255, got {self.background}")

    @property
    def is_random(self) -> bool:
        return self.flip > 0.0 or (self.resize == "cover" and self.crop == "random")

    def with_(self, **changes) -> "TransformConfig":
        return replace(self, **changes)


# Presets. Sizes are (width, height): the SynFashion renders are 768 wide, 1024 tall.
TRANSLATE_768x1024 = TransformConfig(size=(768, 1024), crop="center", flip=0.0, resample="bicubic")
TRAIN_512 = TransformConfig(size=(512, 512), crop="random", flip=0.5, resample="bicubic")
EVAL_512 = TransformConfig(size=(512, 512), crop="center", flip=0.0, resample="bicubic")
PRESETS: dict[str, TransformConfig] = {"translate": TRANSLATE_768x1024, "train": TRAIN_512, "eval": EVAL_512}


def _cover_box(
    w: int, h: int, tw: int, th: int, crop: CropMode, rng: random.Random | None
) -> tuple[int, int, int, int]:
    """The integer source region (x0, y0, cw, ch) whose aspect best matches the target's."""
    scale = max(tw / w, th / h)
    cw = min(w, max(1, round(tw / scale)))
    ch = min(h, max(1, round(th / scale)))
    if crop == "random":
        if rng is None:
            raise ValueError("a random crop needs an rng")
        x0 = rng.randint(0, w - cw)
        y0 = rng.randint(0, h - ch)
    else:
        x0 = (w - cw) // 2
        y0 = (h - ch) // 2
    return x0, y0, cw, ch


def _resize_u8(chw: torch.Tensor, size_hw: tuple[int, int], mode: Resample) -> torch.Tensor:
    """uint8 [1,3,h,w] -> uint8 [1,3,H,W]; channels-last input takes torch's vectorised antialias kernel."""
    if tuple(chw.shape[-2:]) == tuple(size_hw):
        return chw
    x = chw.contiguous(memory_format=torch.channels_last)
    return F.interpolate(x, size=size_hw, mode=mode, antialias=True)


def pil_to_uint8_tensor(img: Image.Image) -> torch.Tensor:
    """RGB PIL image -> uint8 [H, W, C] tensor with C = 4 (RGB plus PIL's padding byte) or 3; use [..., :3].

    PIL stores RGB as 4 bytes per pixel. Through its Arrow export the tensor views that memory without a copy,
    and the 4-byte pixels are exactly the channels-last layout torch's vectorised resize wants; the padding
    channel is dropped after resizing. Falls back to one copy (`np.asarray`) where the export is unavailable.
    """
    h, w = img.height, img.width
    if img.mode == "RGB":
        try:
            buf = pa.array(img).buffers()[-1]
            if buf is not None and buf.size >= h * w * 4:
                arr = np.frombuffer(buf, dtype=np.uint8, count=h * w * 4).reshape(h, w, 4)
                return _from_readonly(arr)
        except Exception:  # an older Pillow, or an image PIL did not allocate as one block
            pass
    return _from_readonly(np.asarray(img))


def _from_readonly(arr: np.ndarray) -> torch.Tensor:
    with warnings.catch_warnings():  # the array is read-only; nothing writes through the tensor
        warnings.simplefilter("ignore", UserWarning)
        return torch.from_numpy(arr)


def to_float(x: torch.Tensor) -> torch.Tensor:
    """uint8 0..255 -> float32 in [-1, 1] (for `output="uint8"` batches, after moving them to the device)."""
    return x.to(torch.float32).mul_(1.0 / 127.5).sub_(1.0)


def to_uint8(x: torch.Tensor) -> torch.Tensor:
    """float in [-1, 1] -> uint8 0..255 (for saving or comparing)."""
    return ((x.clamp(-1, 1) + 1.0) * 127.5).round_().to(torch.uint8)


class ImageTransform:
    """Callable: (image bytes | PIL image, rng) -> CHW tensor, per a `TransformConfig`.

    >>> t = ImageTransform(TransformConfig(size=(64, 32)))
    >>> t(Image.new("RGB", (100, 100), "red")).shape
    torch.Size([3, 32, 64])
    """

    def __init__(self, config: TransformConfig = EVAL_512):
        self.config = config

    def __repr__(self) -> str:
        return f"ImageTransform({self.config})"

    def decode(self, data: bytes, *, orientation: int | None = None) -> Image.Image:
        """Decode at the smallest JPEG scale that still covers what `__call__` will need."""
        min_size = self._min_decode_size() if self.config.reduced_decode else None
        return decode_image(data, min_size=min_size, background=self.config.background, orientation=orientation)

    def _min_decode_size(self) -> tuple[int, int]:
        # Keep DRAFT_MARGIN x the target per side (as PIL's thumbnail does with reducing_gap): the DCT scaling
        # alone aliases fine texture, the antialiased resize from >= 2x does the filtering. For "contain" one
        # side would suffice; asking for both never decodes below the target's resolution.
        w, h = self.config.size
        return math.ceil(w * DRAFT_MARGIN), math.ceil(h * DRAFT_MARGIN)

    def __call__(
        self, image: bytes | Image.Image, rng: random.Random | None = None, *, orientation: int | None = None
    ) -> torch.Tensor:
        cfg = self.config
        if isinstance(image, (bytes, bytearray, memoryview)):
            img = self.decode(bytes(image), orientation=orientation)
        else:
            if orientation is None:
                orientation = read_orientation(image)
            image.load()
            img = apply_orientation(to_rgb(image, cfg.background), orientation)
        if cfg.is_random and rng is None:
            rng = random.Random()
        tw, th = cfg.size
        hwc = pil_to_uint8_tensor(img)
        h, w = hwc.shape[0], hwc.shape[1]
        if cfg.resize == "cover":
            x0, y0, cw, ch = _cover_box(w, h, tw, th, cfg.crop, rng)
            region = hwc[y0 : y0 + ch, x0 : x0 + cw].permute(2, 0, 1).unsqueeze(0)
            out = _resize_u8(region, (th, tw), cfg.resample)[0, :3]
        else:
            scale = min(tw / w, th / h)
            rw, rh = min(tw, max(1, math.floor(w * scale + 0.5))), min(th, max(1, math.floor(h * scale + 0.5)))
            inner = _resize_u8(hwc.permute(2, 0, 1).unsqueeze(0), (rh, rw), cfg.resample)[0, :3]
            out = torch.tensor(cfg.background, dtype=torch.uint8).view(3, 1, 1).expand(3, th, tw).clone()
            top, left = (th - rh) // 2, (tw - rw) // 2
            out[:, top : top + rh, left : left + rw] = inner
        if cfg.flip > 0.0 and rng.random() < cfg.flip:
            out = out.flip(-1)
        if cfg.output == "uint8":
            return out.contiguous()
        return out.to(torch.float32, memory_format=torch.contiguous_format).mul_(1.0 / 127.5).sub_(1.0)
