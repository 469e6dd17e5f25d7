"""The size policy of translation: which size the model sees for an input, and which size the output gets.

The VAE takes sides that are multiples of 8; anything else is never changed silently: rejected by name, padded
(edges replicated, the output cropped back), or resized to one explicit size for every image. Plain data, no torch
(the CLI builds it while parsing).
"""

from __future__ import annotations

from dataclasses import dataclass

from synfashion.cliutil import option

MULTIPLE = 8  # the VAE's downsampling factor


def parse_wxh(text: str | None) -> tuple[int, int] | None:
    """--resize '384x512' -> (384, 512); nothing given -> None."""
    if not text:
        return None
    try:
        w, h = (int(x) for x in text.lower().split("x"))
    except ValueError:
        raise ValueError(f"--resize {text!r}: expected WIDTHxHEIGHT, e.g. 384x512") from None
    return w, h


@dataclass(frozen=True)
class SizePolicy:
    """How an input of any size becomes one the VAE takes (a multiple of 8 on both sides).

    resize: translate every image at this (width, height) (both multiples of 8): the input is scaled to cover it
        and centre-cropped (loaders' "cover"), the output has this size.
    pad: pad to the next multiple of 8 (edge pixels replicated) and crop the output back to the input's size.
    Neither: an input whose size is not a multiple of 8 is rejected, by name.
    """

    resize: tuple[int, int] | None = option("--resize", default=None, metavar="WxH", parse=parse_wxh,
                                            help="translate every image at this size (multiples of 8)")
    pad: bool = option("--pad", default=False,
                       help="pad sizes not divisible by 8 (edges replicated) and crop the output back (otherwise "
                            "such images are rejected by name)")

    def __post_init__(self) -> None:
        if self.resize is not None and self.pad:
            raise ValueError("choose one of --resize and --pad")
        if self.resize is not None and (self.resize[0] % MULTIPLE or self.resize[1] % MULTIPLE or min(self.resize) <= 0):
            raise ValueError(f"--resize {self.resize[0]}x{self.resize[1]}: both sides must be positive multiples of "
                             f"{MULTIPLE}")

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


