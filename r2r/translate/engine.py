"""What both translation commands share: decoding an input as the loaders do, the size policy, running a batch
through `R2RPipeline` with the checks that keep wrong results out, and encoding the lossless PNG.

Decoding goes through `loaders` (EXIF orientation, CMYK, 16-bit, palette handled as for training). Sizes the VAE
cannot take (not divisible by 8) are never changed silently: `SizePolicy` either rejects them by name, pads them
(edges replicated, the output cropped back to the input's size) or resizes everything to one explicit size. A
batch whose output is not finite, or an image that comes out one flat colour, is an error naming the image: such
outputs are never written, so a rerun tries them again.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F

from ..config import ModelSpec, RIGParams

MULTIPLE = 8  # the VAE's downsampling factor


class BadOutputError(RuntimeError):
    """The model produced a non-finite or flat output; the message names the images."""

    def __init__(self, names: Sequence[str], what: str):
        self.names = list(names)
        shown = ", ".join(self.names[:5]) + (f" and {len(self.names) - 5} more" if len(self.names) > 5 else "")
        super().__init__(f"{what} for {shown}; nothing was written for them. Check the model and DKI artifacts "
                         "(a NaN embedding or LoRA, a float16 overflow: try --dtype bfloat16 or float32)")


@dataclass(frozen=True)
class SizePolicy:
    """How an input of any size becomes one the VAE takes (a multiple of 8 on both sides).

    resize: translate every image at this (width, height) (both multiples of 8): the input is scaled to cover it
        and centre-cropped (loaders' "cover"), the output has this size.
    pad: pad to the next multiple of 8 (edge pixels replicated) and crop the output back to the input's size.
    Neither: an input whose size is not a multiple of 8 is rejected, by name.
    """

    resize: tuple[int, int] | None = None
    pad: bool = False

    def __post_init__(self) -> None:
        if self.resize is not None and self.pad:
            raise ValueError("choose one of --resize and --pad")
        if self.resize is not None and (self.resize[0] % MULTIPLE or self.resize[1] % MULTIPLE or min(self.resize) <= 0):
            raise ValueError(f"--resize {self.resize[0]}x{self.resize[1]}: both sides must be positive multiples of "
                             f"{MULTIPLE}")

    @classmethod
    def parse(cls, resize: str | None = None, pad: bool = False) -> "SizePolicy":
        size = None
        if resize:
            try:
                w, h = (int(x) for x in resize.lower().split("x"))
            except ValueError:
                raise ValueError(f"--resize {resize!r}: expected WIDTHxHEIGHT, e.g. 384x512") from None
            size = (w, h)
        return cls(resize=size, pad=pad)

    def model_size(self, width: int, height: int) -> tuple[int, int] | str:
        """The (width, height) the model sees for an upright input of this size, or why it is rejected."""
        if self.resize is not None:
            return self.resize
        if self.pad:
            return -(-width // MULTIPLE) * MULTIPLE, -(-height // MULTIPLE) * MULTIPLE
        if width % MULTIPLE or height % MULTIPLE:
            return (f"size {width}x{height} is not divisible by {MULTIPLE} (the VAE's factor): pass --pad, or "
                    f"--resize WxH with multiples of {MULTIPLE}")
        return width, height

    def output_size(self, width: int, height: int) -> tuple[int, int]:
        return self.resize if self.resize is not None else (width, height)

    def describe(self) -> dict:
        return {"resize": list(self.resize) if self.resize else None, "pad": self.pad}


def upright_size(meta: dict) -> tuple[int, int]:
    """(width, height) of a record's image once its EXIF orientation is applied."""
    w, h = int(meta["width"]), int(meta["height"])
    return (h, w) if int(meta.get("orientation") or 1) in (5, 6, 7, 8) else (w, h)


def decode_for_model(data: bytes, orientation: int | None, policy: SizePolicy) -> torch.Tensor:
    """Image bytes -> uint8 [3, H, W] at the model's size (loaders' decoder; see `SizePolicy`)."""
    from loaders.decode import decode_image
    from loaders.transforms import ImageTransform, TransformConfig, pil_to_uint8_tensor

    if policy.resize is not None:
        cfg = TransformConfig(size=policy.resize, resize="cover", crop="center", output="uint8")
        return ImageTransform(cfg)(data, orientation=orientation)
    img = decode_image(data, orientation=orientation)
    chw = pil_to_uint8_tensor(img)[..., :3].permute(2, 0, 1).contiguous()
    if policy.pad:
        h, w = chw.shape[-2:]
        ph, pw = -(-h // MULTIPLE) * MULTIPLE - h, -(-w // MULTIPLE) * MULTIPLE - w
        if ph or pw:
            chw = F.pad(chw[None].float(), (0, pw, 0, ph), mode="replicate")[0].to(torch.uint8)
    return chw


def encode_png(chw: torch.Tensor) -> bytes:
    """uint8 [3, H, W] -> PNG bytes (deterministic: same pixels, same bytes)."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(chw.permute(1, 2, 0).contiguous().numpy(), "RGB").save(buf, format="PNG")
    return buf.getvalue()


class Translator:
    """One loaded pipeline, and the calls that turn a batch of uint8 images into uint8 outputs."""

    def __init__(self, spec: ModelSpec, params: RIGParams, seed: int = 0):
        from ..models import load_pipeline

        self.spec, self.params, self.seed = spec, params, seed
        torch.manual_seed(seed)
        self.pipe = load_pipeline(spec)
        self.pipe.set_progress_bar_config(disable=True)  # callers show images, not denoising steps

    def __call__(self, images: torch.Tensor, names: Sequence[str],
                 crop_to: Sequence[tuple[int, int]] | None = None) -> list[torch.Tensor]:
        """uint8 [N, 3, H, W] -> N uint8 [3, H, W] outputs (each cropped to `crop_to[i]` = (width, height))."""
        from ..pipeline import NonFiniteOutputError

        x01 = images.float().div_(255.0)
        generators = [torch.Generator().manual_seed(self.seed) for _ in names]
        try:
            out = self.pipe(x01, generator=generators, output_type="pt", **asdict(self.params)).images
        except NonFiniteOutputError as e:  # the pipeline names batch rows; the caller's names say which images
            raise BadOutputError([names[i] for i in e.indices], "the translation is not finite (NaN or Inf)") from None
        u8 = (out * 255).round_().to(torch.uint8)
        flat = [n for n, img in zip(names, u8) if bool((img == img[:, :1, :1]).all())]
        if flat:
            raise BadOutputError(flat, "the translation is one flat colour")
        if crop_to is not None:
            return [img[:, :h, :w] for img, (w, h) in zip(u8, crop_to)]
        return list(u8)
