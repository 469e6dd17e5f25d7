"""Procedural fabrics for the sample release: stripes, plaid, checks, dots, florals, knits, denim, camo, prints.

A texture id always gives the same fabric (kind, colours and parameters come from a hash of (seed, id)), at any
image size: each fabric is one seamless square tile (every period divides the tile), tiled over the image by the
renderer. Tiles are cached per process, so a texture shared by several projects is computed once. Pure numpy; no
I/O, no drawing of garments.
"""

from __future__ import annotations

import functools
import zlib
from dataclasses import dataclass

import numpy as np

# kind -> relative frequency in the texture pool
KIND_WEIGHTS: dict[str, float] = {
    "stripes": 2.0, "plaid": 1.6, "checks": 1.0, "dots": 1.3, "floral": 2.0, "knit": 1.4, "denim": 1.4,
    "camo": 0.6, "print": 1.6, "herringbone": 0.8, "solid": 0.8,
}
KINDS: tuple[str, ...] = tuple(KIND_WEIGHTS)

# Harmonious fashion palettes: (ground, main, accent, light)
PALETTES: tuple[tuple[tuple[int, int, int], ...], ...] = (
    ((28, 42, 74), (238, 236, 230), (178, 34, 52), (230, 214, 180)),  # navy / white / red
    ((85, 92, 52), (189, 170, 120), (110, 78, 50), (236, 226, 200)),  # olive / khaki
    ((232, 180, 180), (246, 238, 226), (120, 150, 115), (200, 96, 112)),  # blush / sage
    ((34, 34, 36), (238, 238, 234), (130, 130, 134), (196, 36, 44)),  # black / white
    ((112, 28, 44), (212, 170, 80), (240, 230, 205), (34, 80, 56)),  # burgundy / gold
    ((214, 164, 56), (28, 110, 120), (176, 84, 44), (242, 232, 208)),  # mustard / teal / rust
    ((140, 180, 220), (246, 248, 250), (32, 52, 100), (240, 200, 80)),  # sky / navy
    ((186, 170, 214), (248, 246, 250), (100, 60, 110), (150, 210, 190)),  # lavender / plum
    ((190, 146, 96), (84, 54, 36), (240, 232, 214), (36, 30, 28)),  # camel / chocolate
    ((20, 110, 80), (240, 240, 232), (220, 180, 80), (24, 28, 26)),  # emerald / gold
    ((238, 120, 100), (250, 240, 226), (60, 170, 175), (36, 50, 90)),  # coral / turquoise
    ((62, 64, 70), (186, 186, 190), (110, 130, 160), (236, 236, 236)),  # charcoal / grey
    ((170, 30, 36), (28, 24, 26), (225, 80, 70), (240, 230, 220)),  # red / black
    ((246, 226, 140), (252, 250, 244), (150, 190, 225), (236, 150, 175)),  # butter / sky / pink
)
_GREENS = np.array([(70, 120, 70), (96, 140, 84), (52, 96, 72)], np.float32)


def stable_int(*parts: object) -> int:
    """A process-independent hash (Python's hash() is salted per process)."""
    return zlib.crc32("\x1f".join(map(str, parts)).encode())


def texture_kind(texture_id: str, seed: int) -> str:
    weights = np.array(list(KIND_WEIGHTS.values()))
    u = (stable_int("kind", seed, texture_id) % 100_003) / 100_003
    return KINDS[int(np.searchsorted(np.cumsum(weights) / weights.sum(), u, side="right"))]


@dataclass(frozen=True)
class Fabric:
    kind: str
    tile: np.ndarray  # T x T x 3 uint8, seamless (read-only)
    trim: tuple[int, int, int]  # a colour that goes with it (bands, piping, sashes)


def tile_size(width: int) -> int:
    """Tile side in pixels: a third of the image width (256 px at 768), a multiple of 8, at least 16."""
    return max(16, 8 * round(width / 24))


@functools.lru_cache(maxsize=64)
def make_fabric(texture_id: str, width: int, seed: int = 0) -> Fabric:
    """The fabric of `texture_id`, its tile scaled to an image `width` pixels wide."""
    rng = np.random.default_rng([stable_int("texture", seed, texture_id)])
    kind = texture_kind(texture_id, seed)
    T = tile_size(width)
    palette = np.array(PALETTES[int(rng.integers(len(PALETTES)))], np.float32)
    palette = palette[rng.permutation(4)] if rng.random() < 0.5 else palette
    palette = np.clip(palette * rng.uniform(0.93, 1.07, size=(1, 3)), 0, 255)  # small per-texture tint
    y, x = np.mgrid[0:T, 0:T].astype(np.float32)
    img = _KIND_FN[kind](rng, T, x, y, palette)
    img = img * _weave(rng, T, x, y, kind)[..., None]
    tile = np.clip(img + 0.5, 0, 255).astype(np.uint8)
    tile.setflags(write=False)
    trim = palette[int(np.argmax(np.abs(palette - palette.mean(0)).sum(1)))]  # the most contrasting colour
    return Fabric(kind, tile, tuple(int(c) for c in trim))


# ------------------------------------------------------------------------------------------------ helpers


def _n(T: int, period_at_768: float) -> int:
    """Repeats per tile for a period given in pixels at 768 px width (tiles are 256 px there)."""
    return max(1, round(256 / period_at_768))


def _frac(a: np.ndarray) -> np.ndarray:
    return a - np.floor(a)


def _smooth_noise(rng: np.random.Generator, T: int, cycles: float, octaves: int = 1) -> np.ndarray:
    """Seamless smooth noise in ~[-1, 1]: random spectrum limited to ~`cycles` per tile, inverse FFT."""
    f = np.fft.fftfreq(T) * T
    r = np.hypot(f[:, None], f[None, :])
    spec = np.zeros((T, T))
    for o in range(octaves):
        c = cycles * 2**o
        spec += np.exp(-((r / c) ** 2)) * 0.5**o
    spec[0, 0] = 0
    phase = rng.uniform(0, 2 * np.pi, (T, T))
    field = np.fft.ifft2(spec * np.exp(1j * phase)).real
    return (field / (np.abs(field).max() + 1e-9)).astype(np.float32)


def _mix(a: np.ndarray, b: np.ndarray, t: np.ndarray) -> np.ndarray:
    t = t[..., None]
    return a * (1 - t) + b * t


def _aa(d: np.ndarray) -> np.ndarray:
    """Signed distance in pixels (positive inside) -> anti-aliased coverage."""
    return np.clip(d + 0.5, 0, 1)


def _weave(rng, T, x, y, kind) -> np.ndarray:
    """Fine thread structure and a little irregularity, as a brightness multiplier."""
    noise = rng.standard_normal((T, T), dtype=np.float32)
    if kind in ("knit", "denim"):
        return 1.0 + 0.03 * noise
    n = max(1, T // 3)
    s = np.sin(2 * np.pi * n * x[0] / T)
    return 1.0 + 0.035 * s[:, None] * s[None, :] + 0.025 * noise


# ------------------------------------------------------------------------------------------------- kinds


def _stripes(rng, T, x, y, pal):
    style = rng.choice(["even", "breton", "multi", "pin"])
    n = _n(T, rng.uniform(18, 60) if style != "pin" else rng.uniform(14, 26))
    orient = rng.choice(["h", "h", "v", "d"])
    u = {"h": y, "v": x, "d": x + y}[orient] * n / T
    if style == "even":
        bounds, cols = [0.5], [pal[0], pal[1]]
    elif style == "breton":
        bounds, cols = [rng.uniform(0.6, 0.72)], [pal[3] if pal[3].mean() > 150 else pal[1], pal[0]]
    elif style == "pin":
        bounds, cols = [0.9], [pal[0], pal[1]]
    else:
        a, b = sorted(rng.uniform(0.2, 0.8, 2))
        bounds, cols = [a, b, min(0.95, b + 0.08)], [pal[0], pal[1], pal[2], pal[1]]
    idx = np.searchsorted(np.array(bounds), _frac(u), side="right")
    return np.stack(cols)[idx]


def _plaid(rng, T, x, y, pal):
    """Tartan: a sett of coloured bands in warp and weft, interlaced by a 2/2 twill."""
    n = _n(T, rng.uniform(90, 180))
    widths = rng.uniform(0.5, 3.0, size=int(rng.integers(4, 7)))
    colors = [pal[int(i)] for i in rng.integers(0, 4, size=len(widths))]
    colors[0] = pal[0]
    bounds = np.cumsum(widths) / widths.sum()

    def sett(u):
        return np.stack(colors)[np.minimum(np.searchsorted(bounds, _frac(u), side="right"), len(colors) - 1)]

    warp, weft = sett(x[0] * n / T)[None, :, :], sett(y[:, 0] * n / T)[:, None, :]
    twill = (np.mod(x + y, 4) < 2).astype(np.float32)[..., None]
    return 0.5 * (warp + weft) + 0.18 * (warp - weft) * (2 * twill - 1)


def _checks(rng, T, x, y, pal):
    n = _n(T, rng.uniform(16, 70))
    light = pal[int(np.argmax(pal.mean(1)))]
    dark = pal[int(rng.choice([i for i in range(4) if pal[i].mean() < 200] or [0]))]
    if rng.random() < 0.25:  # windowpane
        line = (_frac(x * n / T) < 0.08) | (_frac(y * n / T) < 0.08)
        return _mix(np.broadcast_to(dark, (T, T, 3)), light, line.astype(np.float32))
    a = (_frac(x * n / T) < 0.5).astype(np.float32)
    b = (_frac(y * n / T) < 0.5).astype(np.float32)
    return _mix(np.broadcast_to(light, (T, T, 3)), dark, 0.5 * (a + b) + 0.0 * x)


def _dots(rng, T, x, y, pal):
    n = 2 * max(1, _n(T, rng.uniform(30, 80)) // 2)  # even, so offset rows tile
    cell = T / n
    row = np.floor(y / cell)
    gx = _frac(x / cell + 0.5 * np.mod(row, 2)) - 0.5
    gy = _frac(y / cell) - 0.5
    d = np.hypot(gx, gy) * cell
    r = cell * rng.uniform(0.14, 0.3)
    out = _mix(np.broadcast_to(pal[0], (T, T, 3)), pal[1], _aa(r - d))
    if rng.random() < 0.4:  # two-colour dots
        alt = np.mod(np.floor(x / cell + 0.5 * np.mod(row, 2)) + row, 3) == 0
        out = np.where(alt[..., None], _mix(np.broadcast_to(pal[0], (T, T, 3)), pal[2], _aa(r - d)), out)
    return out


def _stamp(img, T, cx, cy, rad, fn):
    """Blend fn(dx, dy) -> (alpha, rgb) into a window of `img` around (cx, cy), wrapping at the tile edges."""
    r = int(np.ceil(rad)) + 1
    xs = np.arange(int(cx) - r, int(cx) + r + 1)
    ys = np.arange(int(cy) - r, int(cy) + r + 1)
    dx = (xs - cx).astype(np.float32)[None, :]
    dy = (ys - cy).astype(np.float32)[:, None]
    alpha, rgb = fn(dx, dy)
    ix = np.ix_(np.mod(ys, T), np.mod(xs, T))
    a = np.broadcast_to(alpha, (len(ys), len(xs)))[..., None]
    img[ix] = img[ix] * (1 - a) + rgb * a


def _floral(rng, T, x, y, pal):
    img = np.broadcast_to(pal[0], (T, T, 3)).copy()
    k = int(rng.integers(3, 6))
    cell = T / k
    petal_cols = [pal[1], pal[2], pal[3]]
    centre_col = np.array((236, 196, 70), np.float32) if rng.random() < 0.6 else pal[0] * 0.6
    for i in range(k):
        for j in range(k):
            cx = (i + 0.5 + rng.uniform(-0.3, 0.3)) * cell
            cy = (j + 0.5 + rng.uniform(-0.3, 0.3)) * cell
            R = cell * rng.uniform(0.26, 0.38)
            petals = int(rng.choice([5, 5, 6, 8]))
            rot = rng.uniform(0, 2 * np.pi)
            col = petal_cols[int(rng.integers(3))]
            for _ in range(2):  # leaves
                a = rng.uniform(0, 2 * np.pi)
                lx, ly = cx + np.cos(a) * R * 1.05, cy + np.sin(a) * R * 1.05
                green = _GREENS[int(rng.integers(3))]

                def leaf(dx, dy, a=a, green=green):
                    u = dx * np.cos(a) + dy * np.sin(a)
                    v = -dx * np.sin(a) + dy * np.cos(a)
                    e = (u / (R * 0.75)) ** 2 + (v / (R * 0.32)) ** 2
                    return _aa((1 - e) * R * 0.3), green * (0.85 + 0.15 * np.tanh(v / R * 4))[..., None]

                _stamp(img, T, lx, ly, R, leaf)

            def flower(dx, dy, R=R, petals=petals, rot=rot, col=col):
                r = np.hypot(dx, dy)
                th = np.arctan2(dy, dx) - rot
                edge = R * (0.5 + 0.5 * np.abs(np.cos(petals / 2 * th)))
                shade = (0.72 + 0.28 * np.clip(r / R, 0, 1))[..., None]
                rgb = col * shade
                centre = _aa(R * 0.2 - r)[..., None]
                return _aa(edge - r), rgb * (1 - centre) + centre_col * centre

            _stamp(img, T, cx, cy, R * 1.05, flower)
    return img


def _knit(rng, T, x, y, pal):
    """Stockinette V stitches, optionally with a Fair Isle motif or knitted stripes."""
    nc = 8 * max(1, _n(T, rng.uniform(7, 11)) // 8)
    nr = 8 * max(1, round(nc * 1.25 / 8))
    cu = _frac(x * nc / T) - 0.5
    rv = _frac(y * nr / T + np.abs(cu) * 0.9)
    stitch = 0.62 + 0.38 * np.sin(np.pi * rv) ** 0.7 * (1 - 0.5 * (2 * np.abs(cu)) ** 6)
    ci = np.floor(x * nc / T).astype(int)
    ri = np.floor(y * nr / T + np.abs(cu) * 0.9).astype(int)
    base = np.broadcast_to(pal[0], (T, T, 3))
    style = rng.choice(["plain", "plain", "fairisle", "stripes"])
    if style == "fairisle":
        band = np.mod(ri, nr // 2 if nr >= 16 else nr) < 7
        motif = (np.abs(np.mod(ci, 8) - 4) + np.abs(np.mod(ri, 8) - 4)) == 3
        dot = (np.mod(ci, 4) == 0) & (np.mod(ri, 4) == 0)
        col = np.where((band & motif)[..., None], pal[1], np.where((~band & dot)[..., None], pal[2], base))
    elif style == "stripes":
        col = np.where((np.mod(ri, 8) < 3)[..., None], pal[1], base)
    else:
        col = base
    return col * stitch[..., None]


def _denim(rng, T, x, y, pal):
    washes = [(38, 58, 104), (62, 92, 140), (104, 134, 176), (46, 48, 54), (140, 156, 184)]
    base = np.array(washes[int(rng.integers(len(washes)))], np.float32)
    n = max(1, T // 4)
    twill = 0.5 + 0.5 * np.sin(2 * np.pi * n * (x + y) / T)
    blocks = max(1, T // 16)
    slub = np.repeat(rng.standard_normal((T, blocks)).astype(np.float32), -(-T // blocks), axis=1)[:, :T]
    slub = (slub + np.roll(slub, 8, axis=1)) * 0.5
    fade = _smooth_noise(rng, T, 2.0)
    weft = (rng.random((T, T)) > 0.9).astype(np.float32)
    v = 0.86 + 0.1 * twill + 0.05 * slub + 0.08 * fade
    out = base * v[..., None]
    return _mix(out, np.array((225, 228, 235), np.float32), 0.22 * weft)


def _camo(rng, T, x, y, pal):
    schemes = [
        [(85, 92, 52), (120, 100, 70), (40, 40, 34), (160, 150, 110)],
        [(196, 176, 140), (150, 120, 86), (110, 90, 70), (222, 206, 176)],
        [(120, 124, 130), (60, 62, 66), (180, 182, 186), (30, 30, 32)],
        [(236, 170, 186), (196, 110, 140), (250, 214, 222), (150, 70, 100)],
    ]
    cols = np.array(schemes[int(rng.integers(len(schemes)))], np.float32)
    a = _smooth_noise(rng, T, 3.0, octaves=2)
    b = _smooth_noise(rng, T, 4.0, octaves=2)
    idx = (a > 0.1).astype(int) + (b > 0.25).astype(int) * 2
    return cols[np.minimum(idx, 3)]


def _print(rng, T, x, y, pal):
    style = rng.choice(["leopard", "geometric", "scatter"])
    if style == "leopard":
        base = np.array((206, 160, 98), np.float32) * rng.uniform(0.9, 1.08)
        nz = _smooth_noise(rng, T, 9.0)
        ring = np.abs(nz - 0.35) < 0.09
        inner = nz > 0.44
        out = np.broadcast_to(base, (T, T, 3)).copy()
        out[inner] = base * 0.72
        out[ring] = (40, 30, 24)
        return out
    if style == "geometric":
        n = _n(T, rng.uniform(50, 110))
        gx, gy = _frac(x * n / T) - 0.5, _frac(y * n / T) - 0.5
        cell = T / n
        diamond = (np.abs(gx) + np.abs(gy)) * cell
        out = _mix(np.broadcast_to(pal[0], (T, T, 3)), pal[1], _aa(cell * 0.36 - diamond))
        out = _mix(out, pal[2], _aa(cell * 0.2 - diamond))
        corner = np.hypot(np.abs(gx) - 0.5, np.abs(gy) - 0.5) * cell
        return _mix(out, pal[3], _aa(cell * 0.08 - corner))
    img = np.broadcast_to(pal[0], (T, T, 3)).copy()
    k = int(rng.integers(5, 8))
    for i in range(k * k):
        cx, cy = rng.uniform(0, T, 2)
        R = T / k * rng.uniform(0.22, 0.36)
        col = pal[int(rng.integers(1, 4))]
        shape = int(rng.integers(3))
        rot = rng.uniform(0, 2 * np.pi)

        def motif(dx, dy, R=R, col=col, shape=shape, rot=rot):
            if shape == 0:  # ring
                d = R * 0.22 - np.abs(np.hypot(dx, dy) - R * 0.7)
            elif shape == 1:  # five-point star
                th = np.arctan2(dy, dx) - rot
                d = R * (0.55 + 0.45 * np.cos(5 * th)) ** 1.5 - np.hypot(dx, dy)
            else:  # triangle
                u = dx * np.cos(rot) + dy * np.sin(rot)
                v = -dx * np.sin(rot) + dy * np.cos(rot)
                d = np.minimum(np.minimum(R * 0.5 - u, 0.866 * v + 0.5 * u + R * 0.25), -0.866 * v + 0.5 * u + R * 0.25)
            return _aa(d), np.broadcast_to(col, d.shape + (3,))

        _stamp(img, T, cx, cy, R, motif)
    return img


def _herringbone(rng, T, x, y, pal):
    nb = 2 * max(1, _n(T, rng.uniform(10, 20)) // 2)
    nt = _n(T, rng.uniform(5, 8))
    sign = np.where(np.mod(np.floor(x * nb / T), 2) == 0, 1.0, -1.0)
    t = (_frac(nt * (y + sign * x) / T) < 0.5).astype(np.float32)
    dark = pal[0]
    light = pal[0] * 0.6 + pal[3] * 0.4
    return _mix(np.broadcast_to(dark, (T, T, 3)), light, t)


def _solid(rng, T, x, y, pal):
    base = pal[int(rng.integers(4))]
    heather = _smooth_noise(rng, T, 24.0)
    return base * (0.95 + 0.06 * heather)[..., None] + 0.0 * x[..., None]


_KIND_FN = {
    "stripes": _stripes, "plaid": _plaid, "checks": _checks, "dots": _dots, "floral": _floral, "knit": _knit,
    "denim": _denim, "camo": _camo, "print": _print, "herringbone": _herringbone, "solid": _solid,
}
assert set(_KIND_FN) == set(KINDS)
