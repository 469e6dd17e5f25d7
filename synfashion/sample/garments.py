"""Garment drawings for the sample release: one parametric sketch per category, rasterised per view.

A `Sketch` lives in design units (a front view is roughly 700-1300 units tall, x = 0 on the garment's centre line,
y downwards) and lists filled parts (fabric; inner fabric seen through an opening; trim bands), seam lines,
top-stitching and piping, hardware (buttons, zips, rivets, buckles) and soft folds, each tagged front, back or
both. A project's `Geometry` (length, width, sleeve, flare, a style variant) changes the sketch; a `View` (from the
camera azimuth) picks the front or back side, mirrors the back, narrows side views and shifts their details.
`Frame` fits the sketch into the image like the release's garment crop. Drawing is PIL polygons plus a little
numpy at quarter resolution for the shading; no I/O, no randomness of its own.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

Pt = tuple[float, float]

# Style variants per category (a project's `Geometry.variant` is taken modulo this).
N_VARIANTS: dict[str, int] = {
    "pants": 3, "t-shirt": 4, "lingerie-and-swimwear": 3, "half-skirt": 4, "hoodie": 2, "coat": 3, "jacket": 2,
    "set": 3, "home-wear": 3, "hat": 4, "hanfu": 2, "jeans": 3, "shorts": 3, "down-jacket": 2,
    "vest-and-camisole": 3, "shirt": 3, "suit": 2, "dress": 4, "sweater": 4, "trench-coat": 2,
}

TONES = {"fabric": 1.0, "trim": 1.0, "inner": 0.6, "deep": 0.42}


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


# ------------------------------------------------------------------------------------------ the sketch model


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


# ------------------------------------------------------------------------------------------- curve helpers


def bez(p0: Pt, p1: Pt, p2: Pt, n: int = 10) -> list[Pt]:
    t = np.linspace(0, 1, n)[:, None]
    a, b, c = map(np.asarray, (p0, p1, p2))
    return [tuple(p) for p in ((1 - t) ** 2 * a + 2 * (1 - t) * t * b + t**2 * c)]


def arc(cx: float, cy: float, rx: float, ry: float, a0: float, a1: float, n: int = 20) -> list[Pt]:
    """Ellipse arc, angles in degrees, 0 = +x, 90 = down."""
    t = np.radians(np.linspace(a0, a1, n))
    return list(zip(cx + rx * np.cos(t), cy + ry * np.sin(t)))


def spline(pts: list[Pt], n: int = 8) -> list[Pt]:
    """Catmull-Rom curve through the points (ends included)."""
    p = np.asarray(pts, float)
    p = np.vstack([2 * p[0] - p[1], p, 2 * p[-1] - p[-2]])
    out = []
    t = np.linspace(0, 1, n, endpoint=False)[:, None]
    for i in range(1, len(p) - 2):
        p0, p1, p2, p3 = p[i - 1], p[i], p[i + 1], p[i + 2]
        out += [tuple(q) for q in 0.5 * ((2 * p1) + (-p0 + p2) * t + (2 * p0 - 5 * p1 + 4 * p2 - p3) * t**2
                                          + (-p0 + 3 * p1 - 3 * p2 + p3) * t**3)]
    return out + [tuple(p[-2])]


def mirror(pts: list[Pt]) -> list[Pt]:
    return [(-x, y) for x, y in pts]


def sym(half: list[Pt]) -> list[Pt]:
    """A symmetric closed outline from its right half (listed from the centre line at the top to the bottom)."""
    back = [(-x, y) for x, y in reversed(half)]
    if abs(half[-1][0]) < 1e-6:
        back = back[1:]
    if abs(half[0][0]) < 1e-6:
        back = back[:-1]
    return half + back


def both(pts: list[Pt]) -> list[Pt]:
    """A symmetric open polyline from its right half (centre line first): left end ... right end."""
    return mirror(list(reversed(pts)))[:-1] + pts if abs(pts[0][0]) < 1e-6 else mirror(list(reversed(pts))) + pts


def thick(pts: list[Pt], width: float) -> list[Pt]:
    """A ribbon polygon of `width` around a polyline."""
    p = np.asarray(pts, float)
    d = np.gradient(p, axis=0)
    d /= np.linalg.norm(d, axis=1, keepdims=True) + 1e-9
    nrm = np.stack([-d[:, 1], d[:, 0]], 1) * width / 2
    return [tuple(q) for q in p + nrm] + [tuple(q) for q in (p - nrm)[::-1]]


def scallop(p: Pt, q: Pt, bumps: int, amp: float) -> list[Pt]:
    """Points from p towards q (q excluded) bulging `amp` to the right of travel, `bumps` times (puffer edges)."""
    p_, q_ = np.asarray(p, float), np.asarray(q, float)
    d = q_ - p_
    nrm = np.array([-d[1], d[0]]) / (np.linalg.norm(d) + 1e-9) * -1
    t = np.linspace(0, 1, max(1, bumps) * 6, endpoint=False)
    bulge = np.abs(np.sin(np.pi * t * max(1, bumps))) * amp
    return [tuple(p_ + d * ti + nrm * b) for ti, b in zip(t, bulge)]


def lerp(p: Pt, q: Pt, t: float) -> Pt:
    return (p[0] + (q[0] - p[0]) * t, p[1] + (q[1] - p[1]) * t)


def _add(p: Pt, v: Pt, k: float = 1.0) -> Pt:
    return (p[0] + v[0] * k, p[1] + v[1] * k)


# ----------------------------------------------------------------------------------------- shared builders


@dataclass
class Top:
    """An upper garment: body with neckline, optional sleeves, bands; right-half key points, design units."""

    neck_w: float = 64
    neck_back: float = 16
    neck_front: float = 60
    v_neck: bool = False
    shoulder: Pt = (175, 30)
    armpit: Pt = (180, 235)
    waist: Pt = (172, 440)
    hem: Pt = (178, 680)
    hem_curve: float = 8
    sleeve_angle: float = 77
    sleeve_len: float = 540
    cuff_w: float = 86
    cuff_band: float = 0
    hem_band: float = 0
    neck_band: float = 0
    ribbed: bool = False
    trim_bands: bool = False
    quilt: float = 0
    inner_neck: bool = True
    hem_stitch: bool = True


@dataclass
class TopKeys:
    S: Pt
    A: Pt
    C1: Pt
    C2: Pt
    H: Pt
    d: Pt
    perp: Pt
    t: Top

    def width_at(self, y: float) -> float:
        t = self.t
        ys, xs = [t.armpit[1], t.waist[1], t.hem[1]], [t.armpit[0], t.waist[0], t.hem[0]]
        return float(np.interp(y, ys, xs))


def _ribs(sk: Sketch, a0: Pt, a1: Pt, b0: Pt, b1: Pt, n: int, side="both"):
    """n short lines across a band whose edges are a0-a1 and b0-b1."""
    for i in range(1, n):
        f = i / n
        sk.crease([lerp(a0, a1, f), lerp(b0, b1, f)], side)


def _band(sk: Sketch, a0: Pt, a1: Pt, b0: Pt, b1: Pt, t: Top, ribs: int, side="both"):
    """A cuff/hem band between edge a (seam) and edge b (garment edge)."""
    if t.trim_bands:
        sk.trim([a0, a1, b1, b0], side)
    sk.seam([a0, a1], side)
    if t.ribbed:
        _ribs(sk, a0, a1, b0, b1, ribs, side)


def _top(sk: Sketch, t: Top) -> TopKeys:
    nw = t.neck_w
    S, A, Wt, H = t.shoulder, t.armpit, t.waist, t.hem
    half = bez((0, t.neck_back), (nw * 0.6, t.neck_back), (nw, 0), 8)
    if t.sleeve_len <= 0:
        half += bez(S, (S[0] + (A[0] - S[0]) * 0.1, A[1] - 10), A, 10)
    else:
        half += [S]
    if t.quilt:
        bumps = max(1, round((H[1] - A[1]) / t.quilt))
        half += scallop(A, H, bumps, 7)
    else:
        half += spline([A, Wt, H], 8)
    half += bez(H, (H[0] * 0.5, H[1] + t.hem_curve), (0, H[1] + t.hem_curve), 10)
    bands = (0.0, 60.0, 0.0, 1.0, t.quilt) if t.quilt else None
    sk.fabric(sym(half), bands=bands)
    th = math.radians(t.sleeve_angle)
    d, perp = (math.cos(th), math.sin(th)), (-math.sin(th), math.cos(th))
    C1 = _add(S, d, t.sleeve_len)
    C2 = _add(C1, perp, t.cuff_w)
    if t.sleeve_len > 0:
        if t.quilt:
            n = max(1, round(t.sleeve_len / t.quilt))
            sleeve = scallop(S, C1, n, 6) + [C1] + scallop(C2, A, n, 6) + [A]
        else:
            cap = _add(lerp(S, C1, 0.12), perp, -5)
            sleeve = [S, cap, C1, C2, A]
        bands_s = (S[0], S[1], d[0], d[1], t.quilt) if t.quilt else None
        sk.fabric(sleeve, bands=bands_s)
        sk.fabric(mirror(sleeve), bands=None if not t.quilt else (-S[0], S[1], -d[0], d[1], t.quilt))
        for f in (lambda p: p, lambda p: (-p[0], p[1])):
            sk.seam([f(S), f(A)])
            if t.cuff_band:
                a0, a1 = _add(C1, d, -t.cuff_band), _add(C2, d, -t.cuff_band)
                _band(sk, f(a0), f(a1), f(C1), f(C2), t, max(4, int(t.cuff_w / 9)))
            elif t.hem_stitch:
                sk.crease([f(_add(C1, d, -18)), f(_add(C2, d, -18))])
            if t.quilt:
                for k in range(1, max(1, round(t.sleeve_len / t.quilt))):
                    fr = k / round(t.sleeve_len / t.quilt)
                    sk.seam([f(lerp(S, C1, fr)), f(lerp(A, C2, fr))])
    yb = H[1] - t.hem_band
    if t.hem_band:
        hx = float(np.interp(yb, [Wt[1], H[1]], [Wt[0], H[0]]))
        top_edge = both(list(reversed(bez((hx, yb), (hx * 0.5, yb + t.hem_curve), (0, yb + t.hem_curve), 8))))
        if t.trim_bands:
            sk.trim(sym(list(reversed(bez((hx, yb), (hx * 0.5, yb + t.hem_curve), (0, yb + t.hem_curve), 8)))
                        + [H] + bez(H, (H[0] * 0.5, H[1] + t.hem_curve), (0, H[1] + t.hem_curve), 8)))
        sk.seam(top_edge)
        if t.ribbed:
            for i in range(-12, 13):
                x = hx * i / 12.5
                cy = t.hem_curve * (1 - (x / hx) ** 2)
                sk.crease([(x, yb + cy), (x, H[1] + cy)])
    elif t.hem_stitch:
        y = H[1] - 20
        sk.crease(both(list(reversed(bez((H[0] - 2, y), (H[0] * 0.5, y + t.hem_curve), (0, y + t.hem_curve), 8)))))
    if t.quilt:
        y = 60.0
        while y < H[1] - t.quilt * 0.6:
            x = float(np.interp(y, [0, A[1], H[1]], [S[0], A[0], H[0]])) + 4
            sk.seam([(-x, y), (x, y)])
            y += t.quilt
    if t.inner_neck and t.neck_front > t.neck_back:
        back_curve = mirror(list(reversed(bez((0, t.neck_back), (nw * 0.6, t.neck_back), (nw, 0), 8)))) + \
            bez((0, t.neck_back), (nw * 0.6, t.neck_back), (nw, 0), 8)[1:]
        if t.v_neck:
            front = [(nw, 0), (nw * 0.55, t.neck_front * 0.5), (0, t.neck_front)]
        else:
            front = bez((nw, 0), (nw * 0.85, t.neck_front), (0, t.neck_front), 10)
        front_curve = front + mirror(list(reversed(front)))[1:]
        sk.inner(back_curve + front_curve)
        if t.neck_band:
            b = t.neck_band
            if t.v_neck:
                band = [(nw + b * 0.7, b * 0.3), (nw * 0.55 + b * 0.4, t.neck_front * 0.5 + b),
                        (0, t.neck_front + b * 1.3)]
            else:
                band = bez((nw + b * 0.7, b * 0.3), (nw * 0.85 + b, t.neck_front + b), (0, t.neck_front + b), 10)
            sk.seam(both(list(reversed(band))), "front")
            sk.seam(both(list(reversed(bez((nw + b * 0.5, b), (nw * 0.6, t.neck_back + b), (0, t.neck_back + b), 8)))),
                    "back")
    if not t.quilt:
        sk.fold(A[1] + 60, A[0], H[1], H[0], 2.5, 0.05)
    return TopKeys(S, A, C1, C2, H, d, perp, t)


def _collar_stand(sk: Sketch, nw: float, neck_back: float, h: float):
    """The back of a collar standing above the neckline: inside seen from the front, fabric from the back."""
    top = bez((-nw - 6, -h * 0.55), (0, neck_back - h), (nw + 6, -h * 0.55), 10)
    bottom = both(list(reversed(bez((nw + 4, 6), (nw * 0.6, neck_back + 8), (0, neck_back + 8), 8))))[::-1]
    sk.inner(top + bottom, "front")
    sk.fabric(top + bottom, "back", outline=True)


def _shirt_collar(sk: Sketch, nw: float, depth: float = 48, spread: float = 1.0):
    """Pointed collar leaves meeting at the top button, plus the stand behind the neck."""
    _collar_stand(sk, nw, 10, 34)
    leaf = [(nw + 4, -12), (nw + 26 * spread, 30), (46 * spread + 12, depth + 70), (6, depth), (nw - 20, 4)]
    sk.fabric(leaf, "front", outline=True)
    sk.fabric(mirror(leaf), "front", outline=True)
    sk.inner([(-6, depth - 3), (6, depth - 3), (0, depth + 12)], "front", deep=True)


def _lapels(sk: Sketch, nw: float, B: float, style: str = "notch", wide: float = 1.0):
    """An open front: V opening to the top button at depth B, lapels (notch, peak or shawl), collar at the back."""
    sk.inner([(-nw - 2, -6), (nw + 2, -6), (0, B)], "front")
    if style == "shawl":
        lapel = [(nw - 6, -16)] + spline([(nw + 4, -12), (nw + 50 * wide, 120), (nw + 40 * wide, 260), (12, B)], 8) + [
            (nw - 22, 14)]
    else:
        point = (nw + 78 * wide, 96) if style == "peak" else (nw + 70 * wide, 116)
        lapel = [(nw - 6, -16), (nw + 28, 58), (nw + 14, 94), point, (12, B), (nw - 22, 14)]
        sk.seam([(nw + 14, 94), (nw - 6, 70)], "front")
        sk.seam([(-nw - 14, 94), (-nw + 6, 70)], "front")
    sk.fabric(lapel, "front", outline=True)
    sk.fabric(mirror(lapel), "front", outline=True)
    _collar_stand(sk, nw, 12, 40)
    sk.seam(both(list(reversed(bez((nw + 10, 16), (nw * 0.5, 40), (0, 40), 8)))), "back")


def _hood(sk: Sketch, nw: float, quilt: float = 0):
    """A hood up behind the neck from the front (dark opening), lying on the upper back from behind."""
    bands = (0.0, -300.0, 0.0, 1.0, quilt) if quilt else None
    outer = sym(spline([(0, -290), (100, -258), (nw + 76, -150), (nw + 70, -20), (nw + 44, 46)], 6) + [(0, 74)])
    sk.fabric(outer, "front", outline=True, bands=bands)
    opening = sym(spline([(0, -246), (72, -220), (nw + 30, -120), (nw + 22, 0), (nw - 4, 40)], 6) + [(0, 66)])
    sk.inner(opening, "front", deep=True)
    sk.seam(opening, "front", closed=True)
    sk.seam([(0, -290), (0, -248)], "front")
    flat = sym(spline([(0, -36), (nw + 26, -30), (nw + 72, 40), (nw + 64, 190), (80, 300)], 6) + [(0, 326)])
    sk.fabric(flat, "back", outline=True, bands=None if not quilt else (0.0, -36.0, 0.0, 1.0, quilt))
    sk.seam([(0, -36), (0, 326)], "back")


def _pants(sk: Sketch, *, waist=150.0, hip=170.0, rise=290.0, hem_y=1000.0, hem_out=155.0, leg_w=105.0,
           band=42.0, style="trousers", cuff=0.0):
    inner_x = hem_out - leg_w
    half = [(0, 0), (waist, 0)] + spline([(waist + 3, band), (hip, rise * 0.8), (hem_out, hem_y)], 8)
    half += [(inner_x, hem_y), (12, rise + 12), (0, rise)]
    sk.fabric(sym(half))
    sk.seam([(-waist - 3, band), (waist + 3, band)])
    for x in (waist - 24, waist * 0.42):
        for s in (-1, 1):
            sk.seam([(s * x, 0), (s * x, band + 4)])
    leg_top = hip * 0.52
    for s in (-1, 1):
        sk.fold(rise, hip * 0.5, hem_y, leg_w / 2, 1.6, 0.06, x0=s * (hem_out - leg_w / 2 + leg_top) / 2)
    if style in ("trousers", "shorts"):
        sk.seam([(0, band), (0, rise - 30)], "front")
        sk.seam([(-30, band)] + bez((-30, rise - 80), (-30, rise - 40), (0, rise - 32), 6), "front")
        for s in (-1, 1):
            sk.seam([(s * (waist - 52), band), (s * (hip - 3), band + 120)], "front")
            sk.seam([(s * 40, band + 72), (s * 118, band + 72)], "back")
            if style == "trousers":
                sk.crease([(s * leg_top, rise + 20), (s * (hem_out - leg_w / 2), hem_y - 10)], "front")
        sk.seam([(0, 0), (0, rise)], "back")
        sk.button(0, band * 0.5, 8)
    elif style == "jeans":
        sk.seam([(0, band), (0, rise - 30)], "front")
        j = [(-34, band)] + bez((-34, rise - 90), (-34, rise - 40), (0, rise - 30), 6)
        sk.stitch(j, "front")
        sk.stitch([(-waist - 2, band - 8), (waist + 2, band - 8)])
        for s in (-1, 1):
            pk = bez((s * (waist - 78), band), (s * (waist - 66), band + 86), (s * (hip - 2), band + 96), 10)
            sk.seam(pk, "front")
            sk.stitch([(x + s * 7, y + 7) for x, y in pk[:-1]], "front")
            sk.hw("rivet", [(pk[-1][0] - s * 8, pk[-1][1] - 4)], 5)
            sk.hw("rivet", [(pk[0][0], pk[0][1] + 6)], 5)
            yoke = [(s * (hip - 1), band + 66), (0, band + 112)]
            sk.seam(yoke, "back")
            sk.stitch([(x, y + 8) for x, y in yoke], "back")
            pocket = [(s * 34, band + 128), (s * 132, band + 118), (s * 128, band + 250), (s * 82, band + 280),
                      (s * 40, band + 254)]
            sk.seam(pocket, "back", closed=True)
            sk.stitch([(x * 0.95 + s * 4, y) for x, y in pocket[1:]], "back")
            sk.stitch([(s * (hem_out - 2), hem_y - 26), (s * (inner_x + 2), hem_y - 26)])
        sk.seam([(waist - 90, band + 30), (waist - 54, band + 30), (waist - 52, band + 74)], "front")
        sk.seam([(0, 0), (0, rise)], "back")
        sk.trim([(60, 8), (112, 8), (112, band - 6), (60, band - 6)], "back", outline=True)
        sk.hw("button", [(0, band * 0.5)], 9, "front")
    elif style == "joggers":
        for i in range(-10, 11):
            sk.crease([(i * waist / 10.5, 4), (i * waist / 10.5, band - 4)])
        for s in (-1, 1):
            sk.seam([(s * 12, band * 0.6), (s * 20, band + 96)], "front")
            sk.hw("aglet", [(s * 20, band + 96), (s * 21, band + 112)], 5)
            sk.seam([(s * (hip - 40), band + 20), (s * (hip - 2), band + 130)], "front")
        sk.seam([(0, 0), (0, rise)], "back")
    if cuff:
        for s in (-1, 1):
            a0, a1 = (s * (hem_out + 2), hem_y - cuff), (s * (inner_x - 2), hem_y - cuff)
            sk.seam([a0, a1])
            if style == "joggers":
                _ribs(sk, a0, a1, (s * hem_out, hem_y), (s * inner_x, hem_y), 8)


def _skirt(sk: Sketch, *, waist=135.0, hip=(162.0, 190.0), hem_y=600.0, hem_w=230.0, band=36.0,
           hem_curve=22.0, waves=0.0, pleats=0, folds=2.5):
    half = [(0, 0), (waist, 0)] + spline([(waist + 2, band), hip, (hem_w, hem_y)], 8)
    if waves:
        xs = np.linspace(hem_w, 0, 40)
        ys = hem_y + hem_curve * (1 - (xs / hem_w) ** 2) + waves * (0.5 + 0.5 * np.cos(np.linspace(0, 5 * np.pi, 40)))
        half += list(zip(xs, ys))
    else:
        half += bez((hem_w, hem_y), (hem_w * 0.5, hem_y + hem_curve), (0, hem_y + hem_curve), 10)
    sk.fabric(sym(half))
    if band:
        sk.seam([(-waist - 2, band), (waist + 2, band)])
    for i in range(1, pleats):
        f = i / pleats * 2 - 1
        top_x, bot_x = f * (waist + 2), f * hem_w
        sk.crease([(top_x, band + 4), (bot_x, hem_y + hem_curve * (1 - f * f) - 2)])
    sk.fold(hip[1] * 0.7, hip[0], hem_y, hem_w, folds if not pleats else pleats / 2, 0.08 if not pleats else 0.07)


def _belt(sk: Sketch, y: float, half_w: float, h: float = 40, buckle=True, side="both", ties=False):
    rect = [(-half_w - 6, y), (half_w + 6, y - 2), (half_w + 6, y + h - 2), (-half_w - 6, y + h)]
    sk.fabric(rect, side, outline=True)
    if buckle:
        sk.hw("buckle", [(-half_w * 0.25, y + h / 2)], h * 0.8, "front")
    if ties:
        sk.fabric(thick([(-30, y + h / 2), (-44, y + h + 120), (-40, y + h + 230)], 30), "front", outline=True)
        sk.fabric(thick([(-24, y + h / 2), (-4, y + h + 100), (6, y + h + 200)], 30), "front", outline=True)


# -------------------------------------------------------------------------------------------- categories


def _c_tshirt(sk: Sketch, g: Geometry):
    v = g.variant % 4
    over = float(v == 3)
    W, L, S = g.width, g.length, g.sleeve
    t = Top(neck_w=60, neck_back=14, neck_front=150 if v == 1 else (44 if v == 2 else 58), v_neck=v == 1,
            shoulder=(172 * W + 28 * over, 28 + 30 * over), armpit=(180 * W + 22 * over, 230 + 40 * over),
            waist=(170 * W + 20 * over, 440 * L), hem=(178 * W + 20 * over, 690 * L), hem_curve=8,
            sleeve_angle=34 + 14 * over, sleeve_len=(150 + 40 * over) * S, cuff_w=112 + 10 * over,
            neck_band=0 if v == 2 else 12)
    _top(sk, t)
    if v == 2:  # polo
        _shirt_collar(sk, 60, depth=46, spread=0.8)
        sk.seam([(-16, 50), (16, 50), (16, 215), (-16, 215)], "front", closed=True)
        for y in (95, 160):
            sk.button(0, y, 8)


def _c_shirt(sk: Sketch, g: Geometry):
    v = g.variant % 3
    short = v == 1
    W, L, S = g.width, g.length, g.sleeve
    t = Top(neck_w=52, neck_back=10, neck_front=46, shoulder=(170 * W, 30), armpit=(176 * W, 240),
            waist=(162 * W, 470 * L), hem=(172 * W, 770 * L), hem_curve=44, sleeve_angle=42 if short else 79,
            sleeve_len=(190 if short else 560) * S, cuff_w=104 if short else 78, cuff_band=24 if short else 62,
            inner_neck=False)
    k = _top(sk, t)
    _shirt_collar(sk, 52)
    sk.seam([(-15, 58), (-15, k.H[1] + 40)], "front")
    sk.seam([(15, 58), (15, k.H[1] + 40)], "front")
    y = 64.0
    while y < k.H[1] - 20:
        sk.button(0, y, 8)
        y += 96 * L
    if not short:
        for s in (-1, 1):
            b = lerp(_add(k.C1, k.d, -31), _add(k.C2, k.d, -31), 0.72)
            sk.button(s * b[0], b[1], 7, "both")
            p0 = lerp(_add(k.C1, k.d, -62), _add(k.C2, k.d, -62), 0.72)
            p1 = _add(p0, k.d, -110)
            sk.seam([(s * p0[0], p0[1]), (s * p1[0], p1[1])])
    yoke = both(list(reversed(bez((k.S[0] - 2, 118), (k.S[0] * 0.5, 134), (0, 134), 8))))
    sk.seam(yoke, "back")
    sk.crease([(-26, 134), (-26, 230)], "back")
    sk.crease([(26, 134), (26, 230)], "back")
    pockets = (1,) if v == 0 else ((-1, 1) if v == 2 else ())
    for s in pockets:
        p = [(s * 44, 222), (s * 126, 222), (s * 126, 330), (s * 85, 350), (s * 44, 330)]
        sk.seam(p, "front", closed=True)
        if v == 2:
            sk.seam([(s * 42, 222), (s * 128, 222), (s * 128, 262), (s * 85, 276), (s * 42, 262)], "front", closed=True)
            sk.button(s * 85, 262, 6)


def _c_sweater(sk: Sketch, g: Geometry):
    v = g.variant % 4  # crew, V, turtleneck, cardigan
    W, L, S = g.width, g.length, g.sleeve
    t = Top(neck_w=62, neck_back=16, neck_front={0: 62, 1: 190, 2: 40, 3: 40}[v], v_neck=v == 1,
            shoulder=(188 * W, 44), armpit=(194 * W, 280), waist=(186 * W, 470 * L), hem=(180 * W, 700 * L),
            hem_curve=6, sleeve_angle=77, sleeve_len=555 * S, cuff_w=86, cuff_band=64, hem_band=66,
            neck_band=22, ribbed=True, inner_neck=v != 3)
    k = _top(sk, t)
    if v == 2:
        sk.fabric([(-70, -120), (70, -120), (76, 24), (40, 36), (-40, 36), (-76, 24)], outline=True)
        sk.inner(arc(0, -120, 70, 14, 0, 360, 24), deep=True)
        sk.seam([(-72, -66), (72, -66)])
        _ribs(sk, (-70, -120), (70, -120), (-74, 24), (74, 24), 14)
    if v == 3:  # cardigan: open V, button band
        sk.inner([(-64, -4), (64, -4), (0, 330)], "front")
        edge = [(60, 0), (14, 300), (14, k.H[1] + 6)]
        sk.seam(edge, "front")
        sk.seam(mirror(edge), "front")
        y = 330.0
        while y < k.H[1] - 50:
            sk.button(-2, y, 9)
            y += 80 * L


def _c_hoodie(sk: Sketch, g: Geometry):
    v = g.variant % 2
    W, L, S = g.width, g.length, g.sleeve
    t = Top(neck_w=68, neck_back=16, neck_front=70, shoulder=(186 * W, 40), armpit=(192 * W, 268),
            waist=(184 * W, 480 * L), hem=(180 * W, 700 * L), sleeve_angle=77, sleeve_len=560 * S, cuff_w=88,
            cuff_band=58, hem_band=62, ribbed=True, inner_neck=False)
    k = _top(sk, t)
    _hood(sk, 68)
    if v == 0:
        yb = k.H[1] - 62
        pocket = [(-150, yb)] + bez((-150, yb - 60), (-128, yb - 120), (-98, yb - 176), 6) + \
            bez((98, yb - 176), (128, yb - 120), (150, yb - 60), 6) + [(150, yb)]
        sk.seam(pocket, "front")
        sk.inner(bez((-150, yb - 60), (-128, yb - 120), (-98, yb - 176), 6) + [(-112, yb - 70)], "front")
        sk.inner(bez((98, yb - 176), (128, yb - 120), (150, yb - 60), 6) + [(112, yb - 70)], "front")
        for s in (-1, 1):
            sk.seam([(s * 34, 62), (s * 40, 250)], "front")
            sk.hw("aglet", [(s * 40, 250), (s * 41, 274)], 5)
    else:
        sk.zip(0, 66, k.H[1] + 6)
        for s in (-1, 1):
            sk.seam([(s * 112, 440 * L), (s * 150, 580 * L)], "front")


def _coatlike(sk: Sketch, g: Geometry, *, hem_y, hem_w, style, double, belt, B, epaulettes=False, flaps=True):
    W, L, S = g.width, g.length, g.sleeve
    t = Top(neck_w=58, neck_back=14, neck_front=30, shoulder=(184 * W, 34), armpit=(190 * W, 262),
            waist=(176 * W, 470), hem=(hem_w * W, hem_y * L), hem_curve=8, sleeve_angle=78, sleeve_len=580 * S,
            cuff_w=90, cuff_band=0, inner_neck=False, hem_stitch=False)
    k = _top(sk, t)
    for s in (-1, 1):
        a0, a1 = _add(k.C1, k.d, -80), _add(k.C2, k.d, -80)
        sk.seam([(s * a0[0], a0[1]), (s * a1[0], a1[1])])
    _lapels(sk, 58, B, style, wide=1.2 if double else 1.0)
    edge_x = 56 if double else 12
    sk.seam([(12, B), (edge_x, B + 30), (edge_x, k.H[1] + 4)], "front")
    cols = (-46, 46) if double else (0,)
    y = B + 16
    for _ in range(3 if double else 4):
        if y > k.H[1] - 60:
            break
        for x in cols:
            sk.button(x, y, 11)
        y += (110 if double else 120) * L
    if flaps:
        yp = 560 * L
        for s in (-1, 1):
            sk.seam([(s * 80, yp), (s * 176, yp - 4), (s * 178, yp + 44), (s * 82, yp + 46)], "front", closed=True)
    if belt:
        _belt(sk, 450, k.width_at(450), 44, buckle=True)
    if epaulettes:
        for s in (-1, 1):
            sk.seam([(s * 70, 6), (s * (k.S[0] - 4), k.S[1] - 2), (s * (k.S[0] - 6), k.S[1] + 26),
                     (s * 72, 32)], closed=True)
            sk.button(s * 86, 18, 7, "both")
            if s > 0:  # storm flap
                sk.seam([(70, 20), (150, 96), (180, 120)], "front")
            cuff = lerp(_add(k.C1, k.d, -120), _add(k.C2, k.d, -120), 0.5)
            sk.seam([(s * _add(k.C1, k.d, -110)[0], _add(k.C1, k.d, -110)[1]),
                     (s * _add(k.C2, k.d, -110)[0], _add(k.C2, k.d, -110)[1])])
            sk.button(s * cuff[0], cuff[1] + 10, 7, "both")
        sk.seam(both(list(reversed(bez((k.S[0], 150), (k.S[0] * 0.4, 230), (0, 236), 8)))), "back")
    sk.seam([(0, 60), (0, k.H[1] - 260)], "back")
    sk.seam([(0, k.H[1] - 260), (0, k.H[1] + 8)], "back")
    sk.seam([(0, k.H[1] - 260), (-26, k.H[1] - 250), (-26, k.H[1] + 8)], "back")
    sk.fold(560, 180, k.H[1], hem_w, 3, 0.08)


def _c_coat(sk: Sketch, g: Geometry):
    v = g.variant % 3
    style = ("notch", "peak", "shawl")[v]
    _coatlike(sk, g, hem_y=1060, hem_w=206 * g.flare, style=style, double=v == 1, belt=v == 2, B=400)


def _c_trench(sk: Sketch, g: Geometry):
    _coatlike(sk, g, hem_y=1120 + 80 * (g.variant % 2), hem_w=236 * g.flare, style="notch", double=True,
              belt=True, B=330, epaulettes=True, flaps=False)


def _c_suit(sk: Sketch, g: Geometry):
    v = g.variant % 2
    W, L, S = g.width, g.length, g.sleeve
    sk.dy = 520
    _pants(sk, waist=146 * W, hip=160 * W, rise=300, hem_y=820 * L, hem_out=140 * W, leg_w=100, style="trousers")
    sk.dy = 0
    sk.over()
    t = Top(neck_w=56, neck_back=12, neck_front=30, shoulder=(186 * W, 30), armpit=(186 * W, 248),
            waist=(164 * W, 450), hem=(178 * W, 720 * L), hem_curve=0, sleeve_angle=79, sleeve_len=560 * S,
            cuff_w=84, inner_neck=False, hem_stitch=False)
    k = _top(sk, t)
    B = 380 if v == 0 else 360
    _lapels(sk, 56, B, "notch" if v == 0 else "peak", wide=1.25 if v else 1.0)
    if v == 0:
        cut = [(12, B), (12, 560 * L), (40, k.H[1] - 20), (64, k.H[1] + 2)]
        sk.seam(cut, "front")
        sk.seam(mirror(cut[1:]), "front")
        sk.button(0, B + 20, 11)
        sk.button(0, B + 120 * L, 11)
    else:
        sk.seam([(12, B), (56, B + 30), (56, k.H[1])], "front")
        for y in (B + 20, B + 110 * L, B + 200 * L):
            for x in (-46, 46):
                sk.button(x, y, 10)
    for s in (-1, 1):
        sk.seam([(s * 84, 560 * L), (s * 170, 556 * L), (s * 170, 596 * L), (s * 86, 600 * L)], "front", closed=True)
        for i in range(3):
            c = lerp(_add(k.C1, k.d, -40 - 22 * i), _add(k.C2, k.d, -40 - 22 * i), 0.3)
            sk.button(s * c[0], c[1], 6, "both")
    sk.seam([(-150, 250), (-90, 246)], "front")
    sk.seam([(0, 40), (0, k.H[1] - 160)], "back")
    sk.seam([(0, k.H[1] - 160), (0, k.H[1])], "back")


def _c_jacket(sk: Sketch, g: Geometry):
    v = g.variant % 2
    W, L, S = g.width, g.length, g.sleeve
    if v == 0:  # bomber
        t = Top(neck_w=62, neck_back=14, neck_front=40, shoulder=(194 * W, 42), armpit=(200 * W, 270),
                waist=(198 * W, 440 * L), hem=(180 * W, 590 * L), hem_curve=4, sleeve_angle=76, sleeve_len=520 * S,
                cuff_w=78, cuff_band=54, hem_band=58, ribbed=True, trim_bands=True, inner_neck=False)
        k = _top(sk, t)
        collar = bez((-70, -40), (0, -30), (70, -40), 8) + [(72, 6), (30, 46)] + [(-30, 46), (-72, 6)]
        sk.trim(collar, outline=True)
        _ribs(sk, (-70, -40), (70, -40), (-72, 6), (72, 6), 12)
        sk.inner([(-30, 46), (30, 46), (0, 60)], "front")
        sk.zip(0, 44, k.H[1] + 4)
        for s in (-1, 1):
            sk.seam([(s * 116, 380 * L), (s * 150, 480 * L)], "front")
        sk.seam([(130, 120), (180, 110), (186, 190), (136, 196)], "front", closed=True)
        sk.zip(155, 125, 180, "front")
    else:  # trucker
        t = Top(neck_w=54, neck_back=12, neck_front=40, shoulder=(182 * W, 34), armpit=(186 * W, 250),
                waist=(182 * W, 440 * L), hem=(176 * W, 580 * L), hem_curve=0, sleeve_angle=78, sleeve_len=540 * S,
                cuff_w=82, cuff_band=56, hem_band=54, inner_neck=False)
        k = _top(sk, t)
        _shirt_collar(sk, 54, depth=50, spread=1.3)
        sk.seam([(14, 56), (14, k.H[1])], "front")
        sk.stitch([(22, 60), (22, k.H[1] - 56)], "front")
        y = 70.0
        while y < k.H[1] - 30:
            sk.button(0, y, 9)
            y += 100 * L
        for s in (-1, 1):
            yoke = [(s * (k.S[0] - 4), 130), (s * 80, 150), (s * 20, 146)]
            sk.seam(yoke, "front")
            sk.stitch([(x, y + 8) for x, y in yoke], "front")
            flap = [(s * 58, 170), (s * 148, 170), (s * 148, 210), (s * 103, 226), (s * 58, 210)]
            sk.seam(flap, "front", closed=True)
            sk.button(s * 103, 208, 7)
            sk.seam([(s * 60, 210), (s * 60, 300), (s * 146, 300), (s * 146, 210)], "front")
            sk.seam([(s * 104, 300), (s * 104, k.H[1] - 54)], "front")
            sk.stitch([(s * 112, 302), (s * 112, k.H[1] - 58)], "front")
            sk.button(s * 150, k.H[1] - 28, 8)
        sk.seam(both(list(reversed(bez((k.S[0], 150), (k.S[0] * 0.4, 200), (0, 210), 8)))), "back")
        sk.stitch(both(list(reversed(bez((k.S[0] - 2, 160), (k.S[0] * 0.4, 210), (0, 220), 8)))), "back")


def _c_down(sk: Sketch, g: Geometry):
    v = g.variant % 2
    W, L, S = g.width, g.length, g.sleeve
    long = g.length > 1.06
    t = Top(neck_w=66, neck_back=14, neck_front=40, shoulder=(204 * W, 50), armpit=(212 * W, 282),
            waist=(210 * W, 500), hem=(214 * W, (900 if long else 700) * L), hem_curve=6, sleeve_angle=76,
            sleeve_len=560 * S, cuff_w=112, cuff_band=40, ribbed=True, trim_bands=True, quilt=84, inner_neck=False,
            hem_stitch=False)
    k = _top(sk, t)
    if v == 0:
        _hood(sk, 70, quilt=70)
    else:
        collar = [(-80, -96), (80, -96), (84, 22), (32, 50), (-32, 50), (-84, 22)]
        sk.fabric(collar, outline=True, bands=(0.0, -96.0, 0.0, 1.0, 70.0))
        sk.inner(arc(0, -96, 80, 16, 0, 360, 24), deep=True)
        sk.seam([(-82, -30), (82, -30)])
    sk.zip(0, 50 if v else 70, k.H[1] + 4)
    sk.seam([(18, 50), (18, k.H[1])], "front")
    for s in (-1, 1):
        sk.seam([(s * 120, 420), (s * 150, 540)], "front")


def _c_vest(sk: Sketch, g: Geometry):
    v = g.variant % 3  # camisole, tank, waistcoat
    W, L, F = g.width, g.length, g.flare
    if v == 0:
        hem_w, hem_y = 186 * W * F, 620 * L
        body = [(0, 220), (80, 146), (150, 160), (158, 200)] + spline([(158, 200), (150, 380), (hem_w, hem_y)], 8)
        body += bez((hem_w, hem_y), (hem_w * 0.5, hem_y + 14), (0, hem_y + 14), 8)
        sk.fabric(sym(body))
        lace = [(0, 220), (80, 146), (150, 160)]
        sk.trim(thick(lace, 16), outline=False)
        sk.trim(thick(mirror(lace), 16), outline=False)
        for s in (-1, 1):
            sk.fabric(thick([(s * 76, 0), (s * 82, 150)], 9))
            for i in range(6):
                sk.crease(arc(s * (20 + i * 22), 228 - i * 12 + (0 if s > 0 else 0), 10, 8, 0, 180, 6))
        sk.hw("button", [(0, 228)], 8, "front")
        sk.inner(sym([(0, 150), (70, 120), (80, 146), (0, 220)]), "back", deep=False)
        sk.fold(300, 150, hem_y, hem_w, 3, 0.07)
    elif v == 1:
        t = Top(neck_w=80, neck_back=40, neck_front=150, shoulder=(122 * W, 4), armpit=(176 * W, 236),
                waist=(164 * W, 440 * L), hem=(176 * W, 680 * L), sleeve_len=0, neck_band=12)
        k = _top(sk, t)
        for s in (-1, 1):
            sk.seam(bez((s * (k.S[0] - 10), 8), (s * (k.S[0] - 10 + (k.A[0] - k.S[0]) * 0.1), k.A[1] - 20),
                        (s * (k.A[0] - 12), k.A[1] - 4), 10))
    else:
        t = Top(neck_w=56, neck_back=12, neck_front=40, shoulder=(150 * W, 16), armpit=(178 * W, 250),
                waist=(166 * W, 440), hem=(172 * W, 560 * L), sleeve_len=0, hem_curve=30, inner_neck=False,
                hem_stitch=False)
        k = _top(sk, t)
        sk.inner([(-58, -4), (58, -4), (0, 330)], "front")
        sk.fabric([(0, k.H[1] + 30), (50, k.H[1] + 70), (150, k.H[1] + 28), (160, k.H[1] - 40)], "front")
        sk.fabric(mirror([(0, k.H[1] + 30), (50, k.H[1] + 70), (150, k.H[1] + 28), (160, k.H[1] - 40)]), "front")
        sk.seam([(56, 0), (10, 330), (10, k.H[1] + 36), (50, k.H[1] + 70)], "front")
        y = 350.0
        while y < k.H[1]:
            sk.button(0, y, 9)
            y += 60 * L
        for s in (-1, 1):
            sk.seam([(s * 40, 440 * L), (s * 126, 432 * L)], "front")
        sk.seam([(-100, 400), (100, 400)], "back")
        sk.hw("buckle", [(0, 400)], 24, "back")


def _c_dress(sk: Sketch, g: Geometry):
    v = g.variant % 4  # slip A-line, short-sleeve fit & flare, long-sleeve maxi, sleeveless shift
    W, L, S, F = g.width, g.length, g.sleeve, g.flare
    waist_y = 330.0
    if v == 0:
        bodice = [(0, 160), (50, 110), (110, 116), (150, 140), (140, waist_y), (0, waist_y)]
        sk.fabric(sym(bodice))
        sk.inner(sym([(0, 110), (110, 90), (112, 116), (50, 110), (0, 160)]), "back")
        for s in (-1, 1):
            sk.fabric(thick([(s * 84, 0), (s * 92, 116)], 10))
        sk.seam(both([(0, 160), (50, 110), (110, 116)]))
    elif v == 3:
        t = Top(neck_w=60, neck_back=14, neck_front=70, shoulder=(130 * W, 12), armpit=(164 * W, 210),
                waist=(150 * W, waist_y), hem=(154 * W, waist_y + 40), sleeve_len=0, neck_band=10, hem_stitch=False)
        _top(sk, t)
    else:
        long = v == 2
        t = Top(neck_w=58, neck_back=14, neck_front=100 if long else 70, v_neck=long,
                shoulder=(150 * W, 24), armpit=(160 * W, 210), waist=(138 * W, waist_y - 20), hem=(140 * W, waist_y),
                hem_curve=0, sleeve_angle=78 if long else 42, sleeve_len=(520 if long else 140) * S,
                cuff_w=70 if long else 90, cuff_band=36 if long else 0, hem_stitch=False)
        _top(sk, t)
    sk.seam([(-140, waist_y), (140, waist_y)])
    length = (1.0 if v == 2 else 0.55) * L
    hem_y = waist_y + 700 * length
    sk.dy = waist_y - 4
    _skirt(sk, waist=140 * W, hip=(170 * W, 140), hem_y=hem_y - waist_y, band=0, hem_curve=30,
           hem_w=(200 if v == 3 else 300) * W * F * (1.0 + 0.25 * (v == 2)), waves=14 if v in (1, 2) else 0,
           folds=3.5)
    sk.dy = 0
    if v in (0, 1):
        sk.zip(0, 60, waist_y + 160, "back")
    if v == 2:
        _belt(sk, waist_y - 22, 140 * W, 34, buckle=False, side="both", ties=True)


def _c_half_skirt(sk: Sketch, g: Geometry):
    v = g.variant % 4  # A-line, pencil, pleated, circle midi
    W, L, F = g.width, g.length, g.flare
    if v == 0:
        _skirt(sk, waist=136 * W, hip=(166 * W, 180), hem_y=620 * L, hem_w=250 * W * F)
        if g.detail > 0.5:
            for i in range(5):
                sk.button(0, 70 + i * 110 * L, 9)
            sk.seam([(12, 36), (14, 640 * L)], "front")
    elif v == 1:
        _skirt(sk, waist=132 * W, hip=(170 * W, 200), hem_y=660 * L, hem_w=150 * W, folds=1.5)
        sk.seam([(0, 36), (0, 660 * L - 150)], "back")
        sk.inner([(-10, 660 * L + 20), (0, 660 * L - 150), (10, 660 * L + 20)], "back", deep=True)
        sk.zip(0, 40, 240, "back")
        for s in (-1, 1):
            sk.crease([(s * 70, 36), (s * 80, 200)], "both")
    elif v == 2:
        _skirt(sk, waist=136 * W, hip=(172 * W, 160), hem_y=640 * L, hem_w=270 * W * F, pleats=16)
    else:
        _skirt(sk, waist=130 * W, hip=(180 * W, 130), hem_y=820 * L, hem_w=380 * W * F, waves=20, folds=4.5)


def _c_pants(sk: Sketch, g: Geometry):
    v = g.variant % 3  # trousers, wide leg, joggers
    W, L, F = g.width, g.length, g.flare
    if v == 0:
        _pants(sk, waist=150 * W, hip=168 * W, hem_y=1000 * L, hem_out=150 * W * F, leg_w=104 * F)
    elif v == 1:
        _pants(sk, waist=146 * W, hip=172 * W, rise=320, hem_y=1020 * L, hem_out=200 * W * F, leg_w=176 * F)
    else:
        _pants(sk, waist=150 * W, hip=176 * W, rise=310, hem_y=990 * L, hem_out=132 * W, leg_w=84, band=54,
               style="joggers", cuff=70)


def _c_jeans(sk: Sketch, g: Geometry):
    v = g.variant % 3  # straight, skinny, flare
    W, L, F = g.width, g.length, g.flare
    hem_out, leg_w = {0: (146, 100), 1: (116, 68), 2: (176, 136)}[v]
    _pants(sk, waist=148 * W, hip=166 * W, hem_y=1010 * L, hem_out=hem_out * W * (F if v == 2 else 1),
           leg_w=leg_w * (F if v == 2 else 1), style="jeans")


def _c_shorts(sk: Sketch, g: Geometry):
    v = g.variant % 3  # chino with turn-ups, athletic, denim
    W, L, F = g.width, g.length, g.flare
    if v == 0:
        _pants(sk, waist=148 * W, hip=168 * W, hem_y=470 * L, hem_out=174 * W * F, leg_w=116 * F, cuff=44,
               style="shorts")
    elif v == 1:
        hem_out = 184 * W * F
        _pants(sk, waist=150 * W, hip=174 * W, rise=300, hem_y=480 * L, hem_out=hem_out, leg_w=132 * F, band=50,
               style="joggers")
        for s in (-1, 1):
            sk.inner([(s * hem_out, 480 * L + 1), (s * (hem_out - 10), 420 * L), (s * (hem_out - 22), 480 * L + 1)])
    else:
        _pants(sk, waist=148 * W, hip=166 * W, hem_y=450 * L, hem_out=170 * W * F, leg_w=116 * F, style="jeans")


def _c_lingerie(sk: Sketch, g: Geometry):
    v = g.variant % 3  # bikini, one-piece, bra and brief
    W, L = g.width, g.length
    if v == 1:
        front = bez((0, 240), (60, 220), (72, 0), 8) + [(104, 0)] + bez((104, 0), (110, 150), (156, 210), 8)
        front += spline([(156, 210), (124 * W, 450), (168 * W, 600)], 8)
        front += bez((168 * W, 600), (120, 700), (44, 780 * L), 8)
        front += [(0, 782 * L)]
        sk.fabric(sym(front), "front")
        back = [(0, 430)] + bez((0, 430), (90, 380), (84, 0), 8) + front[front.index((104, 0)):]
        sk.fabric(sym(back), "back")
        sk.seam(both(list(reversed(bez((0, 250), (58, 228), (70, 10), 8)))), "front")
        sk.fold(300, 120, 700, 120, 2, 0.05)
        return
    # top
    if v == 0:
        for s in (-1, 1):
            cup = [(s * 18, 236), (s * 82, 104), (s * 150, 232)] + bez((s * 150, 232), (s * 84, 262), (s * 18, 236), 8)
            sk.fabric(cup, outline=True)
            sk.fabric(thick([(s * 82, 108), (s * 46, 0)], 8))
            sk.fabric(thick([(s * 148, 232), (s * 214, 244)], 9))
        sk.fabric(thick([(-20, 236), (20, 236)], 9))
    else:
        for s in (-1, 1):
            cup = bez((s * 10, 244), (s * 30, 120), (s * 96, 116), 8)
            cup += bez((s * 96, 116), (s * 166, 130), (s * 170, 240), 8)
            sk.fabric(cup + bez((s * 170, 240), (s * 90, 262), (s * 10, 244), 8), outline=True)
            sk.fabric(thick([(s * 110, 120), (s * 96, 0)], 10))
            sk.trim(thick(bez((s * 12, 236), (s * 32, 124), (s * 96, 120), 8), 10))
        sk.fabric([(-196, 236), (196, 236), (192, 282), (-192, 282)], outline=True)
        sk.hw("button", [(0, 250)], 8, "front")
    # bottom
    top = 500.0
    brief = [(0, top + 14)] + bez((0, top + 14), (100, top + 10), (186 * W, top - 4), 6) + [(176 * W, top + 60)]
    brief += bez((176 * W, top + 60), (96, top + 150), (44, top + 240 * L), 8) + [(0, top + 244 * L)]
    sk.fabric(sym(brief))
    if v == 2:
        sk.trim(thick(both(list(reversed(brief[:7]))), 16))
    else:
        for s in (-1, 1):
            sk.fabric(thick([(s * 184 * W, top + 10), (s * 214 * W, top + 60), (s * 206 * W, top + 110)], 9))
    sk.fold(top + 40, 150, top + 200, 60, 1.5, 0.05)


def _c_hat(sk: Sketch, g: Geometry):
    v = g.variant % 4  # bucket, fedora, beanie, cap
    W, L, F = g.width, g.length, g.flare
    if v == 0:
        crown = sym([(0, 0)] + bez((0, 0), (150 * W, -4), (158 * W, 40), 6) + [(178 * W, 210 * L)] + [(0, 210 * L)])
        sk.fabric(crown, outline=True)
        brim = [(-178 * W, 200 * L), (178 * W, 200 * L), (300 * W * F, 330 * L)] + bez(
            (300 * W * F, 330 * L), (0, 390 * L), (-300 * W * F, 330 * L), 14)
        sk.fabric(brim, outline=True)
        for k in (1, 2, 3):
            f = k / 4
            sk.stitch(bez((-(178 + 122 * F * f) * W, (200 + 130 * f) * L), (0, (200 + 190 * f) * L),
                          ((178 + 122 * F * f) * W, (200 + 130 * f) * L), 12))
        sk.seam([(-156 * W, 40), (156 * W, 40)])
        sk.hw("eyelet", [(-110 * W, 120 * L)], 7, "both")
        sk.hw("eyelet", [(110 * W, 120 * L)], 7, "both")
    elif v == 1:
        sk.fabric(arc(0, 260 * L, 340 * W * F, 60, 0, 360, 40), outline=False)
        crown = sym(bez((0, 40), (60, 0), (130 * W, 18), 6) + bez((130 * W, 18), (170 * W, 40), (178 * W, 266 * L), 6)
                    + [(0, 270 * L)])
        sk.fabric(crown, outline=True)
        sk.trim([(-180 * W, 190 * L), (180 * W, 190 * L), (179 * W, 266 * L), (-179 * W, 268 * L)], outline=True)
        sk.crease([(0, 44), (0, 150)])
        sk.crease([(-60, 16), (-90, 110)])
        sk.crease([(60, 16), (90, 110)])
        sk.seam(arc(0, 262 * L, 330 * W * F, 52, 10, 170, 30))
        sk.seam([(120 * W, 196 * L), (140 * W, 262 * L)], "front")
    elif v == 2:
        if g.detail > 0.4:
            sk.trim(arc(0, -50, 80, 80, 0, 360, 32), outline=False)
            for a in range(0, 360, 30):
                sk.crease([(0, -50), (math.cos(math.radians(a)) * 70, -50 + math.sin(math.radians(a)) * 70)])
        dome = sym([(0, 0)] + bez((0, 0), (184 * W, 0), (188 * W, 220 * L), 10) + [(190 * W, 350 * L), (0, 350 * L)])
        sk.fabric(dome)
        sk.seam([(-189 * W, 230 * L), (189 * W, 230 * L)])
        _ribs(sk, (-189 * W, 230 * L), (189 * W, 230 * L), (-190 * W, 350 * L), (190 * W, 350 * L), 24)
        for i in range(-8, 9):
            sk.crease([(i * 20 * W, 30 + abs(i) ** 2 * 1.3), (i * 21 * W, 226 * L)])
    else:
        dome = sym([(0, 0)] + bez((0, 0), (196 * W, 0), (206 * W, 250 * L), 10) + [(0, 250 * L)])
        sk.fabric(dome, outline=True)
        sk.seam([(0, 0), (0, 250 * L)])
        sk.seam(bez((0, 0), (110 * W, 20), (128 * W, 250 * L), 8))
        sk.seam(bez((0, 0), (-110 * W, 20), (-128 * W, 250 * L), 8))
        sk.hw("button", [(0, 6)], 12, "both")
        for s in (-1, 1):
            sk.hw("eyelet", [(s * 92 * W, 80 * L)], 5, "both")
        bill = bez((-214 * W, 236 * L), (0, 216 * L), (214 * W, 236 * L), 12) + [(206 * W, 262 * L)] + bez(
            (206 * W, 262 * L), (0, 350 * L * F), (-206 * W, 262 * L), 14)
        sk.fabric(bill, "front", outline=True)
        for k in (1, 2, 3):
            sk.stitch(bez((-200 * W, (250 + k * 4) * L), (0, (244 + 26 * k) * L * F), (200 * W, (250 + k * 4) * L), 12),
                      "front")
        sk.inner(bez((-70, 251 * L), (0, 120 * L), (70, 251 * L), 12), "back", deep=True)
        sk.trim(thick([(-80, 226 * L), (80, 226 * L)], 18), "back")
        sk.hw("buckle", [(30, 226 * L)], 20, "back")


def _c_hanfu(sk: Sketch, g: Geometry):
    v = g.variant % 2  # ruqun (top + high-waisted skirt), long robe
    W, L, S, F = g.width, g.length, g.sleeve, g.flare
    hem_y = (1240 if v == 0 else 1180) * L
    if v == 0:
        sk.dy = 320
        _skirt(sk, waist=176 * W, hip=(200 * W, 200), hem_y=hem_y - 320, hem_w=320 * W * F, band=0, pleats=12,
               hem_curve=20)
        sk.dy = 0
        sk.over()
    t = Top(neck_w=56, neck_back=14, neck_front=20, shoulder=(156 * W, 26), armpit=(164 * W, 230),
            waist=(176 * W, 460), hem=((176 if v == 0 else 220 * F) * W, 430 if v == 0 else hem_y), hem_curve=12,
            sleeve_len=0, inner_neck=False, hem_stitch=False)
    k = _top(sk, t)
    for s in (-1, 1):
        Sx, Ax = k.S[0], k.A[0]
        sleeve = [(Sx - 10, 26), (Sx + 230 * S, 120), (Sx + 262 * S, 300)]
        sleeve += bez((Sx + 262 * S, 300), (Sx + 280 * S, 590 * S), (Sx + 120 * S, 600 * S), 10)
        sleeve += bez((Sx + 120 * S, 600 * S), (Ax + 10, 560 * S), (Ax - 4, 300), 8) + [(Ax - 4, 240)]
        sleeve = [(s * x, y) for x, y in sleeve]
        sk.fabric(sleeve, outline=True)
        cuff = [(s * (Sx + 230 * S), 120), (s * (Sx + 262 * S), 300), (s * (Sx + 264 * S), 420),
                (s * (Sx + 226 * S), 300), (s * (Sx + 198 * S), 120)]
        sk.trim(cuff, outline=True)
        sk.seam([(s * (Sx - 10), 26), (s * (Ax - 4), 240)])
    sk.inner([(-40, -2), (40, -2), (10, 150)], "front")
    sk.trim(thick([(56, -4), (30, 60), (8, 160)], 40), "front", outline=True)
    sk.trim(thick([(-56, -4), (20, 150), (110, 300), (150, 390)], 42), "front", outline=True)
    sk.trim(thick(bez((-66, 0), (0, 30), (66, 0), 8), 36), "back", outline=True)
    sk.seam([(0, 30), (0, (430 if v == 0 else hem_y))], "back")
    if v == 0:
        sk.trim([(-182 * W, 316), (182 * W, 316), (186 * W, 390), (-186 * W, 390)], outline=True)
        for dx, w in ((30, 26), (62, 22)):
            sk.trim(thick([(dx, 380), (dx + 8, 560), (dx + 4, 720)], w), "front", outline=True)
    else:
        sk.seam([(150, 390), (150, hem_y)], "front")
        sk.trim([(-184 * W, 430), (184 * W, 430), (186 * W, 490), (-186 * W, 490)], outline=True)
        hw = 220 * F * W
        sk.trim([(-hw, hem_y - 50), (hw, hem_y - 50), (hw, hem_y + 2), (-hw, hem_y + 14)], outline=False)
        sk.fold(500, 180, hem_y, hw, 3, 0.08)


def _c_set(sk: Sketch, g: Geometry):
    v = g.variant % 3  # tee + shorts, tracksuit, crop top + midi skirt
    W, L, S, F = g.width, g.length, g.sleeve, g.flare
    if v == 0:
        sk.dy = 560
        _pants(sk, waist=150 * W, hip=172 * W, hem_y=440 * L, hem_out=184 * W * F, leg_w=150 * F, band=50,
               style="joggers")
        sk.dy = 0
        sk.over()
        t = Top(neck_w=60, neck_back=14, neck_front=58, shoulder=(176 * W, 30), armpit=(182 * W, 234),
                waist=(174 * W, 400), hem=(178 * W, 520 * L), sleeve_angle=36, sleeve_len=150 * S, cuff_w=110,
                neck_band=12)
        _top(sk, t)
    elif v == 1:
        sk.dy = 600
        _pants(sk, waist=150 * W, hip=176 * W, rise=310, hem_y=960 * L, hem_out=132 * W, leg_w=84, band=54,
               style="joggers", cuff=64)
        for s in (-1, 1):
            sk.trim(thick([(s * 170 * W, 60), (s * 150 * W, 600), (s * 136 * W, 890 * L)], 16))
        sk.dy = 0
        sk.over()
        t = Top(neck_w=58, neck_back=14, neck_front=40, shoulder=(184 * W, 38), armpit=(190 * W, 262),
                waist=(184 * W, 440), hem=(178 * W, 580 * L), sleeve_angle=77, sleeve_len=540 * S, cuff_w=80,
                cuff_band=52, hem_band=56, ribbed=True, inner_neck=False)
        k = _top(sk, t)
        for s in (-1, 1):
            a, b = _add(k.S, k.perp, 14), _add(k.C1, k.perp, 14)
            sk.trim(thick([(s * a[0], a[1]), (s * b[0], b[1] - 60)], 16))
        sk.fabric([(-70, -60), (70, -60), (72, 8), (-72, 8)], outline=True)
        sk.inner(arc(0, -60, 70, 12, 0, 360, 20), deep=True)
        sk.zip(0, -56, k.H[1] + 4)
    else:
        sk.dy = 420
        _skirt(sk, waist=140 * W, hip=(178 * W, 180), hem_y=720 * L, hem_w=300 * W * F, waves=16, folds=4)
        sk.dy = 0
        sk.over()
        t = Top(neck_w=66, neck_back=14, neck_front=80, shoulder=(150 * W, 22), armpit=(164 * W, 210),
                waist=(156 * W, 300), hem=(156 * W, 360), sleeve_angle=40, sleeve_len=120 * S, cuff_w=92,
                neck_band=10)
        _top(sk, t)


def _c_homewear(sk: Sketch, g: Geometry):
    v = g.variant % 3  # pyjamas, robe, lounge set
    W, L, S, F = g.width, g.length, g.sleeve, g.flare
    if v == 1:
        t = Top(neck_w=58, neck_back=14, neck_front=30, shoulder=(190 * W, 38), armpit=(198 * W, 280),
                waist=(190 * W, 480), hem=(214 * W * F, 1080 * L), sleeve_angle=74, sleeve_len=520 * S, cuff_w=118,
                cuff_band=80, trim_bands=True, inner_neck=False, hem_stitch=False)
        k = _top(sk, t)
        sk.inner([(-60, -6), (60, -6), (0, 420)], "front")
        lapel = [(52, -16)] + spline([(60, -12), (118, 140), (96, 320), (10, 440)], 8) + [(20, 440), (40, 30)]
        sk.trim(lapel, "front", outline=True)
        sk.trim(mirror(lapel), "front", outline=True)
        sk.trim(thick(bez((-70, 0), (0, -30), (70, 0), 8), 40), "back", outline=True)
        sk.seam([(10, 440), (30, k.H[1] + 4)], "front")
        _belt(sk, 470, k.width_at(470), 36, buckle=False, ties=True)
        for s in (-1, 1):
            sk.seam([(s * 70, 620), (s * 170, 620), (s * 172, 760), (s * 72, 760)], "front", closed=True)
        sk.fold(560, 190, k.H[1], 214 * F, 3, 0.08)
        return
    sk.dy = 620
    _pants(sk, waist=156 * W, hip=182 * W, rise=320, hem_y=940 * L, hem_out=170 * W * F, leg_w=128 * F, band=56,
           style="joggers", cuff=60 if v == 2 else 0)
    if v == 0:
        for s in (-1, 1):
            sk.mark("piping", [(s * 171 * W * F, 936 * L - 26), (s * (171 * W * F - 126 * F), 936 * L - 26)])
    sk.dy = 0
    sk.over()
    if v == 0:
        t = Top(neck_w=56, neck_back=12, neck_front=30, shoulder=(190 * W, 36), armpit=(196 * W, 262),
                waist=(192 * W, 420), hem=(192 * W, 620 * L), hem_curve=10, sleeve_angle=76, sleeve_len=540 * S,
                cuff_w=96, inner_neck=False, hem_stitch=False)
        k = _top(sk, t)
        _lapels(sk, 56, 240, "notch")
        sk.mark("piping", [(10, 240), (70, 118), (126, 116), (70, 62), (56, -12)], "front")
        sk.mark("piping", mirror([(10, 240), (70, 118), (126, 116), (70, 62), (56, -12)]), "front")
        sk.mark("piping", [(12, 240), (12, k.H[1] + 4)], "front")
        y = 270.0
        while y < k.H[1] - 20:
            sk.button(-6, y, 9)
            y += 100 * L
        sk.mark("piping", [(50, 200), (140, 200)], "front")
        sk.seam([(50, 200), (50, 300), (140, 300), (140, 200)], "front")
        for s in (-1, 1):
            a0, a1 = _add(k.C1, k.d, -30), _add(k.C2, k.d, -30)
            sk.mark("piping", [(s * a0[0], a0[1]), (s * a1[0], a1[1])])
    else:
        t = Top(neck_w=62, neck_back=16, neck_front=62, shoulder=(188 * W, 44), armpit=(194 * W, 280),
                waist=(188 * W, 440), hem=(184 * W, 620 * L), sleeve_angle=77, sleeve_len=550 * S, cuff_w=84,
                cuff_band=60, hem_band=60, neck_band=20, ribbed=True)
        _top(sk, t)


_BUILDERS = {
    "pants": _c_pants, "t-shirt": _c_tshirt, "lingerie-and-swimwear": _c_lingerie, "half-skirt": _c_half_skirt,
    "hoodie": _c_hoodie, "coat": _c_coat, "jacket": _c_jacket, "set": _c_set, "home-wear": _c_homewear,
    "hat": _c_hat, "hanfu": _c_hanfu, "jeans": _c_jeans, "shorts": _c_shorts, "down-jacket": _c_down,
    "vest-and-camisole": _c_vest, "shirt": _c_shirt, "suit": _c_suit, "dress": _c_dress, "sweater": _c_sweater,
    "trench-coat": _c_trench,
}
assert set(_BUILDERS) == set(N_VARIANTS)


@functools.lru_cache(maxsize=64)
def sketch(category: str, geometry: Geometry) -> Sketch:
    try:
        builder = _BUILDERS[category]
    except KeyError:
        raise ValueError(f"no sample template for category {category!r}") from None
    sk = Sketch()
    builder(sk, geometry)
    ky = _YSCALE.get(category, 1.0)
    return _stretch(sk, ky) if ky != 1.0 else sk


# Garments are drawn a little tall for easy numbers; this brings each category to its real proportions.
_YSCALE: dict[str, float] = {
    "pants": 0.82, "jeans": 0.82, "t-shirt": 0.8, "shirt": 0.74, "sweater": 0.8, "hoodie": 0.8, "coat": 0.76,
    "trench-coat": 0.76, "jacket": 0.8, "suit": 0.8, "down-jacket": 0.82, "home-wear": 0.8, "set": 0.85,
    "hanfu": 0.86, "vest-and-camisole": 0.85, "shorts": 0.9,
}


def _stretch(sk: Sketch, ky: float) -> Sketch:
    """The sketch scaled by `ky` vertically (hardware sizes unchanged)."""
    def t(pts):
        return [(x, y * ky) for x, y in pts]

    out = Sketch()
    for p in sk.parts:
        bands = None if p.bands is None else (p.bands[0], p.bands[1] * ky, p.bands[2], p.bands[3] / ky, p.bands[4])
        out.parts.append(Part(t(p.pts), p.role, p.side, p.outline, bands, p.layer))
    out.marks = [Mark(m.kind, t(m.pts), m.side, m.closed, m.layer) for m in sk.marks]
    out.hardware = [Hardware(h.kind, t(h.pts), h.size, h.side, h.layer) for h in sk.hardware]
    out.folds = [Fold(f.y0 * ky, f.w0, f.y1 * ky, f.w1, f.n, f.amp, f.x0) for f in sk.folds]
    return out


# ------------------------------------------------------------------------------------------ views, raster


@dataclass(frozen=True)
class View:
    side: str  # front | back
    squeeze: float  # horizontal foreshortening, 1 for front/back
    turn: float  # -1..1: how far details slide sideways (sin of the azimuth)

    @classmethod
    def from_azimuth(cls, azimuth_deg: float) -> "View":
        a = math.radians(azimuth_deg)
        c = math.cos(a)
        return cls("front" if c >= 0 else "back", 0.6 + 0.4 * abs(c), math.sin(a))


class Frame:
    """Design units -> pixels: the side's bounding box fitted in the image (like the release's crop), mirrored
    for the back, squeezed for side views; details and openings slide with the turn."""

    def __init__(self, sk: Sketch, view: View, width: int, height: int, margin: tuple[float, float] = (0.05, 0.04)):
        x0, y0, x1, y1 = sk.bbox(view.side)
        self.s = min(width * (1 - 2 * margin[0]) / (x1 - x0), height * (1 - 2 * margin[1]) / (y1 - y0))
        self.cx, self.cy = (x0 + x1) / 2, (y0 + y1) / 2
        self.w, self.h = width, height
        self.mirror = -1.0 if view.side == "back" else 1.0
        self.kx = self.mirror * self.s * view.squeeze
        self.half = max(1e-6, (x1 - x0) / 2)
        self.slide = view.turn * 0.12 * self.half * self.s * (1 if view.side == "front" else -1)

    def __call__(self, pts) -> list[Pt]:
        """Pixels of design points. Side views turn the garment like a cylinder: points slide sideways, most on
        the centre line and not at all at the sides, so details stay on the garment and the outline keeps its
        width."""
        if not self.slide:
            return [(self.w / 2 + (x - self.cx) * self.kx, self.h / 2 + (y - self.cy) * self.s) for x, y in pts]
        out = []
        for x, y in pts:
            u = min(1.0, abs(x - self.cx) / self.half)
            out.append((self.w / 2 + (x - self.cx) * self.kx + self.slide * (1 - u * u),
                        self.h / 2 + (y - self.cy) * self.s))
        return out

    def design_grid(self, lw: int, lh: int) -> tuple[np.ndarray, np.ndarray]:
        """Design coordinates of the centres of a (lh, lw) grid covering the image."""
        X = (np.arange(lw, dtype=np.float32) + 0.5) * (self.w / lw)
        Y = (np.arange(lh, dtype=np.float32) + 0.5) * (self.h / lh)
        return (X - self.w / 2) / self.kx + self.cx, (Y - self.h / 2) / self.s + self.cy


def _visible(side: str, view_side: str) -> bool:
    return side == "both" or side == view_side


@dataclass
class Raster:
    """A view's layers. Full-size ones cover only `box`, the garment's pixel box."""

    mask: Image.Image  # L, anti-aliased coverage of the garment
    trim: Image.Image | None  # L, where trim colour replaces the fabric
    tone: Image.Image  # L, 255 on the outside of the fabric, darker where its inside shows (openings)
    cover: list[Image.Image]  # L per layer >= 1: where it hides the layers below
    shade: np.ndarray  # float32 (h/q, w/q) lighting x tone x folds, in [0, 1]
    frame: Frame
    q: int  # shade's downscale factor
    box: tuple[int, int, int, int]  # the garment's pixel box (multiples of q, within the image)


def rasterize(sk: Sketch, view: View, width: int, height: int, fold_phase: float = 0.0, q: int = 4) -> Raster:
    fr = Frame(sk, view, width, height)
    parts = [p for p in sk.parts if _visible(p.side, view.side)]
    px = [fr(p.pts) for p in parts]
    # the garment's box, aligned to the shading grid, clipped to the image; all full-size layers cover it only
    allx = [x for pts in px for x, _ in pts]
    ally = [y for pts in px for _, y in pts]
    x0, y0 = max(0, int(min(allx)) - 2) // q * q, max(0, int(min(ally)) - 2) // q * q
    x1 = min(width, -(-(int(max(allx)) + 3) // q) * q)
    y1 = min(height, -(-(int(max(ally)) + 3) // q) * q)
    box = (x0, y0, x1, y1)
    # silhouette, supersampled 2x for smooth edges
    big = Image.new("L", (2 * (x1 - x0), 2 * (y1 - y0)), 0)
    d = ImageDraw.Draw(big)
    for pts in px:
        d.polygon([(2 * (x - x0) + 0.5, 2 * (y - y0) + 0.5) for x, y in pts], fill=255)
    mask = big.reduce(2)
    local = [[(x - x0, y - y0) for x, y in pts] for pts in px]
    trim = None
    if any(p.role == "trim" for p in parts):
        trim = Image.new("L", (x1 - x0, y1 - y0), 0)
        dt = ImageDraw.Draw(trim)
        for p, pts in zip(parts, local):
            dt.polygon(pts, fill=255 if p.role == "trim" else 0)
    tone = Image.new("L", (x1 - x0, y1 - y0), 255)
    dtone = ImageDraw.Draw(tone)
    for p, pts in zip(parts, local):
        dtone.polygon(pts, fill=round(255 * TONES[p.role]))
    cover = []
    for layer in range(1, max((p.layer for p in parts), default=0) + 1):
        cover.append(Image.new("L", (x1 - x0, y1 - y0), 0))
        dc = ImageDraw.Draw(cover[-1])
        for p, pts in zip(parts, local):
            if p.layer >= layer:
                dc.polygon(pts, fill=255)
    # shading at 1/q resolution
    lw, lh = max(1, width // q), max(1, height // q)
    frl = Frame(sk, view, lw, lh)
    small = Image.new("L", (lw, lh), 0)
    edges = Image.new("L", (lw, lh), 0)
    ds, de = ImageDraw.Draw(small), ImageDraw.Draw(edges)
    for p in parts:
        pts = frl(p.pts)
        ds.polygon(pts, fill=255)
        if p.outline or p.role in ("inner", "deep"):
            de.line(pts + pts[:1], fill=255, width=1)
    r = max(1.0, 0.045 * min(lw, lh))
    ao = np.asarray(small.filter(ImageFilter.GaussianBlur(r)), np.float32) * (1 / 255)
    inside = np.clip(2.0 * ao - 1.0, 0, 1)
    edge = np.asarray(edges.filter(ImageFilter.GaussianBlur(max(0.7, r / 4))), np.float32) * (1 / 255)
    xs, ys = frl.design_grid(lw, lh)
    xn = (np.arange(lw, dtype=np.float32) / lw - 0.5)[None, :]
    yn = (np.arange(lh, dtype=np.float32) / lh)[:, None]
    turn = view.turn if view.side == "front" else -view.turn
    light = 1.0 - 0.10 * yn - 0.16 * xn - 0.5 * xn**2 * (1.2 - view.squeeze) - 0.45 * turn * xn * (1 - view.squeeze)
    shade = light * (0.66 + 0.34 * np.sqrt(inside)) * (1.0 - 0.3 * np.clip(edge * 2, 0, 1))
    for f in sk.folds:
        y = ys[:, None]
        wy = np.interp(ys, [f.y0, max(f.y1, f.y0 + 1)], [f.w0, f.w1]).astype(np.float32)[:, None]
        ramp = np.clip((y - f.y0) / max(1.0, f.y1 - f.y0), 0, 1) ** 0.8 * (y >= f.y0)
        u = (xs[None, :] - f.x0) / wy
        window = np.clip(1.3 - np.abs(u), 0, 1)
        ph = np.pi * f.n * u + fold_phase + 0.8 * np.sin(y / 90.0 + fold_phase)
        shade = shade * (1 + 1.4 * f.amp * ramp * window * (0.7 * np.sin(ph) + 0.3 * np.sin(2.3 * ph + 1.0)))
    for p in parts:
        if p.bands is None:
            continue
        pm = Image.new("L", (lw, lh), 0)
        ImageDraw.Draw(pm).polygon(frl(p.pts), fill=255)
        ox, oy, ux, uy, pitch = p.bands
        tt = ((xs[None, :] - ox) * ux + (ys[:, None] - oy) * uy) / pitch
        puff = 0.7 + 0.3 * np.sqrt(np.abs(np.sin(np.pi * tt)))
        m = np.asarray(pm, np.float32) * (1 / 255)
        shade = shade * (1 - m + m * puff)
    return Raster(mask, trim, tone, cover, np.clip(shade, 0, 1).astype(np.float32), fr, q, box)


def draw_marks(shade: Image.Image, sk: Sketch, view: View, ras: Raster) -> None:
    """Seams, creases and part outlines darken the shading image (L, over `ras.box`) in place, layer by layer:
    a garment worn over another hides the seams below it."""
    fr, (ox, oy) = ras.frame, ras.box[:2]
    clean = shade.copy() if ras.cover else None
    d = ImageDraw.Draw(shade)
    lw = max(1, round(fr.w / 384))
    for layer in range(len(ras.cover) + 1):
        if layer:
            shade.paste(clean, (0, 0), ras.cover[layer - 1])
        lines = [(fr(p.pts), True, 96) for p in sk.parts
                 if p.outline and p.layer == layer and _visible(p.side, view.side)]
        lines += [(fr(m.pts), m.closed, 72 if m.kind == "seam" else 150) for m in sk.marks
                  if m.kind in ("seam", "fold") and m.layer == layer and _visible(m.side, view.side)]
        for pts, closed, value in lines:
            pts = [(x - ox, y - oy) for x, y in pts]
            d.line(pts + pts[:1] if closed else pts, fill=value, width=lw, joint="curve")


def _hidden(ras: Raster, layer: int, pt: Pt) -> bool:
    """Whether a point of `layer` lies under a garment of a higher layer."""
    if layer >= len(ras.cover):
        return False
    x, y = int(pt[0]) - ras.box[0], int(pt[1]) - ras.box[1]
    c = ras.cover[layer]
    return 0 <= x < c.width and 0 <= y < c.height and c.getpixel((x, y)) > 127


def draw_hardware(img: Image.Image, sk: Sketch, view: View, ras: Raster, *, trim: tuple[int, int, int],
                  button: tuple[int, int, int], metal: tuple[int, int, int]) -> None:
    """Top-stitching, piping, buttons, zips, rivets, buckles, eyelets on the final RGB image (full size)."""
    fr = ras.frame
    d = ImageDraw.Draw(img)
    unit = fr.w / 768
    lw = max(1, round(1.6 * unit))
    dash = max(2.0, 7 * unit)
    stitch_col = (214, 164, 80)
    for m in sk.marks:
        if not _visible(m.side, view.side) or m.kind not in ("stitch", "piping"):
            continue
        pts = fr(m.pts)
        if _hidden(ras, m.layer, pts[len(pts) // 2]):
            continue
        if m.closed:
            pts = pts + pts[:1]
        if m.kind == "piping":
            d.line(pts, fill=trim, width=max(1, round(5 * unit)), joint="curve")
            continue
        for (x0, y0), (x1, y1) in zip(pts, pts[1:]):
            n = max(1, int(math.hypot(x1 - x0, y1 - y0) / (2 * dash)))
            for i in range(n):
                a, b = i / n, (i + 0.5) / n
                d.line([(x0 + (x1 - x0) * a, y0 + (y1 - y0) * a), (x0 + (x1 - x0) * b, y0 + (y1 - y0) * b)],
                       fill=stitch_col, width=lw)
    sq = abs(fr.kx) / fr.s
    dark = tuple(int(c * 0.55) for c in metal)
    for h in sk.hardware:
        if not _visible(h.side, view.side):
            continue
        pts = fr(h.pts)
        if _hidden(ras, h.layer, pts[0]):
            continue
        r = h.size * fr.s
        (x, y) = pts[0]
        if h.kind in ("button", "rivet", "eyelet"):
            col = button if h.kind == "button" else metal
            rx, ry = max(1.0, r * sq), max(1.0, r)
            d.ellipse([x - rx, y - ry, x + rx, y + ry], fill=col if h.kind != "eyelet" else (40, 40, 40),
                      outline=tuple(int(c * 0.6) for c in col), width=max(1, round(r / 4)))
            if h.kind == "button" and r > 4:
                d.ellipse([x - rx * 0.45, y - ry * 0.55, x - rx * 0.05, y - ry * 0.15],
                          fill=tuple(min(255, int(c * 1.25 + 30)) for c in col))
        elif h.kind == "zip":
            (x1, y1) = pts[1]
            d.line([(x, y), (x1, y1)], fill=dark, width=max(2, round(5 * unit)))
            d.line([(x, y), (x1, y1)], fill=metal, width=max(1, round(1.5 * unit)))
            d.rectangle([x - 5 * unit * sq, y, x + 5 * unit * sq, y + 26 * unit], fill=metal, outline=dark)
        elif h.kind == "aglet":
            d.line(pts, fill=metal, width=max(1, round(h.size * fr.s)))
        elif h.kind == "buckle":
            d.rectangle([x - r * sq, y - r * 0.6, x + r * sq, y + r * 0.6], outline=metal,
                        width=max(1, round(4 * unit)))
