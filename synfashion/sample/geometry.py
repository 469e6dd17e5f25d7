"""Point geometry in design units for the garment sketches: Bezier curves, ellipse arcs, Catmull-Rom splines,
mirroring about the centre line, symmetric outlines from a right half, ribbons around a polyline, scalloped edges.

Every helper takes and returns plain (x, y) points (`Pt`, x = 0 on the garment's centre line, y downwards). Pure
numpy arithmetic: no garment shapes, no `Sketch`, no pixels.
"""

from __future__ import annotations

import numpy as np

Pt = tuple[float, float]


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


def offset(p: Pt, v: Pt, k: float = 1.0) -> Pt:
    """`p` moved `k` times the vector `v`."""
    return (p[0] + v[0] * k, p[1] + v[1] * k)
