"""`r2r evaluate-table`: several `r2r evaluate` JSONs side by side, as the paper's table (rich, markdown, CSV).

Rows are methods in the order given; columns KID x1000 (std over subsets), LPIPS (std over images), SSIM (std
over images) and n: the paper's table, KID in the Inception space. `space` (`--space dinov2`) shows instead KID x1000
and FD (std over bootstrap resamples) in that feature space, with precision and recall where they were computed,
every header naming the space; the CSV always carries every space's numbers in columns named `<space>_<number>`.
A row whose protocol differs from the first row's (weights, KID settings, real set, split, source; the shown
space's network and FD settings) is marked and the difference footnoted, so an unfair comparison cannot pass
unnoticed; random weights are flagged; a per-category row below the evaluation's `--min-category-n` is marked with
a dagger. Reads JSON, writes only the files asked for (atomically).
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from synfashion.cliutil import printable

COLUMNS = ("method", "category", "n", "kid_x1000", "kid_std_x1000", "lpips", "lpips_std", "ssim", "ssim_std")
SPACE_NUMBERS = ("kid_x1000", "kid_std_x1000", "fd", "fd_std", "precision", "recall")
UNTRUSTED = " †"


def load_results(paths: list[Path]) -> list[dict]:
    """The evaluate JSONs, through the one validating reader (`results.read_result`)."""
    from .results import read_result

    if not paths:
        raise ValueError("no result files given")
    return [read_result(p) for p in paths]


class _RealSet:
    """A real set as a table compares it: by its images' digest where both files have one (the same photos as a
    folder or as a statistics file are one set), else by the description `r2r evaluate` recorded."""

    def __init__(self, inputs: dict):
        self.digest = inputs.get("real_images_sha256")
        self.text = str(inputs.get("real")) + str(inputs.get("real_splits"))

    def __eq__(self, other) -> bool:
        if self.digest and getattr(other, "digest", None):
            return self.digest == other.digest
        return isinstance(other, _RealSet) and self.text == other.text

    __hash__ = None


def _comparable(r: dict, space: str | None = None) -> dict:
    """What must agree between rows for their numbers to be comparable."""
    p = r["protocol"]
    kid = {k: v for k, v in p["kid"].items() if k not in ("weights",)}
    shown = {}
    if space is not None:
        sp = p.get("spaces", {}).get(space, {})
        shown = {f"{space} network": (sp.get("network"), (sp.get("weights") or {}).get("sha256"),
                                      sp.get("weights_digest"), sp.get("preprocessing")),
                 "FD settings": json.dumps({k: v for k, v in p.get("fd", {}).items()}, sort_keys=True)}
    return {
        "inception weights": p["kid"]["weights"]["sha256"],
        "alexnet weights": p["lpips"]["weights"]["alexnet"]["sha256"],
        "lpips heads": p["lpips"]["weights"]["heads"]["sha256"],
        "KID settings": json.dumps(kid, sort_keys=True),
        "SSIM settings": json.dumps({k: p["ssim"][k] for k in ("window", "sigma", "k1", "k2", "data_range")}),
        "real set": _RealSet(r["inputs"]),
        "n real": r.get("n_real"),
        "split": r["inputs"]["split"],
        "source": r["inputs"]["source"],
        "source subset": r["inputs"].get("source_subset"),  # the rows scored (a translation of a --limit subset)
        **shown,
    }


def differences(results: list[dict], space: str | None = None) -> list[list[str]]:
    base = _comparable(results[0], space)
    return [[k for k, v in _comparable(r, space).items() if v != base[k]] for r in results]


def _row(method: str, category: str, s: dict) -> dict:
    row = {"method": method, "category": category, **{c: s.get(c) for c in COLUMNS[2:]},
           "trusted": s.get("trusted")}
    for space, numbers in (s.get("spaces") or {}).items():
        row.update({f"{space}_{k}": numbers.get(k) for k in SPACE_NUMBERS})
    return row


def rows(results: list[dict], per_category: bool) -> list[dict]:
    out = []
    for r in results:
        out.append(_row(r["method"], "all", r))
        if per_category:
            for cat, s in r.get("per_category", {}).items():
                out.append(_row(r["method"], cat, s))
    return out


def spaces_in(results: list[dict]) -> list[str]:
    """The feature spaces any of the results holds numbers for, in r2r's order."""
    from .spaces import SPACES

    held = {space for r in results for space in (r.get("spaces") or {})}
    return [s for s in SPACES if s in held]


def _cell(mean, std, digits: int = 3) -> str:
    if mean is None:
        return "n/a"
    return f"{mean:.{digits}f} ({std:.{digits}f})" if std is not None else f"{mean:.{digits}f}"


HEADERS = ("Method", "KID×1000 (std) ↓", "LPIPS (std) ↓", "SSIM (std) ↑", "n")


def headers(results: list[dict], space: str | None) -> tuple[str, ...]:
    """The paper's columns, or with `space` that space's KID and FD (and precision / recall where computed)."""
    if space is None:
        return HEADERS
    pr = any(row.get(f"{space}_precision") is not None for row in rows(results, True))
    fd = "FID" if space == "inception" else "FD"
    return ("Method", f"KID×1000 (std) ↓ [{space}]", f"{fd} (std) ↓ [{space}]",
            *((f"precision ↑ [{space}]", f"recall ↑ [{space}]") if pr else ()), "LPIPS (std) ↓", "SSIM (std) ↑",
            "n")


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


def _display(row: dict, mark: str, space: str | None = None, pr: bool = False) -> list[str]:
    name = row["method"] + mark if row["category"] == "all" else f"{row['method']} / {row['category']}"
    if row["category"] != "all" and row.get("trusted") is False:
        name += UNTRUSTED
    tail = [_cell(row["lpips"], row["lpips_std"]), _cell(row["ssim"], row["ssim_std"]), str(row["n"])]
    if space is None:
        return [name, _cell(row["kid_x1000"], row["kid_std_x1000"]), *tail]
    g = lambda k: row.get(f"{space}_{k}")
    cells = [_cell(g("kid_x1000"), g("kid_std_x1000")), _cell(g("fd"), g("fd_std"))]
    if pr:
        cells += [_cell(g("precision"), None), _cell(g("recall"), None)]
    return [name, *cells, *tail]


def notes(results: list[dict], diffs: list[list[str]], space: str | None = None,
          per_category: bool = False) -> tuple[list[str], list[str]]:
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
    if space is not None:
        missing = [r["method"] for r in results if space not in (r.get("spaces") or {})]
        networks = sorted({str(r["protocol"].get("spaces", {}).get(space, {}).get("network")) for r in results
                           if space in (r.get("spaces") or {})})
        lines.append(f"[{space}]: KID×1000 and {'FID' if space == 'inception' else 'FD'} (std over bootstrap "
                     f"resamples) in the {space} feature space ({', '.join(networks) or 'no file has it'})")
        if missing:
            lines.append(f"n/a in [{space}]: {', '.join(missing)} (scored without --features {space})")
    else:
        held = [s for s in spaces_in(results) if s != "inception"]
        if held:
            lines.append(f"KID here is in the inception space; these files also hold {', '.join(held)} numbers "
                         "(--space NAME shows them; FID: --space inception)")
    if per_category and any(s.get("trusted") is False for r in results for s in r.get("per_category", {}).values()):
        min_n = sorted({r["protocol"].get("per_category_trust", {}).get("min_n") for r in results} - {None})
        lines.append(f"{UNTRUSTED.strip()}: fewer images than --min-category-n "
                     f"({', '.join(map(str, min_n)) or 'its minimum'}): shown, not to be trusted")
    return marks, lines


def markdown(results: list[dict], per_category: bool = False, space: str | None = None) -> str:
    marks, lines = notes(results, differences(results, space), space, per_category)
    mark_of = {r["_path"]: m for r, m in zip(results, marks)}
    heads = headers(results, space)
    pr = any("precision" in h for h in heads)
    body = []
    for r in results:
        for row in rows([r], per_category):
            body.append(_display(row, mark_of[r["_path"]], space, pr))
    out = ["| " + " | ".join(heads) + " |", "|" + "|".join(["---"] + [":---:"] * (len(heads) - 1)) + "|"]
    out += ["| " + " | ".join(md_cell(c) for c in cells) + " |" for cells in body]
    return "\n".join(out + [""] + [f"{md_cell(line)}  " for line in lines]) + "\n"


def csv_text(results: list[dict], per_category: bool = False) -> str:
    buf = io.StringIO()
    space_columns = [f"{space}_{k}" for space in spaces_in(results) for k in SPACE_NUMBERS]
    w = csv.DictWriter(buf, fieldnames=[*COLUMNS, *space_columns, "trusted", "random_weights", "file"],
                       lineterminator="\n", extrasaction="ignore")
    w.writeheader()
    for r in results:
        for row in rows([r], per_category):
            w.writerow({**row, "random_weights": r["protocol"].get("random_weights"), "file": r["_path"]})
    return buf.getvalue()


def print_rich(results: list[dict], per_category: bool = False, space: str | None = None) -> None:
    from rich.console import Console
    from rich.table import Table

    marks, lines = notes(results, differences(results, space), space, per_category)
    heads = headers(results, space)
    pr = any("precision" in h for h in heads)
    table = Table(title="Rendered-to-real evaluation" + (f" ({space} feature space)" if space else ""))
    for h in heads:
        table.add_column(shown(h), justify="left" if h == "Method" else "right")
    for r, mark in zip(results, marks):
        for row in rows([r], per_category):
            table.add_row(*(shown(cell) for cell in _display(row, mark, space, pr)))
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
