"""The 20 category builders and their registry: `sketch(category, geometry)` draws a category's garment.

Each `_c_<category>` picks a style variant (`Geometry.variant` modulo `N_VARIANTS`) and places the shared pieces
(`components`) and its own details with measurements scaled by the project's `Geometry`; `sketch` then brings the
category to its real proportions (`_YSCALE`). Deterministic and cached per (category, geometry). No pixels, no
views (`raster`), no randomness.
"""

from __future__ import annotations

import functools
import math

from .components import (Top, add_belt, add_hood, add_lapels, add_pants, add_ribs, add_shirt_collar, add_skirt,
                         add_top)
from .geometry import arc, bez, both, lerp, mirror, offset, spline, sym, thick
from .model import Fold, Geometry, Hardware, Mark, Part, Sketch

# Style variants per category (a project's `Geometry.variant` is taken modulo this).
N_VARIANTS: dict[str, int] = {
    "pants": 3, "t-shirt": 4, "lingerie-and-swimwear": 3, "half-skirt": 4, "hoodie": 2, "coat": 3, "jacket": 2,
    "set": 3, "home-wear": 3, "hat": 4, "hanfu": 2, "jeans": 3, "shorts": 3, "down-jacket": 2,
    "vest-and-camisole": 3, "shirt": 3, "suit": 2, "dress": 4, "sweater": 4, "trench-coat": 2,
}


def _c_tshirt(sk: Sketch, g: Geometry):
    v = g.variant % 4
    over = float(v == 3)
    W, L, S = g.width, g.length, g.sleeve
    t = Top(neck_w=60, neck_back=14, neck_front=150 if v == 1 else (44 if v == 2 else 58), v_neck=v == 1,
            shoulder=(172 * W + 28 * over, 28 + 30 * over), armpit=(180 * W + 22 * over, 230 + 40 * over),
            waist=(170 * W + 20 * over, 440 * L), hem=(178 * W + 20 * over, 690 * L), hem_curve=8,
            sleeve_angle=34 + 14 * over, sleeve_len=(150 + 40 * over) * S, cuff_w=112 + 10 * over,
            neck_band=0 if v == 2 else 12)
    add_top(sk, t)
    if v == 2:  # polo
        add_shirt_collar(sk, 60, depth=46, spread=0.8)
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
    k = add_top(sk, t)
    add_shirt_collar(sk, 52)
    sk.seam([(-15, 58), (-15, k.H[1] + 40)], "front")
    sk.seam([(15, 58), (15, k.H[1] + 40)], "front")
    y = 64.0
    while y < k.H[1] - 20:
        sk.button(0, y, 8)
        y += 96 * L
    if not short:
        for s in (-1, 1):
            b = lerp(offset(k.C1, k.d, -31), offset(k.C2, k.d, -31), 0.72)
            sk.button(s * b[0], b[1], 7, "both")
            p0 = lerp(offset(k.C1, k.d, -62), offset(k.C2, k.d, -62), 0.72)
            p1 = offset(p0, k.d, -110)
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
    k = add_top(sk, t)
    if v == 2:
        sk.fabric([(-70, -120), (70, -120), (76, 24), (40, 36), (-40, 36), (-76, 24)], outline=True)
        sk.inner(arc(0, -120, 70, 14, 0, 360, 24), deep=True)
        sk.seam([(-72, -66), (72, -66)])
        add_ribs(sk, (-70, -120), (70, -120), (-74, 24), (74, 24), 14)
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
    k = add_top(sk, t)
    add_hood(sk, 68)
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
    k = add_top(sk, t)
    for s in (-1, 1):
        a0, a1 = offset(k.C1, k.d, -80), offset(k.C2, k.d, -80)
        sk.seam([(s * a0[0], a0[1]), (s * a1[0], a1[1])])
    add_lapels(sk, 58, B, style, wide=1.2 if double else 1.0)
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
        add_belt(sk, 450, k.width_at(450), 44, buckle=True)
    if epaulettes:
        for s in (-1, 1):
            sk.seam([(s * 70, 6), (s * (k.S[0] - 4), k.S[1] - 2), (s * (k.S[0] - 6), k.S[1] + 26),
                     (s * 72, 32)], closed=True)
            sk.button(s * 86, 18, 7, "both")
            if s > 0:  # storm flap
                sk.seam([(70, 20), (150, 96), (180, 120)], "front")
            cuff = lerp(offset(k.C1, k.d, -120), offset(k.C2, k.d, -120), 0.5)
            sk.seam([(s * offset(k.C1, k.d, -110)[0], offset(k.C1, k.d, -110)[1]),
                     (s * offset(k.C2, k.d, -110)[0], offset(k.C2, k.d, -110)[1])])
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
    add_pants(sk, waist=146 * W, hip=160 * W, rise=300, hem_y=820 * L, hem_out=140 * W, leg_w=100, style="trousers")
    sk.dy = 0
    sk.over()
    t = Top(neck_w=56, neck_back=12, neck_front=30, shoulder=(186 * W, 30), armpit=(186 * W, 248),
            waist=(164 * W, 450), hem=(178 * W, 720 * L), hem_curve=0, sleeve_angle=79, sleeve_len=560 * S,
            cuff_w=84, inner_neck=False, hem_stitch=False)
    k = add_top(sk, t)
    B = 380 if v == 0 else 360
    add_lapels(sk, 56, B, "notch" if v == 0 else "peak", wide=1.25 if v else 1.0)
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
            c = lerp(offset(k.C1, k.d, -40 - 22 * i), offset(k.C2, k.d, -40 - 22 * i), 0.3)
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
        k = add_top(sk, t)
        collar = bez((-70, -40), (0, -30), (70, -40), 8) + [(72, 6), (30, 46)] + [(-30, 46), (-72, 6)]
        sk.trim(collar, outline=True)
        add_ribs(sk, (-70, -40), (70, -40), (-72, 6), (72, 6), 12)
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
        k = add_top(sk, t)
        add_shirt_collar(sk, 54, depth=50, spread=1.3)
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
    k = add_top(sk, t)
    if v == 0:
        add_hood(sk, 70, quilt=70)
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
        k = add_top(sk, t)
        for s in (-1, 1):
            sk.seam(bez((s * (k.S[0] - 10), 8), (s * (k.S[0] - 10 + (k.A[0] - k.S[0]) * 0.1), k.A[1] - 20),
                        (s * (k.A[0] - 12), k.A[1] - 4), 10))
    else:
        t = Top(neck_w=56, neck_back=12, neck_front=40, shoulder=(150 * W, 16), armpit=(178 * W, 250),
                waist=(166 * W, 440), hem=(172 * W, 560 * L), sleeve_len=0, hem_curve=30, inner_neck=False,
                hem_stitch=False)
        k = add_top(sk, t)
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
        add_top(sk, t)
    else:
        long = v == 2
        t = Top(neck_w=58, neck_back=14, neck_front=100 if long else 70, v_neck=long,
                shoulder=(150 * W, 24), armpit=(160 * W, 210), waist=(138 * W, waist_y - 20), hem=(140 * W, waist_y),
                hem_curve=0, sleeve_angle=78 if long else 42, sleeve_len=(520 if long else 140) * S,
                cuff_w=70 if long else 90, cuff_band=36 if long else 0, hem_stitch=False)
        add_top(sk, t)
    sk.seam([(-140, waist_y), (140, waist_y)])
    length = (1.0 if v == 2 else 0.55) * L
    hem_y = waist_y + 700 * length
    sk.dy = waist_y - 4
    add_skirt(sk, waist=140 * W, hip=(170 * W, 140), hem_y=hem_y - waist_y, band=0, hem_curve=30,
           hem_w=(200 if v == 3 else 300) * W * F * (1.0 + 0.25 * (v == 2)), waves=14 if v in (1, 2) else 0,
           folds=3.5)
    sk.dy = 0
    if v in (0, 1):
        sk.zip(0, 60, waist_y + 160, "back")
    if v == 2:
        add_belt(sk, waist_y - 22, 140 * W, 34, buckle=False, side="both", ties=True)


def _c_half_skirt(sk: Sketch, g: Geometry):
    v = g.variant % 4  # A-line, pencil, pleated, circle midi
    W, L, F = g.width, g.length, g.flare
    if v == 0:
        add_skirt(sk, waist=136 * W, hip=(166 * W, 180), hem_y=620 * L, hem_w=250 * W * F)
        if g.detail > 0.5:
            for i in range(5):
                sk.button(0, 70 + i * 110 * L, 9)
            sk.seam([(12, 36), (14, 640 * L)], "front")
    elif v == 1:
        add_skirt(sk, waist=132 * W, hip=(170 * W, 200), hem_y=660 * L, hem_w=150 * W, folds=1.5)
        sk.seam([(0, 36), (0, 660 * L - 150)], "back")
        sk.inner([(-10, 660 * L + 20), (0, 660 * L - 150), (10, 660 * L + 20)], "back", deep=True)
        sk.zip(0, 40, 240, "back")
        for s in (-1, 1):
            sk.crease([(s * 70, 36), (s * 80, 200)], "both")
    elif v == 2:
        add_skirt(sk, waist=136 * W, hip=(172 * W, 160), hem_y=640 * L, hem_w=270 * W * F, pleats=16)
    else:
        add_skirt(sk, waist=130 * W, hip=(180 * W, 130), hem_y=820 * L, hem_w=380 * W * F, waves=20, folds=4.5)


def _c_pants(sk: Sketch, g: Geometry):
    v = g.variant % 3  # trousers, wide leg, joggers
    W, L, F = g.width, g.length, g.flare
    if v == 0:
        add_pants(sk, waist=150 * W, hip=168 * W, hem_y=1000 * L, hem_out=150 * W * F, leg_w=104 * F)
    elif v == 1:
        add_pants(sk, waist=146 * W, hip=172 * W, rise=320, hem_y=1020 * L, hem_out=200 * W * F, leg_w=176 * F)
    else:
        add_pants(sk, waist=150 * W, hip=176 * W, rise=310, hem_y=990 * L, hem_out=132 * W, leg_w=84, band=54,
               style="joggers", cuff=70)


def _c_jeans(sk: Sketch, g: Geometry):
    v = g.variant % 3  # straight, skinny, flare
    W, L, F = g.width, g.length, g.flare
    hem_out, leg_w = {0: (146, 100), 1: (116, 68), 2: (176, 136)}[v]
    add_pants(sk, waist=148 * W, hip=166 * W, hem_y=1010 * L, hem_out=hem_out * W * (F if v == 2 else 1),
           leg_w=leg_w * (F if v == 2 else 1), style="jeans")


def _c_shorts(sk: Sketch, g: Geometry):
    v = g.variant % 3  # chino with turn-ups, athletic, denim
    W, L, F = g.width, g.length, g.flare
    if v == 0:
        add_pants(sk, waist=148 * W, hip=168 * W, hem_y=470 * L, hem_out=174 * W * F, leg_w=116 * F, cuff=44,
               style="shorts")
    elif v == 1:
        hem_out = 184 * W * F
        add_pants(sk, waist=150 * W, hip=174 * W, rise=300, hem_y=480 * L, hem_out=hem_out, leg_w=132 * F, band=50,
               style="joggers")
        for s in (-1, 1):
            sk.inner([(s * hem_out, 480 * L + 1), (s * (hem_out - 10), 420 * L), (s * (hem_out - 22), 480 * L + 1)])
    else:
        add_pants(sk, waist=148 * W, hip=166 * W, hem_y=450 * L, hem_out=170 * W * F, leg_w=116 * F, style="jeans")


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
        add_ribs(sk, (-189 * W, 230 * L), (189 * W, 230 * L), (-190 * W, 350 * L), (190 * W, 350 * L), 24)
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
        add_skirt(sk, waist=176 * W, hip=(200 * W, 200), hem_y=hem_y - 320, hem_w=320 * W * F, band=0, pleats=12,
               hem_curve=20)
        sk.dy = 0
        sk.over()
    t = Top(neck_w=56, neck_back=14, neck_front=20, shoulder=(156 * W, 26), armpit=(164 * W, 230),
            waist=(176 * W, 460), hem=((176 if v == 0 else 220 * F) * W, 430 if v == 0 else hem_y), hem_curve=12,
            sleeve_len=0, inner_neck=False, hem_stitch=False)
    k = add_top(sk, t)
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
        add_pants(sk, waist=150 * W, hip=172 * W, hem_y=440 * L, hem_out=184 * W * F, leg_w=150 * F, band=50,
               style="joggers")
        sk.dy = 0
        sk.over()
        t = Top(neck_w=60, neck_back=14, neck_front=58, shoulder=(176 * W, 30), armpit=(182 * W, 234),
                waist=(174 * W, 400), hem=(178 * W, 520 * L), sleeve_angle=36, sleeve_len=150 * S, cuff_w=110,
                neck_band=12)
        add_top(sk, t)
    elif v == 1:
        sk.dy = 600
        add_pants(sk, waist=150 * W, hip=176 * W, rise=310, hem_y=960 * L, hem_out=132 * W, leg_w=84, band=54,
               style="joggers", cuff=64)
        for s in (-1, 1):
            sk.trim(thick([(s * 170 * W, 60), (s * 150 * W, 600), (s * 136 * W, 890 * L)], 16))
        sk.dy = 0
        sk.over()
        t = Top(neck_w=58, neck_back=14, neck_front=40, shoulder=(184 * W, 38), armpit=(190 * W, 262),
                waist=(184 * W, 440), hem=(178 * W, 580 * L), sleeve_angle=77, sleeve_len=540 * S, cuff_w=80,
                cuff_band=52, hem_band=56, ribbed=True, inner_neck=False)
        k = add_top(sk, t)
        for s in (-1, 1):
            a, b = offset(k.S, k.perp, 14), offset(k.C1, k.perp, 14)
            sk.trim(thick([(s * a[0], a[1]), (s * b[0], b[1] - 60)], 16))
        sk.fabric([(-70, -60), (70, -60), (72, 8), (-72, 8)], outline=True)
        sk.inner(arc(0, -60, 70, 12, 0, 360, 20), deep=True)
        sk.zip(0, -56, k.H[1] + 4)
    else:
        sk.dy = 420
        add_skirt(sk, waist=140 * W, hip=(178 * W, 180), hem_y=720 * L, hem_w=300 * W * F, waves=16, folds=4)
        sk.dy = 0
        sk.over()
        t = Top(neck_w=66, neck_back=14, neck_front=80, shoulder=(150 * W, 22), armpit=(164 * W, 210),
                waist=(156 * W, 300), hem=(156 * W, 360), sleeve_angle=40, sleeve_len=120 * S, cuff_w=92,
                neck_band=10)
        add_top(sk, t)


def _c_homewear(sk: Sketch, g: Geometry):
    v = g.variant % 3  # pyjamas, robe, lounge set
    W, L, S, F = g.width, g.length, g.sleeve, g.flare
    if v == 1:
        t = Top(neck_w=58, neck_back=14, neck_front=30, shoulder=(190 * W, 38), armpit=(198 * W, 280),
                waist=(190 * W, 480), hem=(214 * W * F, 1080 * L), sleeve_angle=74, sleeve_len=520 * S, cuff_w=118,
                cuff_band=80, trim_bands=True, inner_neck=False, hem_stitch=False)
        k = add_top(sk, t)
        sk.inner([(-60, -6), (60, -6), (0, 420)], "front")
        lapel = [(52, -16)] + spline([(60, -12), (118, 140), (96, 320), (10, 440)], 8) + [(20, 440), (40, 30)]
        sk.trim(lapel, "front", outline=True)
        sk.trim(mirror(lapel), "front", outline=True)
        sk.trim(thick(bez((-70, 0), (0, -30), (70, 0), 8), 40), "back", outline=True)
        sk.seam([(10, 440), (30, k.H[1] + 4)], "front")
        add_belt(sk, 470, k.width_at(470), 36, buckle=False, ties=True)
        for s in (-1, 1):
            sk.seam([(s * 70, 620), (s * 170, 620), (s * 172, 760), (s * 72, 760)], "front", closed=True)
        sk.fold(560, 190, k.H[1], 214 * F, 3, 0.08)
        return
    sk.dy = 620
    add_pants(sk, waist=156 * W, hip=182 * W, rise=320, hem_y=940 * L, hem_out=170 * W * F, leg_w=128 * F, band=56,
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
        k = add_top(sk, t)
        add_lapels(sk, 56, 240, "notch")
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
            a0, a1 = offset(k.C1, k.d, -30), offset(k.C2, k.d, -30)
            sk.mark("piping", [(s * a0[0], a0[1]), (s * a1[0], a1[1])])
    else:
        t = Top(neck_w=62, neck_back=16, neck_front=62, shoulder=(188 * W, 44), armpit=(194 * W, 280),
                waist=(188 * W, 440), hem=(184 * W, 620 * L), sleeve_angle=77, sleeve_len=550 * S, cuff_w=84,
                cuff_band=60, hem_band=60, neck_band=20, ribbed=True)
        add_top(sk, t)


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
