"""`r2r report`: a side-by-side picture of a translation run, rendered input next to translated output.

Writes `OUTPUT/report.html` (every pair, with the run's settings and model identity from `r2r_run.json`) and
`OUTPUT/report.png` (a grid of the first pairs). Reads images, writes only those two files; no torch.
"""

from __future__ import annotations

import argparse
import html
import json
import os
from pathlib import Path

from PIL import Image, ImageOps

from synfashion.atomic import atomic_path, write_bytes_atomic

_IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp"}


def pairs(input_dir: Path, output_dir: Path) -> list[tuple[Path, Path]]:
    """(rendered, translated) for every translated PNG whose source is still under input_dir."""
    found = []
    for out in sorted(output_dir.rglob("*.png")):
        rel = out.relative_to(output_dir)
        if rel.name.startswith("report"):
            continue
        for suffix in sorted(_IMAGE_SUFFIXES):
            src = (input_dir / rel).with_suffix(suffix)
            if src.is_file():
                found.append((src, out))
                break
    return found


def grid(found: list[tuple[Path, Path]], *, columns: int = 4, thumb: int = 192) -> Image.Image:
    """Pairs laid out left (rendered) / right (translated), `columns` pairs per row."""
    h = int(thumb * 4 / 3)
    rows = max(1, -(-len(found) // columns))
    sheet = Image.new("RGB", (columns * 2 * thumb, rows * h), "white")
    for i, (src, out) in enumerate(found):
        r, c = divmod(i, columns)
        for j, path in enumerate((src, out)):
            with Image.open(path) as im:
                im = ImageOps.exif_transpose(im).convert("RGB")
                im.thumbnail((thumb, h))
                sheet.paste(im, ((2 * c + j) * thumb, r * h))
    return sheet


def write_report(input_dir: str | Path, output_dir: str | Path, *, max_grid: int = 16) -> tuple[Path, Path]:
    input_dir, output_dir = Path(input_dir), Path(output_dir)
    found = pairs(input_dir, output_dir)
    if not found:
        raise FileNotFoundError(f"no translated PNG in {output_dir} has a source image in {input_dir}")
    run_file = output_dir / "r2r_run.json"
    run = json.loads(run_file.read_text()) if run_file.is_file() else {}
    png = output_dir / "report.png"
    with atomic_path(png) as tmp:
        grid(found[:max_grid]).save(tmp, format="PNG")
    rows = "\n".join(
        f'<tr><td>{html.escape(out.relative_to(output_dir).as_posix())}</td>'
        f'<td><img src="{html.escape(os.path.relpath(src, output_dir))}"></td>'
        f'<td><img src="{html.escape(out.relative_to(output_dir).as_posix())}"></td></tr>'
        for src, out in found
    )
    page = f"""<!doctype html><meta charset="utf-8"><title>r2r translation report</title>
<style>body{{font-family:sans-serif}} img{{height:256px}} td{{vertical-align:top;padding:4px}}
pre{{background:#f4f4f4;padding:8px}}</style>
<h1>Rendered-to-real translation: {len(found)} image(s)</h1>
<p>Left: rendered input. Right: translated output (lossless PNG).</p>
<h2>Run</h2><pre>{html.escape(json.dumps(run, indent=2, sort_keys=True))}</pre>
<table><tr><th>file</th><th>rendered</th><th>translated</th></tr>
{rows}
</table>
"""
    page_path = output_dir / "report.html"
    write_bytes_atomic(page_path, page.encode())
    return page_path, png


def _cmd(args: argparse.Namespace) -> int:
    page, png = write_report(args.input, args.output)
    print(f"report: {page} and {png}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("report", help="HTML page + PNG grid of rendered inputs next to translated outputs")
    p.add_argument("--input", required=True, help="the folder given to translate-images --input")
    p.add_argument("--output", required=True, help="the folder given to translate-images --output")
    p.set_defaults(func=_cmd)
