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
from collections.abc import Callable, Sequence
from dataclasses import asdict

import torch
import torch.nn.functional as F

from ..config import ModelSpec, RIGParams
from .sizes import MULTIPLE, SizePolicy, upright_size  # noqa: F401  (re-exported)

class BadOutputError(RuntimeError):
    """The model produced a non-finite or flat output; the message names the images. `good`: the other images of
    the batch (name -> uint8 [3, H, W]), for a caller that keeps them (translate-images; a dataset batch is
    redone whole instead)."""

    def __init__(self, names: Sequence[str], what: str, good: dict | None = None):
        self.names, self.good = list(names), dict(good or {})
        shown = ", ".join(self.names[:5]) + (f" and {len(self.names) - 5} more" if len(self.names) > 5 else "")
        super().__init__(f"{what} for {shown}; nothing was written for them. Check the model and DKI artifacts "
                         "(a NaN embedding or LoRA, a float16 overflow: try --dtype bfloat16 or float32)")


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


# The translate commands' progress columns: images done (a batch advances by the share of its steps done) and the
# step of the batch under way, so a CPU run that takes minutes per batch visibly moves.
def progress_columns() -> tuple:
    from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    return (TextColumn("[bold]translating"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[step]}"),
            TimeElapsedColumn(), TimeRemainingColumn())


def step_progress(bar, task, done_before: float, images: int) -> Callable[[int, int], None]:
    """`on_step` for a batch of `images` that starts with `done_before` images done: moves `task` of the rich
    `bar` by the batch's share of its steps, and shows 'batch step i/n'."""
    def report(done: int, total: int) -> None:
        bar.update(task, completed=done_before + images * done / total, step=f"batch step {done}/{total}")

    return report


class Translator:
    """One loaded pipeline, and the calls that turn a batch of uint8 images into uint8 outputs."""

    def __init__(self, spec: ModelSpec, params: RIGParams, seed: int = 0):
        from ..models import load_pipeline

        self.spec, self.params, self.seed = spec, params, seed
        torch.manual_seed(seed)
        self.pipe = load_pipeline(spec)
        self.pipe.set_progress_bar_config(disable=True)  # callers show images, not denoising steps

    def __call__(self, images: torch.Tensor, names: Sequence[str],
                 crop_to: Sequence[tuple[int, int]] | None = None,
                 on_step: Callable[[int, int], None] | None = None) -> list[torch.Tensor]:
        """uint8 [N, 3, H, W] -> N uint8 [3, H, W] outputs (each cropped to `crop_to[i]` = (width, height)).
        `on_step(done, total)`: after each inversion and denoising step of the batch (see `step_progress`)."""
        from ..rig.pipeline import NonFiniteOutputError

        x01 = images.float().div_(255.0)
        generators = [torch.Generator().manual_seed(self.seed) for _ in names]
        bad: list[int] = []
        self.pipe.step_progress = on_step
        try:
            out = self.pipe(x01, generator=generators, output_type="pt", **asdict(self.params)).images
        except NonFiniteOutputError as e:  # the pipeline names batch rows; the caller's names say which images
            out, bad = e.output.images, list(e.indices)
        finally:
            self.pipe.step_progress = None
        u8 = (out.nan_to_num(0.0) * 255).round_().to(torch.uint8)
        if crop_to is not None:
            u8 = [img[:, :h, :w] for img, (w, h) in zip(u8, crop_to)]
        flat = [i for i, img in enumerate(u8) if i not in bad and bool((img == img[:, :1, :1]).all())]
        if bad or flat:
            good = {n: img for i, (n, img) in enumerate(zip(names, u8)) if i not in bad and i not in flat}
            what = "the translation is not finite (NaN or Inf)" if bad else "the translation is one flat colour"
            raise BadOutputError([names[i] for i in sorted(bad + flat)], what, good)
        return list(u8)
