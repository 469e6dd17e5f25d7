"""Procedural fabric textures for the sample release: stripes, checks, dots, florals, knits, denim, prints.

A texture id always gives the same pattern (its parameters come from a hash of the id), at any image size.
Pure numpy; no I/O.
"""

from __future__ import annotations

import functools
import zlib

import numpy as np

KINDS = ("stripes", "checks", "dots", "floral", "knit", "denim", "print")

_PALETTE = np.array(
    [
        (178, 34, 52), (30, 58, 110), (232, 200, 120), (34, 110, 80), (240, 236, 226), (40, 40, 44),
        (196, 120, 160), (120, 160, 200), (210, 105, 50), (95, 75, 130), (150, 170, 90), (250, 215, 200),
        (70, 90, 120), (200, 180, 150), (160, 40, 90), (20, 120, 140),
    ],
    dtype=np.float32,
)


def stable_int(*parts: object) -> int:
    """A process-independent hash (Python's hash() is salted per process)."""
    return zlib.crc32("\x1f".join(map(str, parts)).encode())


def texture_kind(texture_id: str, seed: int) -> str:
    return KINDS[stable_int("kind", seed, texture_id) % len(KINDS)]


@functools.lru_cache(maxsize=4)  # a garment's 4 views are rendered one after another with the same fabric
def make_texture(texture_id: str, width: int, height: int, seed: int = 0) -> np.ndarray:
    """HxWx3 float32 in [0, 255]: the fabric for `texture_id`, scaled to a garment of this image size (read-only)."""
    rng = np.random.default_rng([stable_int("texture", seed, texture_id)])
    kind = texture_kind(texture_id, seed)
    colors = _PALETTE[rng.choice(len(_PALETTE), size=3, replace=False)]
    scale = width / 768.0
    y = np.arange(height, dtype=np.float32)[:, None]  # broadcast, so 1-D patterns cost 1-D work
    x = np.arange(width, dtype=np.float32)[None, :]
    if kind == "stripes":
        period = rng.uniform(14, 48) * scale
        angle = rng.choice([0.0, np.pi / 2, np.pi / 4])
        u = (x * np.cos(angle) + y * np.sin(angle)) / period
        t = (np.mod(u, 1.0) < rng.uniform(0.3, 0.6)).astype(np.float32)
        thin = (np.abs(np.mod(u, 1.0) - 0.8) < 0.05).astype(np.float32)
        img = _mix(colors[0], colors[1], t)
        img = img * (1 - thin[..., None]) + colors[2] * thin[..., None]
    elif kind == "checks":
        period = rng.uniform(30, 80) * scale
        a = (np.mod(x / period, 1.0) < 0.5).astype(np.float32)
        b = (np.mod(y / period, 1.0) < 0.5).astype(np.float32)
        fine = (np.mod(x / (period / 6), 1.0) < 0.15) | (np.mod(y / (period / 6), 1.0) < 0.15)
        img = _mix(colors[0], colors[1], 0.5 * (a + b))
        img = img * (1 - 0.25 * fine[..., None])
    elif kind in ("dots", "floral"):
        period = rng.uniform(36, 70) * scale
        gx, gy = np.mod(x, period) - period / 2, np.mod(y + (x // period % 2) * period / 2, period) - period / 2
        r = np.sqrt(gx**2 + gy**2)
        if kind == "dots":
            t = (r < period * rng.uniform(0.15, 0.3)).astype(np.float32)
            img = _mix(colors[0], colors[1], t)
        else:
            theta = np.arctan2(gy, gx)
            petals = period * (0.22 + 0.12 * np.cos(5 * theta))
            t = (r < petals).astype(np.float32)
            centre = (r < period * 0.07).astype(np.float32)
            img = _mix(colors[0], colors[1], t)
            img = img * (1 - centre[..., None]) + colors[2] * centre[..., None]
    elif kind == "knit":
        period = rng.uniform(8, 14) * scale
        v = np.abs(np.mod(x / period, 1.0) - 0.5) * 2
        w = np.mod(y / (period * 1.4) + v * 0.5, 1.0)
        t = 0.55 + 0.45 * np.cos(w * 2 * np.pi)
        img = colors[0] * (0.65 + 0.35 * t[..., None])
    elif kind == "denim":
        base = np.array([58, 82, 130], np.float32) * rng.uniform(0.8, 1.2)
        twill = 0.5 + 0.5 * np.sin((x + y) * 2 * np.pi / (5 * scale + 1))
        noise = rng.standard_normal(size=(height, width), dtype=np.float32)
        img = base * (0.8 + 0.12 * twill[..., None] + 0.06 * noise[..., None])
        img += 45 * (rng.random((height, 1)).astype(np.float32) > 0.97)[..., None]  # weft slubs
    else:  # print: scattered geometric motifs
        img = np.broadcast_to(colors[0], (height, width, 3)).copy()
        period = rng.uniform(60, 120) * scale
        cx = np.mod(x, period) - period / 2
        cy = np.mod(y, period) - period / 2
        tri = (cy > -period * 0.25) & (cy < period * 0.25) & (np.abs(cx) < (period * 0.25 - cy) * 0.8)
        ring = np.abs(np.sqrt((cx - period / 2) ** 2 + (cy - period / 2) ** 2) - period * 0.18) < period * 0.04
        img[tri] = colors[1]
        img[ring] = colors[2]
    img = np.clip(np.broadcast_to(img, (height, width, 3)), 0, 255).astype(np.float32)
    img.setflags(write=False)
    return img


def _mix(a: np.ndarray, b: np.ndarray, t: np.ndarray) -> np.ndarray:
    t = t[..., None]
    return a * (1 - t) + b * t
