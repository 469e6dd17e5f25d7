"""`r2r evaluate-table`: several `r2r evaluate` JSONs side by side, as the paper's table (rich, markdown, CSV).

Rows are methods in the order given; columns KID x1000 (std over subsets), LPIPS (std over images), SSIM (std
over images) and n. A row whose protocol differs from the first row's (weights, KID settings, real set, split,
source) is marked and the difference footnoted, so an unfair comparison cannot pass unnoticed; random weights are
flagged. Reads JSON, writes only the files asked for (atomically).
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from synfashion.cliutil import printable

COLUMNS = ("method", "category", "n", "kid_x1000", "kid_std_x1000", "lpips", "lpips_std", "ssim", "ssim_std")


def load_results(paths: list[Path]) -> list[dict]:
    """The evaluate JSONs, through the one validating reader (`results.read_result`)."""
    from .results import read_result

    if not paths:
        raise ValueError("no result files given")
    return [read_result(p) for p in paths]


def _comparable(r: dict) -> dict:
    """What must agree between rows for their numbers to be comparable."""
    p = r["protocol"]
    kid = {k: v for k, v in p["kid"].items() if k not in ("weights",)}
    return {
        "inception weights": p["kid"]["weights"]["sha256"],
        "alexnet weights": p["lpips"]["weights"]["alexnet"]["sha256"],
        "lpips heads": p["lpips"]["weights"]["heads"]["sha256"],
        "KID settings": json.dumps(kid, sort_keys=True),
        "SSIM settings": json.dumps({k: p["ssim"][k] for k in ("window", "sigma", "k1", "k2", "data_range")}),
        "real set": r["inputs"]["real"] + str(r["inputs"].get("real_splits")),
        "n real": r.get("n_real"),
        "split": r["inputs"]["split"],
        "source": r["inputs"]["source"],
        "source subset": r["inputs"].get("source_subset"),  # the rows scored (a translation of a --limit subset)
    }


def differences(results: list[dict]) -> list[list[str]]:
    base = _comparable(results[0])
    return [[k for k, v in _comparable(r).items() if v != base[k]] for r in results]


def rows(results: list[dict], per_category: bool) -> list[dict]:
    out = []
    for r in results:
        out.append({"method": r["method"], "category": "all", **{c: r.get(c) for c in COLUMNS[2:]}})
        if per_category:
            for cat, s in r.get("per_category", {}).items():
                out.append({"method": r["method"], "category": cat, **{c: s.get(c) for c in COLUMNS[2:]}})
    return out


def _cell(mean, std, digits: int = 3) -> str:
    if mean is None:
        return "n/a"
    return f"{mean:.{digits}f} ({std:.{digits}f})" if std is not None else f"{mean:.{digits}f}"


HEADERS = ("Method", "KID×1000 (std) ↓", "LPIPS (std) ↓", "SSIM (std) ↑", "n")


def md_cell(text: str) -> str:
    """A markdown table cell holding `text` literally: method names come from users (a pipe would split the row,
    `<...>` would be read as HTML where the markdown is rendered, a newline would end the table, an escape sequence
    would drive the terminal that prints it: control characters are escaped, `synfashion.cliutil.printable`)."""
    text = printable(text.replace("\r", " ").replace("\n", " "))
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("|", "\\|")


def shown(text: object) -> str:
    """`text` as a rich console prints it here: markup escaped, control characters escaped (`printable`), so a name
    from a user's file can neither restyle the output nor drive the terminal."""
    from rich.markup import escape

    return escape(printable(str(text)))


def _display(row: dict, mark: str) -> list[str]:
    name = row["method"] + mark if row["category"] == "all" else f"{row['method']} / {row['category']}"
    return [name, _cell(row["kid_x1000"], row["kid_std_x1000"]), _cell(row["lpips"], row["lpips_std"]),
            _cell(row["ssim"], row["ssim_std"]), str(row["n"])]


def notes(results: list[dict], diffs: list[list[str]]) -> tuple[list[str], list[str]]:
    """(per-result marks, footnote lines)."""
    marks, lines = [], []
    for r, d in zip(results, diffs):
        mark = ""
        if r["protocol"].get("random_weights"):
            mark += " [random weights]"
        if d:
            mark += " *"
            lines.append(f"* {r['method']} ({r['_path']}): protocol differs from {results[0]['method']} in: "
                         f"{', '.join(d)}")
        problems = r.get("problems", {})
        count = sum(len(problems.get(k, [])) for k in ("unpaired", "unreadable", "untranslated", "real_unreadable"))
        if count:
            lines.append(f"{r['method']}: {count} unpaired/unreadable/untranslated image(s), listed in {r['_path']}")
        marks.append(mark)
    if any(r["protocol"].get("random_weights") for r in results):
        lines.append("[random weights]: metric networks with random weights; the numbers only test the plumbing")
    lines.append("KID×1000: kernel inception distance x 1000 (std over subsets); LPIPS, SSIM to the rendered source "
                 "(std over images)")
    return marks, lines


def markdown(results: list[dict], per_category: bool = False) -> str:
    marks, lines = notes(results, differences(results))
    mark_of = {r["_path"]: m for r, m in zip(results, marks)}
    body = []
    for r in results:
        for row in rows([r], per_category):
            body.append(_display(row, mark_of[r["_path"]]))
    out = ["| " + " | ".join(HEADERS) + " |", "|" + "|".join(["---"] + [":---:"] * (len(HEADERS) - 1)) + "|"]
    out += ["| " + " | ".join(md_cell(c) for c in cells) + " |" for cells in body]
    return "\n".join(out + [""] + [f"{md_cell(line)}  " for line in lines]) + "\n"


def csv_text(results: list[dict], per_category: bool = False) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=[*COLUMNS, "random_weights", "file"], lineterminator="\n")
    w.writeheader()
    for r in results:
        for row in rows([r], per_category):
            w.writerow({**row, "random_weights": r["protocol"].get("random_weights"), "file": r["_path"]})
    return buf.getvalue()


def print_rich(results: list[dict], per_category: bool = False) -> None:
    from rich.console import Console
    from rich.table import Table

    marks, lines = notes(results, differences(results))
    table = Table(title="Rendered-to-real evaluation")
    for h in HEADERS:
        table.add_column(h, justify="left" if h == "Method" else "right")
    for r, mark in zip(results, marks):
        for row in rows([r], per_category):
            table.add_row(*(shown(cell) for cell in _display(row, mark)))
    console = Console()
    console.print(table)
    for line in lines:
        console.print(shown(line), highlight=False)


def write_output(target: str, text: str) -> None:
    """A table to stdout ('-') or atomically to a file (the markdown/CSV/JSON outputs of the table commands)."""
    from synfashion.fs.atomic import write_bytes_atomic

    if target == "-":
        print(text, end="")
    else:
        write_bytes_atomic(Path(target), text.encode("utf-8"), durable=False)
