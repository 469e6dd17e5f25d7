"""Wrong results are not published: a NaN/inf latent or output is an error naming the image(s), nothing is written
for them (a rerun retries them), the good rows of the batch are kept; NaN input images are refused."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from r2r.cli import main
from r2r.models import ModelSpec, load_pipeline
from r2r.rig.pipeline import NonFiniteOutputError

FAST = ["--steps", "4", "--strength", "0.5", "--no-progress"]

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # see conftest.py


@pytest.fixture(scope="module")
def model(tiny_dki_model):
    return tiny_dki_model  # conftest.py: made once per test process


@pytest.fixture(scope="module")
def nan_unet(model, tmp_path_factory):
    """A finetuned-UNet folder whose output layer is NaN (what an overflowed finetune leaves)."""
    from diffusers import UNet2DConditionModel

    unet = UNet2DConditionModel.from_pretrained(str(model), subfolder="unet")
    with torch.no_grad():
        unet.conv_out.bias.fill_(float("nan"))
    out = tmp_path_factory.mktemp("nan") / "unet"
    unet.save_pretrained(out)
    return out


def _images(root, n):
    root.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        Image.fromarray(np.random.default_rng(i).integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(root / f"{i}.png")
    return root


def test_pipeline_names_the_bad_rows_and_keeps_the_good_ones(model):
    pipe = load_pipeline(ModelSpec(str(model)))
    x = torch.rand(3, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    good = pipe(x, num_inference_steps=4, strength=0.5, output_type="pt").images
    real_generate = pipe._generate

    def one_row_blows_up(*a, **kw):
        z = real_generate(*a, **kw)
        z[1] = float("nan")
        return z

    pipe._generate = one_row_blows_up
    with pytest.raises(NonFiniteOutputError, match=r"image\(s\) \[1\] of a batch of 3") as caught:
        pipe(x, num_inference_steps=4, strength=0.5, output_type="pt")
    assert caught.value.indices == [1]
    kept = caught.value.output.images
    assert torch.allclose(kept[[0, 2]], good[[0, 2]], atol=1e-6)
    with pytest.raises(NonFiniteOutputError):  # the latent output is checked as well
        pipe(x, num_inference_steps=4, strength=0.5, output_type="latent")
    x[2, 0, 5, 5] = float("nan")
    with pytest.raises(ValueError, match=r"image\(s\) \[2\] hold non-finite values"):
        pipe(x, num_inference_steps=4, strength=0.5)


def test_translate_writes_nothing_for_nan_outputs_and_a_rerun_retries(model, nan_unet, tmp_path, capsys):
    inputs = _images(tmp_path / "in", 3)
    out = tmp_path / "out"
    args = ["translate-images", "--model", str(model), "--input", str(inputs), "--output", str(out), "--batch-size",
            "2", *FAST]
    assert main([*args, "--unet", str(nan_unet)]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "3 image(s) came out non-finite (NaN/inf) and were not written" in errors[0]
    assert "0.png, 1.png, 2.png" in errors[0]
    assert not list(out.glob("*.png"))  # no black images published
    record = json.loads((out / "r2r_run.json").read_text())
    assert sorted(record["failed"]) == ["0.png", "1.png", "2.png"] and record["counts"]["translated"] == 0

    assert main([*args, "--unet", str(nan_unet)]) == 2  # a rerun retries them (nothing counts as finished)
    assert "translated 0, skipped 0 (existing), rejected 0, failed 3" in capsys.readouterr().err
    assert main([*args, "--overwrite"]) == 0  # the folder's settings name the NaN UNet: the fixed model overwrites
    assert sorted(p.name for p in out.glob("*.png")) == ["0.png", "1.png", "2.png"]
