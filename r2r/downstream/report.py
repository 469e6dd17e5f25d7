"""What a finished comparison shows: the rich table on the terminal and results.md (the same numbers as results.json).

Pure formatting of the results document; nothing here computes a score or reads data.
"""

from __future__ import annotations

from synfashion.taxonomy import CATEGORIES


def _cell(score: dict | None) -> str:
    return "n/a" if score is None else f"{score['top1']:.3f} / {score['macro_f1']:.3f}"


def rich_table(results: dict):
    """Variants as rows, test sets as columns: top-1 / macro-F1."""
    from rich.table import Table

    tests = list(results["test_sets"])
    table = Table(title=f"Top-1 / macro-F1 (chance top-1 {results['chance_top1']:.3f})", title_justify="left")
    table.add_column("trained on", style="bold")
    table.add_column("train images", justify="right")
    for t in tests:
        table.add_column(f"{t} ({results['test_sets'][t]['images']})", justify="right")
    for name, v in results["variants"].items():
        table.add_row(name, str(v["train_images"]), *(_cell(v["scores"].get(t)) for t in tests))
    return table


def markdown(results: dict) -> str:
    """results.md: the comparison table, then per-category accuracy on the real photos (or the first test set)."""
    s = results["settings"]
    tests = list(results["test_sets"])
    lines = [
        "# Downstream comparison: train on each variant, test on each set",
        "",
        f"Model {s['model_description']}, {s['size'][0]}x{s['size'][1]} ({s['resize']}), {s['epochs']} epochs, "
        f"batch {s['batch_size']} x {s['processes']} process(es), AdamW lr {s['lr']:g}, seed {s['seed']}. "
        f"Cells: top-1 accuracy / macro-F1 (chance top-1 {results['chance_top1']:.3f}).",
        "",
        "| trained on | train images | "
        + " | ".join(f"{t} ({results['test_sets'][t]['images']})" for t in tests) + " |",
        "|---|---:|" + "---:|" * len(tests),
    ]
    for name, v in results["variants"].items():
        lines.append(f"| {name} | {v['train_images']} | " + " | ".join(_cell(v["scores"].get(t)) for t in tests)
                     + " |")
    focus = "real" if "real" in results["test_sets"] else (tests[0] if tests else None)
    if focus is not None:
        names = list(results["variants"])
        lines += ["", f"## Per-category accuracy on {focus}", "",
                  "| category | images | " + " | ".join(names) + " |", "|---|---:|" + "---:|" * len(names)]
        counts = results["test_sets"][focus]["per_category"]
        for c in CATEGORIES:
            if not counts.get(c):
                continue
            row = []
            for n in names:
                acc = (results["variants"][n]["scores"].get(focus) or {}).get("per_category_accuracy", {}).get(c)
                row.append("n/a" if acc is None else f"{acc:.2f}")
            lines.append(f"| {c} | {counts[c]} | " + " | ".join(row) + " |")
    unmatched = [(t, u) for t, d in results["test_sets"].items() for u in d.get("unmatched", [])]
    if unmatched:
        lines += ["", f"## Not scored ({len(unmatched)})", ""]
        lines += [f"- {t}: `{u['file']}`: {u['reason']}" for t, u in unmatched]
    if results.get("notes"):
        lines += ["", "## Notes", ""] + [f"- {n}" for n in results["notes"]]
    return "\n".join(lines) + "\n"
