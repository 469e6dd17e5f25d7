"""Garment pieces shared by several categories, drawn into a `Sketch`: an upper body with neckline, sleeves and
bands (`Top` -> `add_top`), collars, lapels, a hood, trousers, a skirt, a belt.

Each `add_*` records parts, marks and hardware on the sketch it is given, in design units, from explicit
measurements; which pieces a category uses and with what measurements is `categories`' job. No category
knowledge, no pixels, no randomness.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .geometry import Pt, bez, both, lerp, mirror, offset, scallop, spline, sym, thick
from .model import Sketch


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


def add_ribs(sk: Sketch, a0: Pt, a1: Pt, b0: Pt, b1: Pt, n: int, side="both"):
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
        add_ribs(sk, a0, a1, b0, b1, ribs, side)


def add_top(sk: Sketch, t: Top) -> TopKeys:
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
    C1 = offset(S, d, t.sleeve_len)
    C2 = offset(C1, perp, t.cuff_w)
    if t.sleeve_len > 0:
        if t.quilt:
            n = max(1, round(t.sleeve_len / t.quilt))
            sleeve = scallop(S, C1, n, 6) + [C1] + scallop(C2, A, n, 6) + [A]
        else:
            cap = offset(lerp(S, C1, 0.12), perp, -5)
            sleeve = [S, cap, C1, C2, A]
        bands_s = (S[0], S[1], d[0], d[1], t.quilt) if t.quilt else None
        sk.fabric(sleeve, bands=bands_s)
        sk.fabric(mirror(sleeve), bands=None if not t.quilt else (-S[0], S[1], -d[0], d[1], t.quilt))
        for f in (lambda p: p, lambda p: (-p[0], p[1])):
            sk.seam([f(S), f(A)])
            if t.cuff_band:
                a0, a1 = offset(C1, d, -t.cuff_band), offset(C2, d, -t.cuff_band)
                _band(sk, f(a0), f(a1), f(C1), f(C2), t, max(4, int(t.cuff_w / 9)))
            elif t.hem_stitch:
                sk.crease([f(offset(C1, d, -18)), f(offset(C2, d, -18))])
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


def add_shirt_collar(sk: Sketch, nw: float, depth: float = 48, spread: float = 1.0):
    """Pointed collar leaves meeting at the top button, plus the stand behind the neck."""
    _collar_stand(sk, nw, 10, 34)
    leaf = [(nw + 4, -12), (nw + 26 * spread, 30), (46 * spread + 12, depth + 70), (6, depth), (nw - 20, 4)]
    sk.fabric(leaf, "front", outline=True)
    sk.fabric(mirror(leaf), "front", outline=True)
    sk.inner([(-6, depth - 3), (6, depth - 3), (0, depth + 12)], "front", deep=True)


def add_lapels(sk: Sketch, nw: float, B: float, style: str = "notch", wide: float = 1.0):
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


def add_hood(sk: Sketch, nw: float, quilt: float = 0):
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


def add_pants(sk: Sketch, *, waist=150.0, hip=170.0, rise=290.0, hem_y=1000.0, hem_out=155.0, leg_w=105.0,
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
                add_ribs(sk, a0, a1, (s * hem_out, hem_y), (s * inner_x, hem_y), 8)


def add_skirt(sk: Sketch, *, waist=135.0, hip=(162.0, 190.0), hem_y=600.0, hem_w=230.0, band=36.0,
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


def add_belt(sk: Sketch, y: float, half_w: float, h: float = 40, buckle=True, side="both", ties=False):
    rect = [(-half_w - 6, y), (half_w + 6, y - 2), (half_w + 6, y + h - 2), (-half_w - 6, y + h)]
    sk.fabric(rect, side, outline=True)
    if buckle:
        sk.hw("buckle", [(-half_w * 0.25, y + h / 2)], h * 0.8, "front")
    if ties:
        sk.fabric(thick([(-30, y + h / 2), (-44, y + h + 120), (-40, y + h + 230)], 30), "front", outline=True)
        sk.fabric(thick([(-24, y + h / 2), (-4, y + h + 100), (6, y + h + 200)], 30), "front", outline=True)
