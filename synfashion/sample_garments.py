"""Garment silhouettes for the sample release: one parametric template per category, drawn per view.

Shapes live in normalised coordinates (x, y in [0, 1], garment centred); a project's parameters (length, width,
sleeve length, flare) vary the geometry, a view compresses it horizontally by its azimuth and hides front-only
details (buttons, lapels, zips, pockets) from behind. Returns PIL masks; no I/O.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from PIL import Image, ImageDraw

Poly = list[tuple[float, float]]


@dataclass(frozen=True)
class Geometry:
    """A 3D project's shape parameters (the sample's stand-in for distinct garment geometry)."""

    length: float = 1.0
    width: float = 1.0
    sleeve: float = 1.0
    flare: float = 1.0


@dataclass
class _Shape:
    polys: list[Poly]
    ellipses: list[tuple[float, float, float, float]]  # cx, cy, rx, ry
    cutouts: list[tuple[float, float, float, float]]  # ellipses removed (necklines)
    lines: list[Poly]  # seams and details, all views
    front_lines: list[Poly]  # front-only details


def _torso(y0: float, y1: float, top: float, hem: float) -> Poly:
    return [(0.5 - top / 2, y0), (0.5 + top / 2, y0), (0.5 + hem / 2, y1), (0.5 - hem / 2, y1)]


def _sleeves(y0: float, top: float, length: float, width: float, spread: float = 0.6) -> list[Poly]:
    out = []
    for side in (-1, 1):
        sx = 0.5 + side * top / 2
        tip_x = sx + side * length * spread
        tip_y = y0 + length * 0.8
        out.append([(sx, y0), (tip_x, tip_y), (tip_x - side * width * 0.7, tip_y + width * 0.5), (sx, y0 + width * 1.6)])
    return out


def _legs(y0: float, y1: float, waist: float, hem: float, gap: float) -> list[Poly]:
    return [
        [(0.5 - waist / 2, y0), (0.5, y0), (0.5 - gap / 2, y1), (0.5 - gap / 2 - hem, y1)],
        [(0.5, y0), (0.5 + waist / 2, y0), (0.5 + gap / 2 + hem, y1), (0.5 + gap / 2, y1)],
    ]


def _hline(y: float, x0: float, x1: float) -> Poly:
    return [(x0, y), (x1, y)]


def _vline(x: float, y0: float, y1: float) -> Poly:
    return [(x, y0), (x, y1)]


def _shape(category: str, g: Geometry) -> _Shape:
    L, W, S, F = g.length, g.width, g.sleeve, g.flare
    s = _Shape([], [], [], [], [])
    neck = (0.5, 0.1, 0.07 * W, 0.05)

    def top_with_sleeves(y0, y1, top, hem, sleeve_len, sleeve_w=0.09):
        s.polys.append(_torso(y0, y1, top, hem))
        s.polys.extend(_sleeves(y0, top, sleeve_len, sleeve_w))

    if category == "t-shirt":
        top_with_sleeves(0.1, 0.1 + 0.8 * L, 0.52 * W, 0.5 * W, 0.17 * S, 0.11)
        s.cutouts.append(neck)
    elif category in ("shirt", "sweater"):
        top_with_sleeves(0.1, 0.1 + 0.8 * L, 0.5 * W, 0.48 * W, 0.46 * S)
        s.cutouts.append(neck)
        if category == "shirt":
            s.front_lines += [_vline(0.5, 0.14, 0.1 + 0.8 * L)]
            s.lines += [[(0.43, 0.09), (0.5, 0.16), (0.57, 0.09)]]
        else:
            bottom = 0.1 + 0.8 * L
            s.lines += [_hline(bottom - k * 0.012, 0.5 - 0.24 * W, 0.5 + 0.24 * W) for k in range(1, 4)]
    elif category == "hoodie":
        top_with_sleeves(0.2, 0.2 + 0.72 * L, 0.52 * W, 0.5 * W, 0.42 * S, 0.1)
        s.ellipses.append((0.5, 0.15, 0.15 * W, 0.12))
        s.front_lines += [[(0.38, 0.62), (0.62, 0.62), (0.66, 0.78), (0.34, 0.78), (0.38, 0.62)]]
    elif category in ("coat", "trench-coat", "suit", "jacket", "down-jacket"):
        bottom = {"coat": 0.94, "trench-coat": 0.97, "suit": 0.8, "jacket": 0.78, "down-jacket": 0.84}[category]
        hem = {"coat": 0.56, "trench-coat": 0.66, "suit": 0.5, "jacket": 0.5, "down-jacket": 0.58}[category]
        top = 0.58 * W if category == "down-jacket" else 0.5 * W
        sw = 0.13 if category == "down-jacket" else 0.09
        top_with_sleeves(0.08, 0.08 + (bottom - 0.08) * L, top, hem * W * F, 0.46 * S, sw)
        s.cutouts.append((0.5, 0.07, 0.06 * W, 0.04))
        y1 = 0.08 + (bottom - 0.08) * L
        if category in ("coat", "trench-coat", "suit"):
            s.front_lines += [[(0.44, 0.08), (0.5, 0.4)], [(0.56, 0.08), (0.5, 0.4)], _vline(0.5, 0.4, y1)]
            s.front_lines += [[(0.47, 0.45 + k * 0.08), (0.47, 0.455 + k * 0.08)] for k in range(3)]
        if category == "trench-coat":
            s.lines += [_hline(0.5, 0.5 - 0.3 * W, 0.5 + 0.3 * W)]
        if category in ("jacket", "down-jacket"):
            s.front_lines += [_vline(0.5, 0.1, y1)]
        if category == "down-jacket":
            s.lines += [_hline(0.14 + k * 0.09, 0.5 - 0.3 * W, 0.5 + 0.3 * W) for k in range(int((y1 - 0.14) / 0.09) + 1)]
    elif category == "vest-and-camisole":
        s.polys.append(_torso(0.22, 0.22 + 0.66 * L, 0.38 * W, 0.44 * W * F))
        s.polys += [[(0.36, 0.06), (0.38, 0.06), (0.37, 0.23), (0.34, 0.23)], [(0.62, 0.06), (0.64, 0.06), (0.66, 0.23), (0.63, 0.23)]]
    elif category == "dress":
        waist = 0.4
        s.polys.append(_torso(0.12, waist, 0.36 * W, 0.28 * W))
        s.polys.append(_torso(waist, waist + 0.55 * L, 0.28 * W, 0.78 * W * F))
        s.polys += [[(0.35, 0.04), (0.37, 0.04), (0.36, 0.13), (0.33, 0.13)], [(0.63, 0.04), (0.65, 0.04), (0.67, 0.13), (0.64, 0.13)]]
        s.lines += [_hline(waist, 0.5 - 0.14 * W, 0.5 + 0.14 * W)]
    elif category == "half-skirt":
        s.polys.append(_torso(0.1, 0.1 + 0.8 * L, 0.44 * W, 0.86 * W * F))
        s.lines += [_hline(0.16, 0.5 - 0.235 * W, 0.5 + 0.235 * W)]
    elif category in ("pants", "jeans", "shorts"):
        y1 = 0.06 + (0.5 if category == "shorts" else 0.9) * L
        hem = {"pants": 0.2, "jeans": 0.16, "shorts": 0.24}[category] * W * F
        s.polys.append(_torso(0.04, 0.1, 0.46 * W, 0.47 * W))
        s.polys += _legs(0.09, y1, 0.47 * W, hem, 0.04)
        s.lines += [_hline(0.1, 0.5 - 0.235 * W, 0.5 + 0.235 * W)]
        if category == "jeans":
            s.front_lines += [[(0.5, 0.1), (0.5, 0.3)], [(0.33, 0.12), (0.4, 0.2)], [(0.67, 0.12), (0.6, 0.2)]]
    elif category == "lingerie-and-swimwear":
        s.ellipses += [(0.39, 0.28, 0.11 * W, 0.09), (0.61, 0.28, 0.11 * W, 0.09)]
        s.polys.append(_torso(0.3, 0.36, 0.46 * W, 0.46 * W))
        s.polys.append([(0.5 - 0.2 * W, 0.55), (0.5 + 0.2 * W, 0.55), (0.54, 0.55 + 0.25 * L), (0.46, 0.55 + 0.25 * L)])
        s.polys += [[(0.33, 0.06), (0.35, 0.06), (0.37, 0.22), (0.35, 0.22)], [(0.65, 0.06), (0.67, 0.06), (0.65, 0.22), (0.63, 0.22)]]
    elif category == "hat":
        s.ellipses.append((0.5, 0.55, 0.3 * W, 0.26 * L))
        s.polys.append([(0.18, 0.55), (0.82, 0.55), (0.82, 0.7), (0.18, 0.7)])
        s.ellipses.append((0.5, 0.7, 0.45 * W * F, 0.08))
        s.lines += [_hline(0.64, 0.5 - 0.3 * W, 0.5 + 0.3 * W)]
    elif category == "hanfu":
        s.polys.append(_torso(0.08, 0.08 + 0.89 * L, 0.42 * W, 0.72 * W * F))
        for side in (-1, 1):
            sx = 0.5 + side * 0.21 * W
            tip = sx + side * 0.3 * S
            s.polys.append([(sx, 0.09), (tip, 0.3), (tip, 0.62), (sx, 0.4)])
        s.front_lines += [[(0.42, 0.08), (0.6, 0.4)], [(0.58, 0.08), (0.52, 0.2)]]
        s.lines += [_hline(0.42, 0.5 - 0.25 * W, 0.5 + 0.25 * W), _hline(0.45, 0.5 - 0.26 * W, 0.5 + 0.26 * W)]
    elif category in ("set", "home-wear"):
        loose = 1.15 if category == "home-wear" else 1.0
        top_with_sleeves(0.05, 0.47, 0.5 * W * loose, 0.5 * W * loose, (0.4 if category == "home-wear" else 0.15) * S)
        s.cutouts.append((0.5, 0.05, 0.07 * W, 0.04))
        bottom = 0.52 + (0.44 if category == "home-wear" else 0.28) * L
        s.polys.append(_torso(0.51, 0.55, 0.44 * W, 0.45 * W))
        s.polys += _legs(0.54, bottom, 0.45 * W, 0.22 * W * loose * F, 0.04)
    else:
        raise ValueError(f"no sample template for category {category!r}")
    return s


def draw_garment(category: str, geometry: Geometry, azimuth_deg: float, width: int, height: int
                 ) -> tuple[Image.Image, Image.Image]:
    """(mask, details) as 'L' images: mask 255 on the garment; details 255 where seams/trims darken it."""
    shape = _shape(category, geometry)
    az = math.radians(azimuth_deg)
    sx = 0.55 + 0.45 * abs(math.cos(az))
    facing_front = math.cos(az) > 0.2
    mirror = -1 if math.cos(az) < 0 else 1

    def px(pt: tuple[float, float]) -> tuple[float, float]:
        x, y = pt
        return ((0.5 + mirror * (x - 0.5) * sx) * width, y * height)

    mask = Image.new("L", (width, height), 0)
    d = ImageDraw.Draw(mask)
    for poly in shape.polys:
        d.polygon([px(p) for p in poly], fill=255)
    for cx, cy, rx, ry in shape.ellipses:
        (x0, y0), (x1, y1) = px((cx - rx, cy - ry)), px((cx + rx, cy + ry))
        d.ellipse([min(x0, x1), y0, max(x0, x1), y1], fill=255)
    for cx, cy, rx, ry in shape.cutouts:
        (x0, y0), (x1, y1) = px((cx - rx, cy - ry)), px((cx + rx, cy + ry))
        d.ellipse([min(x0, x1), y0, max(x0, x1), y1], fill=0)
    details = Image.new("L", (width, height), 0)
    dd = ImageDraw.Draw(details)
    lw = max(1, round(width / 256))
    for line in shape.lines + (shape.front_lines if facing_front else []):
        dd.line([px(p) for p in line], fill=255, width=lw)
    return mask, details
