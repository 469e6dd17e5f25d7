"""synfashion.stats: the per-category split table read from a manifest's counts."""

from rich.console import Console

from synfashion.stats import stratification_table


def _text(table) -> str:
    console = Console(record=True, width=200, color_system=None)
    console.print(table)
    return console.export_text()


def test_table_shows_each_category_per_split_with_its_share():
    counts = {"total": 30, "per_split": {"train": 24, "validation": 2, "test": 4},
              "per_split_category": {"train": {"hat": 16, "coat": 8}, "validation": {"hat": 2},
                                     "test": {"hat": 2, "coat": 2}}}
    text = _text(stratification_table(counts, ["train", "validation", "test"]))
    rows = {line.split("│")[1].strip(): [c.strip() for c in line.split("│")[2:-1]]
            for line in text.splitlines() if line.startswith("│")}
    assert rows["hat"] == ["16 (80%)", "2 (10%)", "2 (10%)", "20"]
    assert rows["coat"] == ["8 (80%)", "0", "2 (20%)", "10"]  # a split missing the category shows 0 (red)
    assert rows["dress"] == ["-", "-", "-", "0"]  # a category the release does not have
    assert rows["total"] == ["24 (80%)", "2 (7%)", "4 (13%)", "30"]
