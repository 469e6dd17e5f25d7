"""Sketch to pixels for one view: `View` (from the camera azimuth), `Frame` (design units -> pixels, fitted like
the release's garment crop), `rasterize` (silhouette, trim and tone masks, cover masks per layer, shading with
lighting, soft folds and quilting) and the overlays `draw_marks` (seams and creases into the shading) and
`draw_hardware` (stitching, piping, buttons, zips, rivets, buckles on the final image).

A view picks the front or back side, mirrors the back, narrows side views and slides their details. PIL polygons
plus a little numpy at 1/q resolution for the shading. No garment shapes (`categories`), no fabrics or colours
of its own (the caller passes them), no I/O, no randomness.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from .geometry import Pt
from .model import Sketch

TONES = {"fabric": 1.0, "trim": 1.0, "inner": 0.6, "deep": 0.42}


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
