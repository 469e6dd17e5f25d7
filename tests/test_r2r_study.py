"""`r2r study-page` (seeded, recorded, balanced trials; a self-contained page whose embedded data no name can break
out of) and `r2r study-results` (percentages per comparison and question; malformed files refused with one line
naming the file). The page itself runs in a real browser in test_r2r_study_browser.py."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from r2r.cli import main
from r2r.pages.study import QUESTIONS, VOTES_FORMAT

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # see conftest.py


def _page_data(html_text: str) -> dict:
    block = re.search(r'<script type="application/json" id="study-data">(.*?)</script>', html_text, re.S).group(1)
    return json.loads(block)


def test_study_page_is_seeded_recorded_balanced_and_self_contained(evaluated, tmp_path):
    from eval_world import OTHER

    args = [str(evaluated["ours"]), str(evaluated["cut"]), "--n", "5"]
    assert main(["study-page", *args, "--out", str(tmp_path / "a")]) == 0
    assert main(["study-page", *args, "--out", str(tmp_path / "b")]) == 0
    a, b = (json.loads((tmp_path / x / "study.json").read_text()) for x in ("a", "b"))
    assert a == b and re.fullmatch(r"[0-9a-f]{12}", a["id"])  # the same seed draws the same study
    both = sorted(set(json.loads(evaluated["ours"].read_text())["images"][i]["source_key"] for i in range(3))
                  & {im["source_key"] for im in json.loads(evaluated["cut"].read_text())["images"]})
    assert sorted(t["source_key"] for t in a["trials"]) == both  # --n 5, but only 2 images were scored by both
    assert sorted(t["left"] for t in a["trials"]) == sorted(["ours", OTHER])  # sides balanced
    assert all({t["left"], t["right"]} == {"ours", OTHER} for t in a["trials"])
    assert a["methods"] == ["ours", OTHER] and [q["id"] for q in a["questions"]] == [q for q, _ in QUESTIONS]
    text = (tmp_path / "a" / "index.html").read_text()
    # the method name cannot close the data block or reach the markup: "<" is a \u escape inside the JSON
    start = text.index('id="study-data">')
    markup = text[:start] + text[text.index("</script>", start):]
    assert "<i>" not in text and "CUT" not in markup  # blind: only the data names the methods
    data = _page_data(text)
    assert data["id"] == a["id"] and [(t["id"], t["left"]["method"], t["right"]["method"]) for t in data["trials"]] \
        == [(t["id"], t["left"], t["right"]) for t in a["trials"]]
    for t in data["trials"]:
        for link in (t["source"], t["left"]["image"], t["right"]["image"]):
            assert re.fullmatch(r"study_files/[0-9a-f]{16}\.jpg", link) and (tmp_path / "a" / link).is_file()
    assert not re.search(r'(src|href)="(?!#)', text)  # no link in the markup: pictures come from the data
    # another seed: another draw of sides or order, and another study id (its votes are kept apart)
    seeds = set()
    for seed in range(1, 5):  # a page of another seed in the same folder: only with --overwrite (raters)
        assert main(["study-page", *args, "--seed", str(seed), "--out", str(tmp_path / "c"), "--overwrite"]) == 0
        c = json.loads((tmp_path / "c" / "study.json").read_text())
        seeds.add(json.dumps(c["trials"]))
    assert len(seeds | {json.dumps(a["trials"])}) > 1


def test_study_page_needs_two_results(evaluated, tmp_path, capsys):
    assert main(["study-page", str(evaluated["ours"]), "--out", str(tmp_path / "s")]) == 2
    err = capsys.readouterr().err
    assert "at least two" in err and len(err.strip().splitlines()) == 1 and not (tmp_path / "s").exists()


# ------------------------------------------------------------------------------------------------ study-results
def _vote(trial, left, right, question, choice):
    return {"trial": trial, "source_key": f"k{trial}", "left": left, "right": right, "question": question,
            "choice": choice, "preferred": left if choice == "left" else right}


def _votes_file(path: Path, votes: list[dict], session: str = "s1", methods=("ours", "CUT")) -> Path:
    path.write_text(json.dumps({"format": VOTES_FORMAT, "study": "abc123", "seed": 0, "methods": list(methods),
                                "questions": [q for q, _ in QUESTIONS], "session": session, "participant": "p",
                                "exported": "2025-01-01T00:00:00Z", "trials": 4, "votes": votes}))
    return path


def test_study_results_percentages(tmp_path, capsys):
    one = _votes_file(tmp_path / "one.json", [
        _vote("t1", "ours", "CUT", "realism", "left"), _vote("t2", "CUT", "ours", "realism", "right"),
        _vote("t3", "CUT", "ours", "realism", "left"), _vote("t1", "ours", "CUT", "quality", "right"),
        _vote("t1", "ours", "CUT", "consistency", "left")])
    two = _votes_file(tmp_path / "two.json", [
        _vote("t1", "ours", "CUT", "realism", "left"), _vote("t2", "CUT", "ours", "quality", "left")], session="s2")
    assert main(["study-results", str(one), str(two), "--json", "-"]) == 0
    result = json.loads(capsys.readouterr().out)
    (comp,) = result["comparisons"]
    assert comp["methods"] == ["ours", "CUT"] and result["votes"] == 7
    q = comp["questions"]
    # realism: ours 3 of 4 (t1 left=ours, t2 right=ours, t3 left=CUT, t1 again in the second file)
    assert q["realism"]["votes"] == 4 and q["realism"]["percent"] == {"ours": 75.0, "CUT": 25.0}
    assert q["quality"]["preferred"] == {"ours": 0, "CUT": 2} and q["quality"]["percent"]["CUT"] == 100.0
    assert q["consistency"]["percent"] == {"ours": 100.0, "CUT": 0.0}
    md = tmp_path / "table.md"
    assert main(["study-results", str(one), str(two), "--markdown", str(md)]) == 0
    out = capsys.readouterr().out
    assert "75.0% (3/4)" in out and "Pairwise preference" in out  # the rich table
    table = md.read_text()
    assert "| ours vs CUT | ours | 75.0% (3/4) | 0.0% (0/2) | 100.0% (1/1) |" in table
    assert "|  | CUT | 25.0% (1/4) | 100.0% (2/2) | 0.0% (0/1) |" in table


@pytest.mark.parametrize("change, message", [
    (lambda d: "{ not json", "not a readable JSON file"),
    (lambda d: {**d, "format": "r2r-study-votes/0"}, "not a votes file"),
    (lambda d: {**d, "methods": ["ours"]}, "'methods' must list at least two"),
    (lambda d: {**d, "votes": "many"}, "'votes' must be a list"),
    (lambda d: {**d, "votes": [{**d["votes"][0], "choice": "middle"}]}, "vote 1: choice 'middle'"),
    (lambda d: {**d, "votes": [{**d["votes"][0], "question": "beauty"}]}, "vote 1: question 'beauty'"),
    (lambda d: {**d, "votes": [{**d["votes"][0], "left": "CUT"}]}, "two different methods"),
    (lambda d: {**d, "votes": [{**d["votes"][0], "preferred": "CUT"}]}, "contradicts choice"),
    (lambda d: {**d, "votes": d["votes"] * 2}, "vote 2: trial 't1' is answered twice"),
    (lambda d: {**d, "votes": []}, "no votes in"),
])
def test_study_results_refuses_malformed_files_naming_them(tmp_path, capsys, change, message):
    good = json.loads(_votes_file(tmp_path / "good.json", [_vote("t1", "ours", "CUT", "realism", "left")])
                      .read_text())
    bad = tmp_path / "votes from alice.json"
    changed = change(good)
    bad.write_text(changed if isinstance(changed, str) else json.dumps(changed))
    assert main(["study-results", str(bad)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and str(bad) in err and message in err, err


def test_study_results_counts_a_session_once(tmp_path, capsys):
    a = _votes_file(tmp_path / "a.json", [_vote("t1", "ours", "CUT", "realism", "left")])
    copy = tmp_path / "copy.json"
    copy.write_text(a.read_text())
    assert main(["study-results", str(a), str(copy)]) == 2
    err = capsys.readouterr().err
    assert "copy.json: the same votes" in err and "counts once" in err
