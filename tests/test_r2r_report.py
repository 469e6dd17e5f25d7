"""`r2r report`: pictures first (a row per source image: source | each method, labelled, per-image LPIPS/SSIM),
settings folded below, every name escaped, self-contained (the folder still works after a move), from
`r2r evaluate` results or from a translate-images folder; report.png; one-line errors."""

from __future__ import annotations

import json
import re
import shutil
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from r2r.cli import main
from r2r.evaluation.inputs import list_outputs
from r2r.pages.report import pairs

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # see conftest.py


class _Page(HTMLParser):
    """Rows (title, [(label, picture link or None, caption text)]) and every link of a report page."""

    def __init__(self, text: str):
        super().__init__()
        self.rows, self.links, self._in = [], [], []
        self._fig = None
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        for k in ("src", "href"):
            if k in a:
                self.links.append(a[k])
        if tag == "article":
            self.rows.append(["", []])
        elif tag == "figure":
            self._fig = [None, None, ""]
        elif tag == "img" and self._fig is not None:
            self._fig[1] = a["src"]
        self._in.append(tag)

    def handle_endtag(self, tag):
        if tag == "figure":
            self.rows[-1][1].append(tuple(self._fig))
            self._fig = None
        while self._in and self._in.pop() != tag:
            pass

    def handle_data(self, data):
        if self._in and self._in[-1] == "h2" and self.rows and "article" in self._in:
            self.rows[-1][0] += data.strip()
        elif self._fig is not None:
            if self._in and self._in[-1] == "b" and self._fig[0] is None:
                self._fig[0] = data
            else:
                self._fig[2] += data + " "


def _self_contained(folder: Path, links: list[str]) -> None:
    """Every link is a plain relative path inside the folder, and the file is there."""
    assert links
    for link in links:
        assert not re.match(r"^[a-z]+:", link) and not link.startswith("/") and ".." not in link.split("/"), link
        assert (folder / link).is_file(), link


def _err(capsys) -> str:
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1, err  # one line, no traceback
    return err


# ------------------------------------------------------------------------------------------------ a folder run
def test_report_of_a_translate_images_folder(tmp_path):
    src, out = tmp_path / "in", tmp_path / "out"
    (src / "a").mkdir(parents=True)
    (out / "a").mkdir(parents=True)
    names = ("x", '<b>&"y')  # file names come from users: escaped on the page
    for name, color in zip(names, ("red", "blue")):
        Image.new("RGB", (48, 64), color).save(src / "a" / f"{name}.jpg")
        Image.new("RGB", (48, 64), "green").save(out / "a" / f"{name}.png")
    Image.new("RGB", (48, 64), "green").save(out / "orphan.png")  # no source: not paired
    (out / "r2r_run.json").write_text(json.dumps({"strength": 0.3}))
    assert [(s.name, o.name) for s, o in pairs(src, out)] == [('<b>&"y.jpg', '<b>&"y.png'), ("x.jpg", "x.png")]
    page_dir = tmp_path / "report"
    assert main(["report", "--input", str(src), "--output", str(out), "--out", str(page_dir)]) == 0
    text = (page_dir / "report.html").read_text()
    assert "<b>&" not in text and "a/&lt;b&gt;&amp;&quot;y.png" in text
    page = _Page(text)
    assert [title for title, _ in page.rows] == ['a/<b>&"y.png', "a/x.png"]
    assert [[label for label, _, _ in cells] for _, cells in page.rows] == [["rendered", "translated"]] * 2
    # pictures first, the run's settings folded below them
    assert text.index("<figure") < text.index("<details") and "&quot;strength&quot;: 0.3" in text
    assert text.index("&quot;strength&quot;") > text.index('<details id="settings">')
    _self_contained(page_dir, page.links)
    with Image.open(page_dir / page.rows[1][1][0][1]) as im:  # the copy of the red source of a/x
        r, g, b = im.convert("RGB").getpixel((5, 5))
        assert r > 200 and g < 60
    with Image.open(page_dir / "report.png") as im:  # header, then rendered | translated
        left, right = im.getpixel((96, 24 + 128)), im.getpixel((192 + 96, 24 + 128))
    assert left[2] > 200 and left[0] < 60  # row 1: the blue rendered input on the left
    assert right[1] > 100 and right[0] < 60  # the green translation on the right
    # a second run replaces its own page; the translated folder it reads is never written
    before = sorted(p.relative_to(out).as_posix() for p in out.rglob("*"))
    assert main(["report", "--input", str(src), "--output", str(out), "--out", str(page_dir)]) == 0
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*")) == before
    assert len(pairs(src, out)) == 2
    # a report written into a translated folder by an older r2r is neither paired nor taken for outputs by evaluate
    shutil.copytree(page_dir, out, dirs_exist_ok=True)
    assert len(pairs(src, out)) == 2
    images, ignored = list_outputs(out)
    assert not any(i.startswith("report_files/") for i in images)
    assert {"report.png", "report.html", "report_files/"} <= set(ignored)


def test_report_errors_are_one_line(tmp_path, capsys):
    assert main(["report", "--out", str(tmp_path / "r")]) == 2
    assert "give `r2r evaluate` JSON files" in _err(capsys)
    assert main(["report", "--input", str(tmp_path)]) == 2
    assert "--input and --output go together" in _err(capsys)
    assert main(["report", "--input", str(tmp_path), "--output", str(tmp_path), "--out", str(tmp_path / "r"),
                 "--sort", "ssim"]) == 2
    assert "needs `r2r evaluate` results" in _err(capsys)
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    assert main(["report", str(bad), "--out", str(tmp_path / "r")]) == 2
    assert f"{bad}: not a readable JSON file" in _err(capsys)
    bad.write_text(json.dumps({"format": "something else"}))
    assert main(["report", str(bad), "--out", str(tmp_path / "r")]) == 2
    assert "not an `r2r evaluate` result" in _err(capsys)
    assert not (tmp_path / "r").exists()


# ------------------------------------------------------------------------------------------------ evaluations
def _scores(path: Path) -> dict:
    return {im["source_key"]: im for im in json.loads(path.read_text())["images"]}


def test_report_of_evaluations_pictures_first_sorted_scored_escaped_and_movable(evaluated, tmp_path):
    from r2r.evaluation.inputs import NativeImage
    from test_evaluate import _records

    from eval_world import OTHER

    ours, cut = _scores(evaluated["ours"]), _scores(evaluated["cut"])
    out = tmp_path / "report"
    assert main(["report", str(evaluated["ours"]), str(evaluated["cut"]), "--out", str(out), "--sort", "lpips",
                 "--image-format", "png"]) == 0
    text = (out / "report.html").read_text()
    page = _Page(text)
    # every source key either file scored; worst first by ours' LPIPS, the key ours did not score last
    expected = sorted(ours, key=lambda k: -ours[k]["lpips"]) + sorted(set(cut) - set(ours))
    assert [title for title, _ in page.rows] == expected
    for key, cells in page.rows:
        assert [label for label, _, _ in cells] == ["source", "ours", OTHER]
        for (label, link, caption), scores in zip(cells[1:], (ours, cut)):
            if key in scores:  # each method's output with its own per-image scores under it
                assert link is not None
                assert f"LPIPS {scores[key]['lpips']:.3f}" in caption and f"SSIM {scores[key]['ssim']:.3f}" in caption
            else:
                assert link is None and "untranslated" in caption
        assert cells[0][1] is not None  # the source is always shown
    # the method name is escaped everywhere; settings and protocol folded below the pictures
    assert "<i>CUT</i>" not in text and "&lt;i&gt;CUT&lt;/i&gt; &amp; &quot;co&quot;" in text
    assert text.index("<h2>Summary") < text.index("<figure") < text.index('<details id="settings">')  # numbers first
    assert "RANDOM WEIGHTS" in text and "torch-fidelity" in text[text.index('<details id="settings">'):]
    # the copied pictures are the images (PNG, and smaller than --max-side: exactly)
    recs = {rec.key: data for rec, data in _records()}
    key0 = next(k for k in expected if k in ours and k in cut)
    cells0 = dict(page.rows)[key0]
    with Image.open(out / cells0[0][1]) as im:
        assert np.array_equal(np.asarray(im.convert("RGB")), NativeImage()(recs[key0]).permute(1, 2, 0).numpy())
    translated = evaluated["root"] / "cut" / f"{key0}.png"
    with Image.open(out / cells0[2][1]) as im, Image.open(translated) as original:
        assert np.array_equal(np.asarray(im.convert("RGB")), np.asarray(original.convert("RGB")))
    # self-contained: moved elsewhere, every link still resolves inside the folder
    moved = tmp_path / "elsewhere" / "moved-report"
    moved.parent.mkdir()
    shutil.move(out, moved)
    _self_contained(moved, page.links)
    with Image.open(moved / "report.png") as im:
        assert im.width == 3 * 192 and im.height == 24 + 4 * 256
    # --limit: fewer rows, and the pictures the smaller page no longer uses are removed (our hashed names only)
    keep = moved / "report_files" / "user-notes.txt"
    keep.write_text("mine")
    before = len(list((moved / "report_files").iterdir()))
    assert main(["report", str(evaluated["ours"]), str(evaluated["cut"]), "--out", str(moved), "--limit", "1",
                 "--sort", "ssim"]) == 0
    small = _Page((moved / "report.html").read_text())
    assert len(small.rows) == 1 and small.rows[0][0] == min(ours, key=lambda k: ours[k]["ssim"])
    assert "1 of 4 source images" in (moved / "report.html").read_text()
    _self_contained(moved, small.links)
    files = list((moved / "report_files").iterdir())
    assert keep.read_text() == "mine" and len(files) == 1 + len({link for link in small.links}) < before


def test_an_evaluation_run_with_relative_paths_is_found_from_anywhere_and_after_a_move(evaluated, tmp_path,
                                                                                      monkeypatch):
    """evaluate was given paths relative to its folder; the JSON also records them relative to itself, so the
    report finds the images from another folder, and in a copy of the whole tree."""
    world = tmp_path / "world"
    shutil.copytree(evaluated["root"], world, ignore=shutil.ignore_patterns("eval"))
    monkeypatch.chdir(world)
    assert main(["evaluate", "--translated", "cut", "--source", "source", "--real", "real", "--out",
                 "eval/rel.json", "--method", "rel", "--random-weights", "--kid-subsets", "2", "--device", "cpu",
                 "--no-progress", "--num-workers", "0"]) in (0, 1)
    moved = tmp_path / "moved"
    shutil.move(world, moved)
    monkeypatch.chdir(tmp_path)
    assert main(["report", str(moved / "eval" / "rel.json"), "--out", str(tmp_path / "r")]) == 0
    page = _Page((tmp_path / "r" / "report.html").read_text())
    _self_contained(tmp_path / "r", page.links)
    assert len([link for link in page.links if link.startswith("report_files/")]) >= 4  # 2 sources + 2 outputs


def test_report_names_an_evaluation_whose_images_are_gone(evaluated, tmp_path, capsys):
    data = json.loads(evaluated["cut"].read_text())
    data["inputs"]["translated"] = str(tmp_path / "moved-away")
    gone = tmp_path / "cut.json"
    gone.write_text(json.dumps(data))
    assert main(["report", str(evaluated["ours"]), str(gone), "--out", str(tmp_path / "r")]) == 2
    err = _err(capsys)
    assert f"{gone}: cannot find the images it scored again" in err and "moved-away" in err
    assert not (tmp_path / "r").exists()
