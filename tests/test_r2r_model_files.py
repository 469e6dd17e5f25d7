"""Malformed model inputs are one clear line (exit 2) naming the file and the problem, for translation and training:
pickles renamed .safetensors, folders of .bin only, truncated files, empty / integer / NaN embeddings and LoRAs, a
path-looking --model that does not exist, an uncached Hub id in offline mode, a LoRA made for another model."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file, save_file

from r2r.cli import main
from r2r.models import ModelFileError, check_safetensors, looks_like_path

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # see conftest.py


@pytest.fixture(scope="module")
def model(tiny_dki_model):
    return tiny_dki_model  # conftest.py: made once per test process


@pytest.fixture(scope="module")
def bad(tmp_path_factory, model):
    """One malformed input of every kind."""
    d = tmp_path_factory.mktemp("bad")
    torch.save({"<r>": torch.zeros(1, 32)}, d / "pickled.safetensors")
    save_file({"<r>": torch.randn(4, 32)}, str(d / "good.safetensors"))
    data = (d / "good.safetensors").read_bytes()
    (d / "truncated.safetensors").write_bytes(data[:-100])
    save_file({"<r>": torch.zeros(0, 32)}, str(d / "empty.safetensors"))
    save_file({"<r>": torch.zeros(1, 32, dtype=torch.int64)}, str(d / "int.safetensors"))
    save_file({"<r>": torch.full((1, 32), float("nan"))}, str(d / "nan.safetensors"))
    (d / "lora-bin").mkdir()
    torch.save({"unet.x.lora_A.weight": torch.zeros(2, 2)}, d / "lora-bin" / "pytorch_lora_weights.bin")
    torch.save({"unet.x.lora_A.weight": torch.zeros(2, 2)}, d / "lora-pickled.safetensors")
    save_file({"unet.x.lora_A.weight": torch.full((2, 2), float("inf"))}, str(d / "lora-inf.safetensors"))
    save_file({"unet.nowhere.lora_A.weight": torch.zeros(2, 8), "unet.nowhere.lora_B.weight": torch.zeros(8, 2)},
              str(d / "lora-other-model.safetensors"))
    weights = load_file(str(model / "unet" / "diffusion_pytorch_model.safetensors"))
    for name, write in (("unet-bin", "bin"), ("unet-pickled", "renamed"), ("unet-truncated", "truncated")):
        shutil.copytree(model / "unet", d / name)
        target = d / name / "diffusion_pytorch_model.safetensors"
        if write == "bin":
            target.unlink()
            torch.save(weights, d / name / "diffusion_pytorch_model.bin")
        elif write == "renamed":
            torch.save(weights, target)
        else:
            target.write_bytes(target.read_bytes()[:-4096])
    shutil.copytree(model, d / "pipe-bin")
    for f in (d / "pipe-bin").glob("*/*.safetensors"):
        torch.save(load_file(str(f)), f.with_suffix(".bin"))
        f.unlink()
    return d


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    root = tmp_path_factory.mktemp("in")
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(root / "a.png")
    return root


CASES = {  # argument (relative to the `bad` folder) -> words the one error line must hold
    "--negative-embedding pickled.safetensors": "pickled.safetensors: embedding file is a torch.save (zip + pickle) "
                                                "file named .safetensors, not safetensors; pickles are refused",
    "--negative-embedding truncated.safetensors": "truncated.safetensors: embedding file is truncated",
    "--negative-embedding empty.safetensors": "empty.safetensors: embedding for '<r>' is empty (shape [0, 32])",
    "--negative-embedding int.safetensors": "int.safetensors: embedding tensor '<r>' has dtype torch.int64",
    "--negative-embedding nan.safetensors": "nan.safetensors: embedding tensor '<r>' holds 32 non-finite value(s)",
    "--lora lora-pickled.safetensors": "lora-pickled.safetensors: LoRA file is a torch.save (zip + pickle) file",
    "--lora lora-bin": "lora-bin: the LoRA folder holds only pickled weights (pytorch_lora_weights.bin); only "
                       "safetensors are loaded, pickles are refused",
    "--lora lora-inf.safetensors": "lora-inf.safetensors: LoRA tensor 'unet.x.lora_A.weight' holds 4 non-finite",
    "--lora lora-other-model.safetensors": "lora-other-model.safetensors (made for another model",
    "--unet unet-bin": "unet-bin: the UNet folder holds only pickled weights (diffusion_pytorch_model.bin)",
    "--unet unet-pickled": "unet-pickled/diffusion_pytorch_model.safetensors: weights file is a torch.save",
    "--unet unet-truncated": "unet-truncated/diffusion_pytorch_model.safetensors: weights file is truncated",
    "--model pipe-bin": "pipe-bin/unet: the pipeline's unet holds only pickled weights",
}


def _one_error_line(err: str) -> str:
    assert "Traceback" not in err, err
    lines = [line for line in err.splitlines() if line.strip() and not line.lstrip().startswith(("Loading", "\r"))]
    errors = [line for line in lines if line.startswith("error: ")]
    assert len(errors) == 1 and len(lines) == 1, lines
    return errors[0]


@pytest.mark.parametrize("arg", list(CASES))
def test_translate_names_the_bad_file(arg, model, bad, images, tmp_path, capsys):
    flag, name = arg.split()
    argv = ["translate-images", "--model", str(model), "--input", str(images), "--output", str(tmp_path / "out"),
            "--steps", "4", "--no-progress", flag, str(bad / name)]
    if flag == "--model":
        argv[2] = str(bad / name)
    assert main(argv) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert CASES[arg] in line, line
    if "pickled weights" in CASES[arg]:
        assert "convert them once" in line and "save_pretrained" in line or "save_file" in line
    assert not (tmp_path / "out" / "a.png").exists()


def test_missing_local_model_and_uncached_hub_id(model, images, tmp_path, capsys, monkeypatch):
    from huggingface_hub import constants

    argv = ["translate-images", "--input", str(images), "--output", str(tmp_path / "out"), "--no-progress", "--model"]
    assert main([*argv, "./no-such-folder"]) == 2
    assert _one_error_line(capsys.readouterr().err) == "error: model folder not found: ./no-such-folder"
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    assert main([*argv, "nobody-r2r-tests/not-cached-model"]) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert line.startswith("error: nobody-r2r-tests/not-cached-model: not in the local Hugging Face cache, and "
                           "offline mode is on (HF_HUB_OFFLINE=1)"), line
    # the same checks guard training
    renders = images
    train = ["train-negative", "--renders", str(renders), "--out", str(tmp_path / "neg"), "--no-progress",
             "--num-workers", "0", "--resolution", "64", "--min-size", "64"]
    assert main([*train, "--model", "../no/such/model"]) == 2
    assert _one_error_line(capsys.readouterr().err) == "error: model folder not found: ../no/such/model"
    assert main([*train, "--model", "nobody-r2r-tests/not-cached-model"]) == 2
    assert "not in the local Hugging Face cache" in _one_error_line(capsys.readouterr().err)


def test_training_refuses_bad_init_embeddings_and_bin_only_models(model, bad, images, tmp_path, capsys):
    train = ["train-negative", "--renders", str(images), "--no-progress", "--num-workers", "0", "--resolution", "64",
             "--steps", "1"]
    for name, words in (("pickled.safetensors", "pickles are refused"), ("nan.safetensors", "non-finite"),
                        ("empty.safetensors", "is empty")):
        out = tmp_path / name
        assert main([*train, "--model", str(model), "--out", str(out), "--init-embedding", str(bad / name)]) == 2
        line = _one_error_line(capsys.readouterr().err)
        assert str(bad / name) in line and words in line, line
    assert main([*train, "--model", str(bad / "pipe-bin"), "--out", str(tmp_path / "o")]) == 2
    assert "holds only pickled weights" in _one_error_line(capsys.readouterr().err)


def test_check_safetensors_and_path_rules(bad):
    check_safetensors(bad / "good.safetensors")
    for name in ("pickled.safetensors", "truncated.safetensors"):
        with pytest.raises(ModelFileError, match=name):
            check_safetensors(bad / name)
    assert looks_like_path("./x") and looks_like_path("/abs") and looks_like_path("a/b/c") and looks_like_path("~/m")
    assert not looks_like_path("org/name") and not looks_like_path("name")
