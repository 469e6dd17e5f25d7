"""Two real `r2r evaluate` results on a tiny source, for the pages that read them back (`r2r report`,
`r2r study-page`): "ours" (a translated dataset) and a second method (a folder of outputs) whose name needs
HTML escaping. The two methods scored overlapping but different source images. CPU, random weights."""

from __future__ import annotations

from pathlib import Path

import pytest

from test_evaluate import FAST, _png, _records, write_source, write_translated_dataset

OTHER = '<i>CUT</i> & "co"'  # a method name a page must escape


def make_world(root: Path) -> dict:
    from r2r.cli import main

    source = write_source(root / "source")
    real = root / "real"
    real.mkdir()
    for i in range(3):
        (real / f"photo{i}.png").write_bytes(_png(100 + i, size=(36, 44)))
    recs = _records()
    ours = write_translated_dataset(root / "ours", source, {rec.key: _png(i, scale=0.8)
                                                            for i, (rec, _) in enumerate(recs[:3])})
    cut = root / "cut"
    cut.mkdir()
    for i in (0, 1, 3):
        (cut / f"{recs[i][0].key}.png").write_bytes(_png(i, scale=0.5))
    out = {"root": root, "source": source, "keys": [rec.key for rec, _ in recs]}
    for name, translated, method, extra in (("ours", ours, "ours", []),
                                            ("cut", cut, OTHER, ["--source", str(source)])):
        path = root / "eval" / f"{name}.json"
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("HF_DATASETS_OFFLINE", "1")
            code = main(["evaluate", "--translated", str(translated), "--real", str(real), "--out", str(path),
                         "--method", method, *extra, *FAST, "--num-workers", "0"])
        assert code in (0, 1), code  # 1: some source images untranslated (listed), as intended
        out[name] = path
    return out
