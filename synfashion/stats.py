"""`synfashion stats`: counts per split x category x view as rich tables, and a contact sheet per split.

Reads only the manifest (for counts) and the Parquet shards (for the sheet's thumbnails); writes PNGs.
"""

from __future__ import annotations

import io
from pathlib import Path

import pyarrow.parquet as pq
from PIL import Image, ImageDraw, ImageOps
from rich.console import Console
from rich.table import Table

from .fs.atomic import atomic_path
from .manifest import Manifest
from .schema import RENDERS_CONFIG, SPLITS
from .taxonomy import CATEGORIES, VIEWS


def stratification_table(counts: dict, splits: list[str]) -> Table:
    """Images per category and split, each cell with its share of the category: a split with no images of a
    category it could hold shows as a red 0 (the splits are stratified by category, see splits.py)."""
    per = counts["per_split_category"]
    t = Table(title=f"images per split x category ({counts['total']} in all; % of the category)")
    t.add_column("category")
    for s in splits:
        t.add_column(s, justify="right")
    t.add_column("all", justify="right")
    for c in CATEGORIES:
        row = [per.get(s, {}).get(c, 0) for s in splits]
        total = sum(row)
        if not total:
            t.add_row(f"[dim]{c}", *("[dim]-" for _ in splits), "[dim]0")
            continue
        t.add_row(c, *(f"{n} ({n / total:.0%})" if n else "[red]0" for n in row), str(total))
    t.add_row("[bold]total", *(f"[bold]{counts['per_split'][s]} ({counts['per_split'][s] / max(counts['total'], 1):.0%})"
                               for s in splits), f"[bold]{counts['total']}")
    return t


def stats_tables(manifest: dict) -> list[Table]:
    counts = manifest["counts"]
    splits = [s for s in SPLITS if counts["per_split"].get(s)]
    t = stratification_table(counts, splits)
    v = Table(title="images per split x view")
    v.add_column("view")
    for s in splits:
        v.add_column(s, justify="right")
    for view in VIEWS:
        v.add_row(view, *(str(counts["per_split_view"][s].get(view, 0)) for s in splits))
    o = Table(title="build")
    o.add_column("what")
    o.add_column("value", justify="right")
    for k in ("projects", "textures", "garments"):
        o.add_row(k, str(counts[k]))
    o.add_row("split groups", str(manifest["splits"]["groups"]))
    o.add_row("rejected inputs", str(len(manifest["rejected"])))
    o.add_row("shards", str(len(manifest["shards"])))
    return [o, t, v]


def contact_sheet(root: Path, manifest: dict, split: str, *, thumb: int = 96) -> Image.Image:
    """One row per category: the first textured garment of the category (in key order) in its four views, each
    column labelled with its view (EXIF orientation applied; a view the garment lacks stays blank)."""
    paths = sorted(
        {s["path"] for s in manifest["shards"] if s["config"] == RENDERS_CONFIG and s["format"] == "parquet"
         and s["split"] == split}
    )
    chosen: dict[str, str] = {}  # category -> the garment shown
    picked: dict[str, dict[str, bytes]] = {}  # category -> view -> bytes
    for p in paths:
        table = pq.read_table(root / p, columns=["image", "category", "view", "project", "texture"])
        cols = {c: table.column(c).to_pylist() for c in ("image", "category", "view", "project", "texture")}
        for img, cat, view, project, texture in zip(*cols.values()):
            cat = CATEGORIES[cat] if isinstance(cat, int) else cat
            view = VIEWS[view] if isinstance(view, int) else view  # a ClassLabel id (a name in older builds)
            garment = f"{project}/{texture}"
            if chosen.setdefault(cat, garment) == garment:
                picked.setdefault(cat, {})[view] = img["bytes"]
    label_w, header, h = 150, 18, int(thumb * 4 / 3)
    sheet = Image.new("RGB", (label_w + len(VIEWS) * thumb, header + max(1, len(picked)) * h), "white")
    draw = ImageDraw.Draw(sheet)
    for col, view in enumerate(VIEWS):
        draw.text((label_w + col * thumb + 4, 3), view, fill="black")
    for row, cat in enumerate(sorted(picked, key=CATEGORIES.index)):
        top = header + row * h
        draw.text((4, top + h // 2 - 12), cat, fill="black")
        shown = chosen[cat] if len(chosen[cat]) <= 24 else "…" + chosen[cat][-23:]
        draw.text((4, top + h // 2 + 2), shown, fill="gray")
        for col, view in enumerate(VIEWS):
            data = picked[cat].get(view)
            if data is None:
                continue
            with Image.open(io.BytesIO(data)) as im:
                im.draft("RGB", (thumb, h))
                im = ImageOps.exif_transpose(im).convert("RGB")
                im.thumbnail((thumb, h))
                sheet.paste(im, (label_w + col * thumb, top))
    return sheet


def write_stats(root: str | Path, sheets_dir: str | Path | None = None, *, console: Console | None = None) -> list[Path]:
    root = Path(root)
    console = console or Console()
    manifest = Manifest.read(root).to_dict()
    for table in stats_tables(manifest):
        console.print(table)
    if "parquet" not in manifest["parameters"]["formats"]:
        return []
    out_dir = Path(sheets_dir) if sheets_dir else root / "stats"
    written = []
    for split in SPLITS:
        if not manifest["counts"]["per_split"].get(split):
            continue
        path = out_dir / f"contact-sheet-{split}.png"
        with atomic_path(path) as tmp:
            contact_sheet(root, manifest, split).save(tmp, format="PNG")
        written.append(path)
        console.print(f"contact sheet: {path}")
    return written
