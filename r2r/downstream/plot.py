"""The figures of a downstream comparison, drawn with PIL as r2r/dki/plot.py draws the loss curve (matplotlib is not
a dependency): a grouped bar chart of the variants on every test set, and per variant its confusion matrices.

Pure drawing from the numbers in results.json; nothing here computes a score.
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from synfashion.taxonomy import CATEGORIES

# Colour-blind-safe qualitative palette (Okabe & Ito), one colour per variant.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000")


def _font(size: int = 12):
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1: the fixed bitmap font
        return ImageFont.load_default()


def _text_width(d: ImageDraw.ImageDraw, text: str, font) -> int:
    box = d.textbbox((0, 0), text, font=font)
    return box[2] - box[0]


def bar_chart(results: dict, path: str | Path, *, chance: float = 1 / len(CATEGORIES)) -> Path:
    """Top-1 accuracy and macro-F1 of every variant (bars) on every test set (groups); chance level dashed."""
    variants = list(results["variants"])
    tests = list(results["test_sets"])
    font, small = _font(13), _font(11)
    group_w = max(120, 34 * len(variants) + 40)
    left, right, top, panel_h, gap = 60, 20, 40, 230, 60
    w = left + right + group_w * max(1, len(tests))
    legend_h = 24 * ((len(variants) + 3) // 4)
    h = top + 2 * panel_h + gap + 50 + legend_h
    img = Image.new("RGB", (max(w, 480), h), "white")
    d = ImageDraw.Draw(img)
    d.text((left, 10), "Train on each variant, test on each set", fill="black", font=font)
    for p, (metric, title) in enumerate((("top1", "top-1 accuracy"), ("macro_f1", "macro-F1"))):
        y0 = top + p * (panel_h + gap) + 18
        ph = panel_h - 18
        d.text((left, y0 - 18), title, fill="black", font=small)
        d.rectangle([left, y0, left + group_w * len(tests), y0 + ph], outline="#888888")
        for frac in (0.25, 0.5, 0.75, 1.0):
            y = y0 + ph * (1 - frac)
            d.line([(left, y), (left + group_w * len(tests), y)], fill="#e6e6e6")
            d.text((left - 34, y - 6), f"{frac:.2f}", fill="#555555", font=small)
        d.text((left - 34, y0 + ph - 6), "0.00", fill="#555555", font=small)
        if metric == "top1":
            y = y0 + ph * (1 - chance)
            for x in range(left, left + group_w * len(tests), 10):
                d.line([(x, y), (min(x + 5, left + group_w * len(tests)), y)], fill="#cc0000")
            d.text((left + group_w * len(tests) - 60, y - 14), "chance", fill="#cc0000", font=small)
        for g, test in enumerate(tests):
            gx = left + g * group_w + 20
            bw = (group_w - 40) / max(1, len(variants))
            for v, name in enumerate(variants):
                score = results["variants"][name]["scores"].get(test)
                x0 = gx + v * bw
                if score is None:
                    d.text((x0 + 2, y0 + ph - 14), "n/a", fill="#888888", font=small)
                    continue
                value = float(score[metric])
                d.rectangle([x0 + 2, y0 + ph * (1 - value), x0 + bw - 2, y0 + ph], fill=PALETTE[v % len(PALETTE)])
                label = f"{value:.2f}"
                d.text((x0 + bw / 2 - _text_width(d, label, small) / 2, y0 + ph * (1 - value) - 14), label,
                       fill="black", font=small)
            name = test if len(test) < 28 else test[:25] + "..."
            d.text((gx + (group_w - 40) / 2 - _text_width(d, name, small) / 2, y0 + ph + 4), name,
                   fill="black", font=small)
    ly = top + 2 * panel_h + gap + 30
    for v, name in enumerate(variants):
        x, y = left + (v % 4) * 180, ly + 24 * (v // 4)
        d.rectangle([x, y, x + 14, y + 14], fill=PALETTE[v % len(PALETTE)])
        d.text((x + 20, y), name, fill="black", font=font)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path, format="PNG")
    return path


def _blend(v: float) -> tuple[int, int, int]:
    """0 -> white, 1 -> dark blue."""
    lo, hi = (255, 255, 255), (8, 48, 107)
    return tuple(round(a + (b - a) * v) for a, b in zip(lo, hi))


def confusion_figure(variant: str, scores: dict[str, dict], path: str | Path) -> Path:
    """One panel per test set: rows are the true categories, columns the predicted ones, shaded by the row's share
    (so categories of different sizes read alike), counts written in the cells."""
    n, cell = len(CATEGORIES), 22
    font, small = _font(12), _font(10)
    probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    label_w = max(_text_width(probe, f"{c} {i:2d}", small) for i, c in enumerate(CATEGORIES)) + 10
    panel_w, panel_h = n * cell, n * cell
    tests = list(scores)
    w = label_w + len(tests) * (panel_w + 30) + 10
    h = 40 + 20 + panel_h + 40
    img = Image.new("RGB", (w, h), "white")
    d = ImageDraw.Draw(img)
    d.text((10, 8), f"{variant}: confusion matrices (rows: true category, columns: predicted)", fill="black", font=font)
    for i, c in enumerate(CATEGORIES):
        text = f"{c} {i:2d}"
        d.text((label_w - 6 - _text_width(d, text, small), 60 + i * cell + 5), text, fill="black", font=small)
    for t, test in enumerate(tests):
        s = scores[test]
        x0, y0 = label_w + t * (panel_w + 30), 60
        d.text((x0, 36), f"{test}: top-1 {s['top1']:.3f}, macro-F1 {s['macro_f1']:.3f}, {s['images']} images",
               fill="black", font=small)
        cm = s["confusion"]
        for r in range(n):
            total = sum(cm[r])
            for c in range(n):
                box = [x0 + c * cell, y0 + r * cell, x0 + (c + 1) * cell - 1, y0 + (r + 1) * cell - 1]
                if total == 0:
                    d.rectangle(box, fill="#f2f2f2")
                    continue
                share = cm[r][c] / total
                d.rectangle(box, fill=_blend(share))
                if cm[r][c]:
                    text = str(cm[r][c])
                    d.text((box[0] + cell / 2 - _text_width(d, text, small) / 2, box[1] + 5), text,
                           fill="white" if share > 0.5 else "black", font=small)
        for c in range(n):
            text = str(c)
            d.text((x0 + c * cell + cell / 2 - _text_width(d, text, small) / 2, y0 + panel_h + 4), text,
                   fill="black", font=small)
        d.rectangle([x0 - 1, y0 - 1, x0 + panel_w, y0 + panel_h], outline="#888888")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path, format="PNG")
    return path
