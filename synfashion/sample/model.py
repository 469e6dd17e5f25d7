"""The garment drawing's data model: a project's `Geometry` (the knobs a builder reads) and the `Sketch` a builder
fills.

A `Sketch` lives in design units (a front view is roughly 700-1300 units tall, x = 0 on the garment's centre line,
y downwards) and lists filled `Part`s (fabric; inner fabric seen through an opening; trim bands), `Mark`s (seam
lines, creases, top-stitching, piping), `Hardware` (buttons, zips, rivets, buckles) and soft `Fold`s, each tagged
front, back or both. Plain data and its recording methods: no garment shapes (`categories`, `components`), no
pixels (`raster`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .geometry import Pt


@dataclass(frozen=True)
class Geometry:
    """A 3D project's shape: the sample's stand-in for distinct garment geometry."""

    length: float = 1.0
    width: float = 1.0
    sleeve: float = 1.0
    flare: float = 1.0
    variant: int = 0
    detail: float = 0.5  # a free knob in [0, 1): pockets, neckline depth, ...


def random_geometry(rng: np.random.Generator, variant: int) -> Geometry:
    return Geometry(
        length=float(rng.uniform(0.9, 1.1)), width=float(rng.uniform(0.92, 1.08)),
        sleeve=float(rng.uniform(0.88, 1.08)), flare=float(rng.uniform(0.85, 1.2)), variant=variant,
        detail=float(rng.random()),
    )


@dataclass
class Part:
    pts: list[Pt]
    role: str  # fabric | trim | inner | deep
    side: str  # both | front | back
    outline: bool = False
    bands: tuple[float, float, float, float, float] | None = None  # quilting: origin x, y, axis x, y, pitch
    layer: int = 0  # garments stacked over others (a jacket over trousers) hide the marks of lower layers


@dataclass
class Mark:
    kind: str  # seam | fold | stitch | piping
    pts: list[Pt]
    side: str
    closed: bool = False
    layer: int = 0


@dataclass
class Hardware:
    kind: str  # button | rivet | zip | aglet | buckle | eyelet
    pts: list[Pt]
    size: float
    side: str
    layer: int = 0


@dataclass
class Fold:
    """Soft vertical folds between y0 and y1 (then constant), across a half-width varying from w0 to w1."""

    y0: float
    w0: float
    y1: float
    w1: float
    n: float
    amp: float
    x0: float = 0.0


@dataclass
class Sketch:
    parts: list[Part] = field(default_factory=list)
    marks: list[Mark] = field(default_factory=list)
    hardware: list[Hardware] = field(default_factory=list)
    folds: list[Fold] = field(default_factory=list)
    dy: float = 0.0  # offset added to everything drawn (stacking a top over a bottom)
    layer: int = 0

    def over(self) -> None:
        """What follows is worn over what came before: it hides the seams and buttons it covers."""
        self.layer += 1

    def _t(self, pts) -> list[Pt]:
        return [(float(x), float(y) + self.dy) for x, y in pts]

    def fabric(self, pts, side="both", outline=False, bands=None, role="fabric"):
        if bands is not None:
            bands = (bands[0], bands[1] + self.dy, *bands[2:])
        self.parts.append(Part(self._t(pts), role, side, outline, bands, self.layer))

    def trim(self, pts, side="both", outline=False):
        self.fabric(pts, side, outline, role="trim")

    def inner(self, pts, side="both", deep=False):
        self.fabric(pts, side, role="deep" if deep else "inner")

    def mark(self, kind, pts, side="both", closed=False):
        self.marks.append(Mark(kind, self._t(pts), side, closed, self.layer))

    def seam(self, pts, side="both", closed=False):
        self.mark("seam", pts, side, closed)

    def crease(self, pts, side="both", closed=False):
        self.mark("fold", pts, side, closed)

    def stitch(self, pts, side="both", closed=False):
        self.mark("stitch", pts, side, closed)

    def hw(self, kind, pts, size, side="front"):
        self.hardware.append(Hardware(kind, self._t(pts), size, side, self.layer))

    def button(self, x, y, r=10.0, side="front"):
        self.hw("button", [(x, y)], r, side)

    def zip(self, x, y0, y1, side="front"):
        self.hw("zip", [(x, y0), (x, y1)], 5.0, side)

    def fold(self, y0, w0, y1, w1, n, amp, x0=0.0):
        self.folds.append(Fold(y0 + self.dy, w0, y1 + self.dy, w1, n, amp, x0))

    def bbox(self, side: str) -> tuple[float, float, float, float]:
        pts = np.array([p for part in self.parts if part.side in ("both", side) for p in part.pts])
        return float(pts[:, 0].min()), float(pts[:, 1].min()), float(pts[:, 0].max()), float(pts[:, 1].max())
