"""The evaluate JSON's one validating reader: every consumer (evaluate-table, report, study-page, ablate,
translate-dataset --eval-json) reads through `read_result`, so a malformed or hostile file is one error naming the
file and the field, never a traceback or a control sequence on the terminal."""

from __future__ import annotations

import copy
import json

import pytest

from r2r.evaluation.results import FORMAT, ResultError, read_result, write_result

GOOD = {
    "format": FORMAT, "method": "ours", "n": 2, "kid": 0.01, "kid_std": 0.001, "kid_x1000": 10.0,
    "kid_std_x1000": 1.0, "lpips": 0.1, "lpips_std": 0.01, "ssim": 0.9, "ssim_std": 0.02, "n_real": 5,
    "per_category": {"dress": {"n": 2, "kid": None, "lpips": 0.1, "ssim": 0.9}},
    "protocol": {"kid": {"weights": {"sha256": "random"}}, "lpips": {}, "ssim": {}},
    "inputs": {"translated": "out", "split": "test", "source": "src", "real": "real", "real_splits": ["train"]},
    "problems": {"unpaired": [], "unreadable": [], "untranslated": [], "real_unreadable": [], "ignored": []},
    "images": [{"name": "a", "source_key": "k1", "category": "dress", "lpips": 0.1, "ssim": 0.9}],
    "settings": {"batch_size": 2},
}


def _mutate(change) -> dict:
    doc = copy.deepcopy(GOOD)
    change(doc)
    return doc


BAD = [
    (lambda d: d.update(settings=[1, 2]), "field 'settings' must be dict, got list"),
    (lambda d: d.update(problems=["x"]), "field 'problems' must be dict, got list"),
    (lambda d: d.update(protocol=[]), "field 'protocol' must be dict, got list"),
    (lambda d: d["problems"].update(untranslated=3), "problems: field 'untranslated' must be list, got int"),
    (lambda d: d.update(n=int("9" * 400)), None),  # a 400-digit count parses, but as a score it is refused below
    (lambda d: d.update(kid_x1000=int("9" * 400)), "field 'kid_x1000' is not a finite number of sane size"),
    (lambda d: d.update(kid_x1000="12.3"), "field 'kid_x1000' is not a number"),
    (lambda d: d.update(method="evil\nname"), "field 'method' holds a control character"),
    (lambda d: d.update(method="\x1b[31mred"), "field 'method' holds a control character"),
    (lambda d: d["images"][0].update(lpips=[1]), r"images\[0\].lpips is not a number"),
    (lambda d: d["per_category"].update(dress=[]), "per_category: field 'dress' must be dict, got list"),
    (lambda d: d.pop("inputs"), "field 'inputs' must be dict, got missing"),
    (lambda d: d.update(format="other/1"), "not an `r2r evaluate` result"),
]


@pytest.mark.parametrize("change, message", BAD)
def test_a_malformed_result_is_one_error_naming_the_file_and_field(tmp_path, change, message):
    path = tmp_path / "r.json"
    path.write_text(json.dumps(_mutate(change)))
    if message is None:
        read_result(path)  # a big count is still an int; only scores must be sane numbers
        return
    with pytest.raises(ResultError, match=message) as err:
        read_result(path)
    assert str(path) in str(err.value) and "\n" not in str(err.value)


def test_the_writer_refuses_what_the_reader_would(tmp_path):
    write_result(tmp_path / "ok.json", copy.deepcopy(GOOD))
    assert read_result(tmp_path / "ok.json")["method"] == "ours"
    with pytest.raises(ResultError):
        write_result(tmp_path / "bad.json", _mutate(lambda d: d.update(kid="x")))
    assert not (tmp_path / "bad.json").exists()


def test_report_and_table_say_one_line_for_a_bad_file(tmp_path, capsys):
    from r2r.cli import main

    path = tmp_path / "r.json"
    path.write_text(json.dumps(_mutate(lambda d: d.update(method="a\nb"))))
    assert main(["evaluate-table", str(path)]) == 2
    err = capsys.readouterr().err
    assert "holds a control character" in err and err.count("\n") == 1
    assert main(["report", str(path), "--out", str(tmp_path / "page")]) == 2
    err = capsys.readouterr().err
    assert "holds a control character" in err and err.count("\n") == 1
