"""`r2r report`: the pictures of a translation, for people: one row per image, source next to each method's output.

Two inputs, one page:
- `r2r report eval/ours.json eval/cut.json --out report/`: `r2r evaluate` results. A row per source image:
  the rendered source, then each method's output labelled, with its per-image LPIPS and SSIM under it; rows sorted
  by key or worst first by the first file's LPIPS or SSIM, `--limit` of them. Images are found again through the
  same pairing `r2r evaluate` used (evaluation/results.py).
- `r2r report --input renders/ --output translated/ --out report/`: a `translate-images` folder (no scores),
  rendered | translated.

The page (`report.html`) shows the summary table first, then the pictures, and the settings folded in
`<details>`. It is self-contained: every picture is copied (downscaled) into `report_files/` beside it
(pages/images.py), so the folder can be moved. `report.png` is a grid of the first rows. Every name on the page is
HTML-escaped (names come from users); every file is written atomically; nothing outside the report folder is
written. The report folder is new, empty or an earlier report's (marked by `synfashion.fs.ownership.OwnedFolder`,
which also records report.html and report.png), never a folder the page reads or holds, and nothing a report did not
provably write is replaced or removed; every picture is read through `loaders` (regular files inside their folder,
the declared size bounded). No torch import at module level (`r2r --help` stays instant).
"""

from __future__ import annotations

import html
import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont, ImageOps

from synfashion.cliutil import option
from synfashion.fs.atomic import atomic_path, write_bytes_atomic

from .images import PictureFolder, PictureSettings, fit

REPORT_HTML = "report.html"
REPORT_PNG = "report.png"
SORTS = ("key", "lpips", "ssim")
_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")


@dataclass(frozen=True)
class ReportSettings:
    limit: int = option("--limit", default=100, type=int, help="rows on the page after sorting; 0: all")
    sort: str = option("--sort", default="key", choices=SORTS,
                       help="row order: source key, or worst first by the first file's LPIPS (highest first) or SSIM "
                            "(lowest first)")
    grid_rows: int = option("--grid-rows", default=8, type=int, help="rows in report.png")
    pictures: PictureSettings = PictureSettings()

    def __post_init__(self) -> None:
        if self.sort not in SORTS:
            raise ValueError(f"--sort must be one of {', '.join(SORTS)}, got {self.sort!r}")
        if self.limit < 0 or self.grid_rows < 0:
            raise ValueError(f"--limit and --grid-rows must be >= 0 (got {self.limit}, {self.grid_rows})")


@dataclass(frozen=True)
class Cell:
    label: str  # the column: "source" or a method
    image: object | None  # a PIL image or uint8 array; None: nothing to show (`lines` say why)
    lines: tuple[str, ...] = ()  # under the picture: scores, or why there is no picture


@dataclass(frozen=True)
class Row:
    title: str
    subtitle: str
    cells: tuple[Cell, ...]


@dataclass
class ReportContent:
    """What a page shows, whatever the input: rows (produced lazily, one at a time) and their context."""
    title: str
    columns: list[str]
    intro: list[str]
    rows: Iterable[Row]
    warnings: list[str] = field(default_factory=list)
    summary_header: list[str] = field(default_factory=list)
    summary_rows: list[list[str]] = field(default_factory=list)
    summary_notes: list[str] = field(default_factory=list)
    details: list[tuple[str, object]] = field(default_factory=list)  # (heading, JSON-able settings)
    inputs: dict[str, Path | str] = field(default_factory=dict)  # what the page reads: never its folder's neighbour


# ------------------------------------------------------------------------------------------------ from evaluations
def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def order_keys(evals, sort: str) -> list[str]:
    """Every source key any file scored, sorted by key, or worst first by the first file's score (keys the first
    file did not score last, by key)."""
    keys = sorted({k for e in evals for k in e.images})
    if sort == "key":
        return keys
    first = evals[0].images
    sign = -1.0 if sort == "lpips" else 1.0  # LPIPS: higher is worse; SSIM: lower is worse

    def rank(k: str):
        value = getattr(first[k], sort) if k in first else None
        return (value is None, sign * value if value is not None else 0.0, k)

    return sorted(keys, key=rank)


def _evaluation_rows(evals, keys: list[str]) -> Iterator[Row]:
    for key in keys:
        category = next((e.images[key].category for e in evals if key in e.images), "")
        source, source_note = None, "source not found"
        cells = []
        for e in evals:
            scored = e.images.get(key)
            if scored is None:
                untranslated = key in (e.data.get("problems", {}).get("untranslated") or ())
                cells.append(Cell(e.label, None, (f"no output: listed as untranslated in {e.path.name}"
                                                  if untranslated else f"not scored in {e.path.name}",)))
                continue
            pics = e.pictures(key)
            if "error" in pics:
                cells.append(Cell(e.label, None, (pics["error"],)))
                continue
            if source is None:
                source = pics["source"]
            cells.append(Cell(e.label, pics["translated"], (f"LPIPS {_fmt(scored.lpips)}",
                                                            f"SSIM {_fmt(scored.ssim)}")))
        source_cell = Cell("source", source, (category,) if source is not None else (source_note,))
        yield Row(key, category, (source_cell, *cells))


def content_from_evaluations(paths: list[Path], settings: ReportSettings) -> ReportContent:
    from ..evaluation.results import load_evaluations
    from ..evaluation.table import HEADERS, _display, differences, notes, rows

    evals = load_evaluations(paths)
    for e in evals:
        e.open()  # every file's images are found again before anything is written (a missing folder: one error)
    keys = order_keys(evals, settings.sort)
    shown = keys[: settings.limit] if settings.limit else keys
    labels = [e.label for e in evals]
    order = {"key": "by source key", "lpips": f"worst first by the LPIPS of {labels[0]} (highest first)",
             "ssim": f"worst first by the SSIM of {labels[0]} (lowest first)"}[settings.sort]
    intro = [f"{len(shown)} of {len(keys)} source images, {order}"
             + (f" (--limit {settings.limit})" if len(shown) < len(keys) else "") + ".",
             "Each row: the rendered source, then each method's output with its LPIPS (lower: closer to the source) "
             "and SSIM (higher: closer) to that source."]
    random = [e.label for e in evals if e.random_weights]
    warnings = [f"RANDOM WEIGHTS in the metric networks of {', '.join(random)}: these scores only test the "
                "plumbing"] if random else []
    results = []
    for e in evals:
        results.append({**e.data, "method": e.label, "_path": str(e.path)})
    marks, note_lines = notes(results, differences(results))
    summary = [_display(row, mark) + [e.path.name] for e, mark, r in zip(evals, marks, results)
               for row in rows([r], False)]
    details = [("report", {"inputs": [str(e.path) for e in evals], "sort": settings.sort, "limit": settings.limit,
                           "pictures": settings.pictures.describe()})]
    for e in evals:
        problems = e.data.get("problems", {})
        details.append((f"{e.label} ({e.path})", {
            "inputs": e.data.get("inputs"), "settings": e.data.get("settings"),
            "protocol": e.data.get("protocol"),
            "problems": {k: v for k, v in problems.items() if v},
            "device": e.data.get("device"), "versions": e.data.get("versions"), "seconds": e.data.get("seconds"),
        }))
    return ReportContent(
        title=f"Rendered-to-real report: {', '.join(labels)}", columns=["source", *labels], intro=intro,
        rows=_evaluation_rows(evals, shown), warnings=warnings, summary_header=[*HEADERS, "file"],
        summary_rows=summary, summary_notes=note_lines, details=details,
        inputs={k: v for e in evals for k, v in e.inputs().items()},
    )


# ------------------------------------------------------------------------------------------------ from a folder
def pairs(input_dir: Path, output_dir: Path) -> list[tuple[Path, Path]]:
    """(rendered, translated) for every translated PNG whose source is still under input_dir (whatever either file
    is: reading them says what is wrong with one, see `_open`)."""
    from loaders.files import list_files

    found = []
    for rel in list_files(output_dir, {".png"}):  # (a report an older r2r wrote here has no source: never paired)
        out = output_dir / rel
        for suffix in _IMAGE_SUFFIXES:
            src = (input_dir / rel).with_suffix(suffix)
            if os.path.lexists(src):
                found.append((src, out))
                break
    return found


def _open(path: Path, root: Path) -> tuple[Image.Image | None, tuple[str, ...]]:
    """The picture at `path` through `loaders` (a regular file inside `root`, its declared size bounded, decoded
    upright as the translation read it), or why not."""
    from loaders.decode import decode_image
    from loaders.files import ImageFileError, read_file

    try:
        return decode_image(read_file(path, root=root)), ()
    except ImageFileError as e:
        return None, (f"cannot read {path.name}: {e.detail}",)
    except Image.DecompressionBombError as e:  # our bound's message: the declared size, never the bytes
        return None, (f"cannot read {path.name}: {e}",)
    except Exception as e:  # noqa: BLE001 - PIL raises many types on bad bytes; the problem is named, not the bytes
        return None, (f"cannot read {path.name}: {type(e).__name__}",)


def _folder_rows(found: list[tuple[Path, Path]], input_dir: Path, output_dir: Path) -> Iterator[Row]:
    for src, out in found:
        s, s_note = _open(src, input_dir)
        t, t_note = _open(out, output_dir)
        yield Row(out.relative_to(output_dir).as_posix(), "",
                  (Cell("rendered", s, s_note), Cell("translated", t, t_note)))


def content_from_folder(input_dir: Path, output_dir: Path, settings: ReportSettings) -> ReportContent:
    from loaders.errors import LoaderError
    from loaders.files import read_text_file

    from ..translate.folder import RUN_RECORD

    if settings.sort != "key":
        raise ValueError(f"--sort {settings.sort} needs `r2r evaluate` results: a translate-images folder has no "
                         "scores")
    if not output_dir.is_dir():
        raise FileNotFoundError(f"translated folder {output_dir} does not exist")
    found = pairs(input_dir, output_dir)
    if not found:
        raise FileNotFoundError(f"no translated PNG in {output_dir} has a source image in {input_dir}")
    shown = found[: settings.limit] if settings.limit else found
    run_file = output_dir / RUN_RECORD
    try:
        run = json.loads(read_text_file(run_file)) if os.path.lexists(run_file) else {}
    except (OSError, LoaderError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"{run_file}: not a readable JSON file ({e})") from None
    intro = [f"{len(shown)} of {len(found)} translated images, by file name"
             + (f" (--limit {settings.limit})" if len(shown) < len(found) else "") + ".",
             "Each row: the rendered input, then the translated output (translate-images writes lossless PNGs)."]
    details = [("report", {"input": str(input_dir), "output": str(output_dir), "limit": settings.limit,
                           "pictures": settings.pictures.describe()}),
               (f"translation run ({RUN_RECORD})", run or "no r2r_run.json in the output folder")]
    return ReportContent(title=f"Rendered-to-real translation: {output_dir.name}", columns=["rendered", "translated"],
                         intro=intro, rows=_folder_rows(shown, input_dir, output_dir), details=details,
                         inputs={"--input folder": input_dir, "--output folder": output_dir})


# ------------------------------------------------------------------------------------------------ the page
_CSS = """
body{font-family:system-ui,sans-serif;margin:1.5rem;color:#222;background:#fafafa}
h1{font-size:1.4rem;margin:.2rem 0}
.warn{background:#fde2e1;border:1px solid #d33;padding:.4rem .7rem;font-weight:600}
.row{background:#fff;border:1px solid #ddd;border-radius:6px;margin:1rem 0;padding:.5rem .8rem}
.row h2{font-size:1rem;margin:.2rem 0 .5rem;font-family:ui-monospace,monospace;word-break:break-all}
.row h2 small{font-family:system-ui,sans-serif;color:#666;font-weight:normal;margin-left:.5rem}
.cells{display:flex;gap:.6rem;overflow-x:auto}
figure{margin:0;flex:0 0 auto;width:var(--w,256px)}
figure img{width:100%;height:auto;display:block;border:1px solid #ccc;background:#eee}
figure .none{width:100%;aspect-ratio:3/4;display:flex;align-items:center;justify-content:center;text-align:center;
  background:repeating-linear-gradient(45deg,#eee,#eee 8px,#e4e4e4 8px,#e4e4e4 16px);color:#a00;font-size:.8rem;
  border:1px dashed #bbb;padding:.4rem;box-sizing:border-box}
figcaption{font-size:.85rem;padding-top:.2rem;line-height:1.3}
figcaption b{display:block}
table{border-collapse:collapse;margin:.5rem 0;background:#fff}
th,td{border:1px solid #ccc;padding:.25rem .5rem;text-align:right}
th:first-child,td:first-child{text-align:left}
details{margin:1rem 0}
pre{background:#f0f0f0;padding:.6rem;overflow:auto;font-size:.8rem}
"""


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _figure(cell: Cell, href: str | None, row_title: str) -> str:
    lines = "".join(f"<br>{_e(line)}" for line in cell.lines)
    if href is None:
        body = f'<div class="none">{_e(" ".join(cell.lines) or "no image")}</div>'
        lines = ""
    else:
        body = f'<a href="{_e(href)}"><img src="{_e(href)}" alt="{_e(cell.label)}: {_e(row_title)}"></a>'
    return f"<figure>{body}<figcaption><b>{_e(cell.label)}</b>{lines.removeprefix('<br>')}</figcaption></figure>"


def render_page(content: ReportContent, rows_html: list[str]) -> str:
    summary = ""
    if content.summary_rows:
        head = "".join(f"<th>{_e(h)}</th>" for h in content.summary_header)
        body = "".join("<tr>" + "".join(f"<td>{_e(c)}</td>" for c in row) + "</tr>" for row in content.summary_rows)
        notes = "".join(f"<li>{_e(n)}</li>" for n in content.summary_notes)
        summary = f"<h2>Summary</h2><table><tr>{head}</tr>{body}</table><ul>{notes}</ul>"
    details = "".join(
        f"<details><summary>{_e(heading)}</summary><pre>{_e(json.dumps(value, indent=2, sort_keys=True))}</pre>"
        "</details>" for heading, value in content.details)
    return (
        f'<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(content.title)}</title><style>{_CSS}</style></head><body>\n"
        f"<h1>{_e(content.title)}</h1>\n"
        + "".join(f'<p class="warn">{_e(w)}</p>\n' for w in content.warnings)
        + "".join(f"<p>{_e(line)}</p>\n" for line in content.intro)
        + summary  # the numbers first: a report of hundreds of rows would otherwise hide them at its end
        + '<main id="rows">\n' + "\n".join(rows_html) + "\n</main>\n"
        + f'<details id="settings"><summary>Settings</summary>{details}</details>\n</body></html>\n'
    )


# ------------------------------------------------------------------------------------------------ report.png
def _font(size: int):
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError):  # Pillow < 10.1, or no FreeType: the bitmap font
        return ImageFont.load_default()


def grid(columns: list[str], rows: list[list[Image.Image | None]], *, thumb: int = 192) -> Image.Image:
    """Rows of pictures under a header of column labels; a missing picture is a grey cell."""
    h = int(thumb * 4 / 3)
    header = 24
    sheet = Image.new("RGB", (len(columns) * thumb, header + max(1, len(rows)) * h), "white")
    draw = ImageDraw.Draw(sheet)
    font = _font(14)
    for c, label in enumerate(columns):
        text = label
        while len(text) > 1 and draw.textlength(text, font=font) > thumb - 8:
            text = text[:-2] + "…"
        draw.text((c * thumb + 4, 4), text, fill="black", font=font)
    for r, cells in enumerate(rows):
        for c, im in enumerate(cells):
            x, y = c * thumb, header + r * h
            if im is None:
                draw.rectangle((x + 1, y + 1, x + thumb - 2, y + h - 2), fill=(225, 225, 225))
                continue
            im = ImageOps.contain(im, (thumb, h), Image.Resampling.BICUBIC)  # small pictures scaled up too
            sheet.paste(im, (x + (thumb - im.width) // 2, y + (h - im.height) // 2))
    return sheet


# ------------------------------------------------------------------------------------------------ writing
def write_report(content: ReportContent, out: Path, settings: ReportSettings = ReportSettings()) -> tuple[Path, Path]:
    """`out/report.html`, `out/report.png` and the pictures under `out/report_files/`; returns the two paths."""
    from synfashion.fs.locks import folder_lock
    from synfashion.fs.ownership import OwnedFolder

    out = Path(out)
    owned = OwnedFolder(out, "report")  # new, empty or an earlier report's; apart from everything the page reads
    owned.claim(inputs=content.inputs)
    with folder_lock(out, "r2r report"):
        fresh = not owned.claim(inputs=content.inputs)  # again, holding the folder
        owned.refuse_in_the_way([REPORT_HTML, REPORT_PNG])
        owned.begin()
        try:
            return _write(content, out, settings, owned)
        except BaseException:
            if fresh:
                owned.abandon()
            raise


def _write(content: ReportContent, out: Path, settings: ReportSettings, owned) -> tuple[Path, Path]:
    """The pictures, report.png and report.html into `out` (claimed and marked by the caller)."""
    from .images import as_pil

    pictures = PictureFolder(out, settings.pictures)
    rows_html, grid_rows = [], []
    for n, row in enumerate(content.rows):
        figs = []
        thumbs = []
        for cell in row.cells:
            href = None
            if cell.image is not None:
                img = as_pil(cell.image)
                href = pictures.add(img)
                if n < settings.grid_rows:
                    thumbs.append(fit(img, 384))
            elif n < settings.grid_rows:
                thumbs.append(None)
            figs.append(_figure(cell, href, row.title))
        if n < settings.grid_rows:
            grid_rows.append(thumbs)
        sub = f"<small>{_e(row.subtitle)}</small>" if row.subtitle else ""
        rows_html.append(f'<article class="row"><h2>{_e(row.title)}{sub}</h2><div class="cells">{"".join(figs)}'
                         "</div></article>")
    if not rows_html:
        raise ValueError("nothing to show: no image rows")
    page_path, png_path = out / REPORT_HTML, out / REPORT_PNG
    with owned.writing([REPORT_PNG, REPORT_HTML]):
        with atomic_path(png_path, durable=False) as tmp:
            grid(content.columns, grid_rows).save(tmp, format="PNG")
        write_bytes_atomic(page_path, render_page(content, rows_html).encode("utf-8"), durable=False)
    pictures.prune()
    return page_path, png_path
