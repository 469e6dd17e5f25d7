"""The loss-curve PNG written next to DKI outputs, drawn with PIL (no matplotlib dependency).

Why: the model card shows how training went, and a reviewer should see it without a notebook. Raw per-step loss is
drawn light, an exponential moving average dark, on a linear axis with min/max and step labels. Pure drawing.
"""

from __future__ import annotations

import math
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont


def smooth(values: list[float], weight: float = 0.9) -> list[float]:
    """Bias-corrected exponential moving average (as TensorBoard's smoothing)."""
    out, avg = [], 0.0
    for i, v in enumerate(values, 1):
        avg = weight * avg + (1 - weight) * v
        out.append(avg / (1 - weight**i))
    return out


def loss_curve(losses: list[float], path: str | Path, *, title: str = "training loss", size=(800, 400),
               first_step: int = 1) -> Path:
    """Draw `losses` (one per optimizer step) to `path` (PNG). Non-finite values are skipped."""
    w, h = size
    left, right, top, bottom = 70, 20, 36, 44
    img = Image.new("RGB", size, "white")
    d = ImageDraw.Draw(img)
    font = ImageFont.load_default()
    d.text((left, 10), title, fill="black", font=font)
    pts = [(i, v) for i, v in enumerate(losses) if math.isfinite(v)]
    pw, ph = w - left - right, h - top - bottom
    d.rectangle([left, top, left + pw, top + ph], outline="#888888")
    if not pts:
        d.text((left + 10, top + 10), "no finite loss values", fill="red", font=font)
    else:
        lo = min(v for _, v in pts)
        hi = max(v for _, v in pts)
        if hi - lo < 1e-12:
            lo, hi = lo - 0.5 * abs(lo or 1.0), hi + 0.5 * abs(hi or 1.0)
        n = max(1, len(losses) - 1)

        def xy(i: float, v: float) -> tuple[float, float]:
            return left + pw * (i / n), top + ph * (1 - (v - lo) / (hi - lo))

        for frac in (0.25, 0.5, 0.75):  # light grid
            y = top + ph * frac
            d.line([(left, y), (left + pw, y)], fill="#eeeeee")
        if len(pts) == 1:
            x, y = xy(0, pts[0][1])
            d.ellipse([x - 3, y - 3, x + 3, y + 3], fill="#1f4e9c")
        else:
            d.line([xy(i, v) for i, v in pts], fill="#a9c4ee", width=1)
            sm = smooth([v for _, v in pts])
            d.line([xy(i, v) for (i, _), v in zip(pts, sm)], fill="#1f4e9c", width=2)
        d.text((4, top - 4), f"{hi:.4g}", fill="black", font=font)
        d.text((4, top + ph - 8), f"{lo:.4g}", fill="black", font=font)
        d.text((left, top + ph + 6), f"step {first_step}", fill="black", font=font)
        last = f"step {first_step + len(losses) - 1}"
        d.text((left + pw - 6 * len(last), top + ph + 6), last, fill="black", font=font)
        d.text((left + pw // 2 - 60, top + ph + 22), "light: per step, dark: smoothed", fill="#555555", font=font)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path, format="PNG")
    return path
