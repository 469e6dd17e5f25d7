"""The `r2r` command: tiny-model, translate-images end to end (PNG names, JSON record, resume, settings guard)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from r2r.cli import build_parser, main
from r2r.models import ModelSpec, load_pipeline

FAST = ["--steps", "10", "--strength", "0.5", "--no-progress"]


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # see conftest.py


def _image(h, w, seed):
    return Image.fromarray(np.random.default_rng(seed).integers(1, 255, (h, w, 3), dtype=np.uint8), "RGB")


@pytest.fixture(scope="module")
def model(tiny_model):
    return tiny_model  # conftest.py: `r2r tiny-model`'s output, made once per test process


@pytest.fixture()
def inputs(tmp_path):
    root = tmp_path / "rendered"
    (root / "Dress").mkdir(parents=True)
    _image(64, 64, 1).save(root / "a.png")
    _image(64, 64, 2).save(root / "Dress" / "b.png")
    _image(48, 64, 3).save(root / "Dress" / "c.jpg", quality=95)
    _image(60, 64, 4).save(root / "odd.png")  # 64x60: not divisible by 8
    (root / "notes.txt").write_text("not an image")
    return root


def test_tiny_model_refuses_to_overwrite(model, capsys):
    assert (model / "model_index.json").is_file()
    assert main(["tiny-model", str(model)]) == 2
    assert "overwrite" in capsys.readouterr().err


def test_translate_images_end_to_end_and_resume(model, inputs, tmp_path, capsys):
    out = tmp_path / "real"
    args = ["translate-images", "--model", str(model), "--input", str(inputs), "--output", str(out),
            "--batch-size", "2", *FAST]
    assert main(args) == 1  # one input rejected
    err = capsys.readouterr().err
    assert "odd.png" in err and "64x60 is not divisible by 8" in err
    written = sorted(str(p.relative_to(out)) for p in out.rglob("*.png"))
    assert written == ["Dress/b.png", "Dress/c.png", "a.png"]
    record = json.loads((out / "r2r_run.json").read_text())
    assert record["state"] == "done" and record["counts"] == {"translated": 3, "skipped": 0, "rejected": 1}
    assert record["settings"]["params"]["strength"] == 0.5 and record["settings"]["params"]["tac_layers"] == 256
    assert record["settings"]["model"]["model_path"] == str(model.resolve())
    assert "odd.png" in record["rejected"] and "torch" in record["versions"]

    # lossless output == the pipeline's own output (batched with b.png there: rounding may flip a level)
    pipe = load_pipeline(ModelSpec(str(model)))
    src = Image.open(inputs / "a.png")
    expected = np.asarray(pipe(src, num_inference_steps=10, strength=0.5).images[0]).astype(int)
    diff = np.abs(np.asarray(Image.open(out / "a.png")).astype(int) - expected)
    assert diff.max() <= 1 and diff.mean() < 0.01, (diff.max(), diff.mean())

    # resume: existing outputs are skipped, a deleted one is translated again
    before = (out / "Dress" / "b.png").stat().st_mtime_ns
    (out / "a.png").unlink()
    assert main(args) == 1
    record = json.loads((out / "r2r_run.json").read_text())
    assert record["counts"] == {"translated": 1, "skipped": 2, "rejected": 1}
    assert (out / "a.png").is_file() and (out / "Dress" / "b.png").stat().st_mtime_ns == before
    assert not list(out.rglob("*.tmp-*"))

    # different settings in the same folder are refused
    changed = [a if a != "0.5" else "0.3" for a in args]
    assert main(changed) == 2
    assert "strength: 0.5 -> 0.3" in capsys.readouterr().err


def test_unreadable_and_clashing_inputs(model, tmp_path, capsys):
    root = tmp_path / "in"
    root.mkdir()
    _image(64, 64, 1).save(root / "good.png")
    (root / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    out = tmp_path / "out"
    args = ["translate-images", "--model", str(model), "--input", str(root), "--output", str(out), *FAST]
    assert main(args) == 1
    assert "broken.png: unreadable image" in capsys.readouterr().err
    assert (out / "good.png").is_file() and not (out / "broken.png").exists()
    _image(64, 64, 2).save(root / "good.jpg")
    assert main(args) == 2
    assert "would write the same output" in capsys.readouterr().err


def test_translate_options_reach_the_pipeline(model, tmp_path):
    root = tmp_path / "in"
    root.mkdir()
    _image(64, 64, 9).save(root / "x.png")
    outs = {}
    for name, extra in {"default": [], "no_tac": ["--no-tac"], "standard": ["--inversion-order", "standard"],
                        "blocks": ["--tac-layers", "none", "--tac-blocks", "up_blocks.3.*"]}.items():
        out = tmp_path / name
        assert main(["translate-images", "--model", str(model), "--input", str(root), "--output", str(out),
                     *FAST, *extra]) == 0
        outs[name] = np.asarray(Image.open(out / "x.png")).astype(int)
        params = json.loads((out / "r2r_run.json").read_text())["settings"]["params"]
        if name == "blocks":
            assert params["tac_layers"] is None and params["tac_blocks"] == ["up_blocks.3.*"]
    for name in ("no_tac", "standard", "blocks"):
        assert np.abs(outs[name] - outs["default"]).mean() > 0.1, name


def test_parser_is_extensible():
    import argparse

    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    assert {"tiny-model", "translate-images"} <= set(sub.choices)
    args = parser.parse_args(["translate-images", "--model", "m", "--input", "i", "--output", "o", "--no-tac",
                              "--mask", "--dtype", "bfloat16", "--device", "cuda", "--seed", "3"])
    assert args.no_tac and args.mask and args.dtype == "bfloat16" and args.seed == 3 and args.tac_layers == 256
    assert torch.__version__  # the command imports lazily; torch stays importable
