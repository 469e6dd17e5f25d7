"""Image preprocessing the reference tools apply before their networks, reproduced without torchvision.

dgm-eval (DINOv2) and clean-fid (CLIP) hand PIL images to torchvision's `Resize(..., BICUBIC)`, which on a PIL
image is `PIL.Image.resize(size, Image.BICUBIC)`: a separable bicubic (a = -0.5) whose support widens when
shrinking (antialiased), computed in 8-bit with rounding after each pass. `pil_resize` calls PIL the same way, so
its output is those tools' to the byte (same Pillow). `torch_resize` is the tensor approximation
(`F.interpolate(mode="bicubic", antialias=True)`, the same kernel in float, no 8-bit rounding): within a grey level
or two of PIL, and what to use on a GPU; it is a different protocol string, hence a different cache key.
Geometry follows torchvision: `short_side_size` (the long side is `int(short * long / short_side)`) and
`center_crop` (offsets `int(round((H - h) / 2))`). No file I/O; no network code.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


def check_images(images: torch.Tensor) -> None:
    if not isinstance(images, torch.Tensor) or images.ndim != 4 or images.shape[1] != 3:
        shape = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
        raise ValueError(f"expected images [N, 3, H, W] (uint8, or float in [0, 1]), got {shape}")


def as_uint8(images: torch.Tensor) -> torch.Tensor:
    """uint8 as is; float in [0, 1] -> round(x * 255), clamped: what writing the image as a PNG would keep."""
    check_images(images)
    if images.dtype == torch.uint8:
        return images
    if not images.is_floating_point():
        raise ValueError(f"expected uint8 or float images, got {images.dtype}")
    return (images.float() * 255.0).round_().clamp_(0, 255).to(torch.uint8)


def as_float255(images: torch.Tensor) -> torch.Tensor:
    """uint8 -> float 0..255; float in [0, 1] -> x * 255 (not quantised)."""
    check_images(images)
    return images.float() if images.dtype == torch.uint8 else images.float() * 255.0


def short_side_size(height: int, width: int, short: int) -> tuple[int, int]:
    """torchvision's `Resize(int)`: the shorter side becomes `short`, the longer `int(short * long / short_side)`."""
    if width <= height:
        return int(short * height / width), short
    return short, int(short * width / height)


def pil_resize(images: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """uint8 [N, 3, H, W] -> uint8 [N, 3, h, w] through `PIL.Image.resize((w, h), BICUBIC)`, image by image."""
    from PIL import Image

    images = as_uint8(images)
    h, w = size
    if tuple(images.shape[-2:]) == (h, w):
        return images
    out = torch.empty((images.shape[0], 3, h, w), dtype=torch.uint8)
    hwc = images.detach().cpu().permute(0, 2, 3, 1).contiguous().numpy()
    for i, arr in enumerate(hwc):
        resized = Image.fromarray(arr, "RGB").resize((w, h), Image.BICUBIC)
        out[i] = torch.from_numpy(np.asarray(resized).copy()).permute(2, 0, 1)
    return out.to(images.device)


def torch_resize(images: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Images -> float 0..255 [N, 3, h, w]: antialiased bicubic (PIL's kernel) in float, clamped to 0..255."""
    x = as_float255(images)
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    return F.interpolate(x, size=size, mode="bicubic", antialias=True, align_corners=False).clamp_(0, 255)


def resize(images: torch.Tensor, size: tuple[int, int], method: str) -> torch.Tensor:
    """`method` "pil" (byte-exact with the reference tools) or "torch"; returns float 0..255."""
    if method == "pil":
        return pil_resize(images, size).float()
    if method == "torch":
        return torch_resize(images, size)
    raise ValueError(f"resize method must be 'pil' or 'torch', got {method!r}")


def center_crop(x: torch.Tensor, size: int) -> torch.Tensor:
    """torchvision's CenterCrop for an image at least `size` on each side."""
    h, w = x.shape[-2:]
    if h < size or w < size:
        raise ValueError(f"center crop {size} needs an image at least {size}x{size}, got {w}x{h}")
    top, left = int(round((h - size) / 2.0)), int(round((w - size) / 2.0))
    return x[..., top:top + size, left:left + size]


def normalize(x255: torch.Tensor, mean: tuple[float, ...], std: tuple[float, ...]) -> torch.Tensor:
    """float 0..255 -> (x / 255 - mean) / std per channel (torchvision's ToTensor then Normalize)."""
    m = torch.tensor(mean, dtype=x255.dtype, device=x255.device).view(1, 3, 1, 1)
    s = torch.tensor(std, dtype=x255.dtype, device=x255.device).view(1, 3, 1, 1)
    return (x255 / 255.0 - m) / s


__all__ = [
    "CLIP_MEAN", "CLIP_STD", "IMAGENET_MEAN", "IMAGENET_STD", "as_float255", "as_uint8", "center_crop",
    "check_images", "normalize", "pil_resize", "resize", "short_side_size", "torch_resize",
]
