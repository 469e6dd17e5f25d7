"""A new user's dead ends (issue 23), each checked where a user meets it: on the command line, in one line.

The whole README path is tests/test_readme_path.py; here, the ways off it: a bad photo, a caption-less folder, a
failed start, Ctrl-C, an unreachable or offline Hub, progress noise, and the smaller messages that named a Python
argument where a user types a flag. CPU, offline (the Hub is the local Hub-compatible server), tiny models.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from r2r.cli import main as r2r_main
from r2r.tiny import TinyModelConfig, save_tiny_model
from synfashion.cli import main as synfashion_main

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.usefixtures("one_torch_thread")  # see conftest.py
DKI_FAST = ["--steps", "1", "--resolution", "64", "--batch-size", "2", "--no-progress"]


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    cfg = TinyModelConfig(unet_channels=(16, 32), unet_layers_per_block=1)
    return save_tiny_model(tmp_path_factory.mktemp("nu") / "tiny", cfg)


def _photos(root: Path, n: int = 4, categories=("Dress",)) -> Path:
    """Real photos as the README lays them out: a folder per category (and a metadata.jsonl without captions)."""
    rng = np.random.default_rng(0)
    rows = []
    for cat in categories:
        (root / cat).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            Image.fromarray(rng.integers(0, 255, (80, 72, 3), dtype=np.uint8)).save(root / cat / f"p{i}.jpg")
            rows.append(json.dumps({"file_name": f"{cat}/p{i}.jpg", "category": cat}))
    (root / "metadata.jsonl").write_text("\n".join(rows) + "\n")
    return root


def _one_error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert "Traceback" not in err and lines, err
    return lines[-1]


# --------------------------------------------------------------------------------------------- 1. splits
def test_a_dataset_without_the_split_says_which_it_holds(built_dataset, tmp_path):
    from loaders.errors import LoaderError
    from loaders.hf import parquet_files

    translated = tmp_path / "r2r"
    shutil.copytree(built_dataset, translated)
    manifest = json.loads((translated / "manifest.json").read_text())
    manifest["kind"] = "translated"  # only what the hint reads: which splits, and whose dataset
    manifest["shards"] = [s for s in manifest["shards"] if s["split"] == "test"]
    (translated / "manifest.json").write_text(json.dumps(manifest))
    for p in (translated / "data" / "renders").glob("train-*"):
        p.unlink()
    with pytest.raises(LoaderError) as e:
        parquet_files(translated, "train")
    msg = str(e.value)
    assert "holds the split(s) test and no 'train'" in msg and "--split test --split train" in msg
    assert "written by `synfashion build`" not in msg


# --------------------------------------------------------------------------------------------- 2. captions
def test_train_positive_on_a_folder_without_captions_names_the_flag(model, tmp_path, capsys):
    photos = _photos(tmp_path / "photos")
    code = r2r_main(["train-positive", "--model", str(model), "--real", str(photos), "--out", str(tmp_path / "pos"),
                     "--num-workers", "0", *DKI_FAST])
    line = _one_error_line(capsys.readouterr().err)
    assert code == 2 and "--captions none" in line and "--caption-column NAME" in line
    assert "caption_column" not in line and "captions='none'" not in line


# --------------------------------------------------------------------------------------------- 6. bad images
def test_an_undecodable_photo_is_one_line_naming_it_and_the_skip_flag(model, tmp_path, capsys):
    photos = _photos(tmp_path / "photos")
    (photos / "Dress" / "IMG_0042.jpg").write_text("not an image")
    args = ["train-positive", "--model", str(model), "--real", str(photos), "--captions", "none",
            "--num-workers", "1", *DKI_FAST]  # a DataLoader worker: its traceback must not reach the user
    assert r2r_main([*args, "--out", str(tmp_path / "pos")]) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert "IMG_0042" in line and "--skip-bad-images" in line and "on_error" not in line and "loader." not in line

    out = tmp_path / "pos-skip"
    assert r2r_main([*args, "--out", str(out), "--skip-bad-images"]) == 0
    err = capsys.readouterr().err
    assert "skipped 1 undecodable image(s)" in err and "IMG_0042" in err
    record = json.loads((out / "training_run.json").read_text())
    assert len(record["skipped_images"]) == 1 and "IMG_0042" in record["skipped_images"][0]
    mode = (out / "pytorch_lora_weights.safetensors").stat().st_mode & 0o777
    assert mode & 0o044, oct(mode)  # readable by others, as every other output (safetensors writes 0600)


def test_downstream_checks_the_photos_before_training(built_dataset, tmp_path, capsys):
    photos = _photos(tmp_path / "photos", n=2, categories=("Dress", "Coat"))
    (photos / "Coat" / "IMG_0042.jpg").write_bytes(b"\xff\xd8 not a jpeg")
    args = ["downstream", "--train", f"rendered={built_dataset}", "--test-real", str(photos), "--arch",
            "resnet-tiny", "--size", "32x48", "--epochs", "1", "--batch-size", "32", "--num-workers", "0",
            "--device", "cpu", "--no-progress", "--test-split", ""]
    out = tmp_path / "ds"
    t0 = time.perf_counter()
    assert r2r_main([*args, "--out", str(out)]) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert "IMG_0042.jpg" in line and "--skip-bad-images" in line
    assert not (out / "checkpoints").exists() and time.perf_counter() - t0 < 60  # before any training
    assert r2r_main([*args, "--out", str(out), "--skip-bad-images"]) == 0
    assert "IMG_0042.jpg (unreadable image" in capsys.readouterr().err
    real = json.loads((out / "results.json").read_text())["test_sets"]["real"]
    assert real["images"] == 4 and [u["file"] for u in real["unmatched"]] == ["Coat/IMG_0042.jpg"]


def test_evaluate_accepts_unreadable_photos_with_the_same_flag(tmp_path, monkeypatch, capsys):
    import datasets

    from tests.test_evaluate import FAST, _png, _records, write_source, write_translated_dataset

    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "hf-cache")
    source = write_source(tmp_path / "source")
    translated = write_translated_dataset(tmp_path / "ours", source,
                                          {rec.key: _png(i, scale=0.8) for i, (rec, _) in enumerate(_records())})
    real = tmp_path / "real"
    real.mkdir()
    for i in range(3):
        (real / f"photo{i}.png").write_bytes(_png(100 + i, size=(36, 44)))
    (real / "IMG_0042.jpg").write_text("not an image")
    args = ["evaluate", "--translated", str(translated), "--real", str(real), *FAST, "--num-workers", "0"]
    assert r2r_main([*args, "--out", str(tmp_path / "a.json")]) == 1
    err = " ".join(capsys.readouterr().err.split())
    assert "IMG_0042.jpg" in err and "pass --skip-bad-images" in err
    assert r2r_main([*args, "--out", str(tmp_path / "b.json"), "--skip-bad-images"]) == 0
    listed = json.loads((tmp_path / "b.json").read_text())["problems"]["real_unreadable"]
    assert [u["key"] for u in listed] == ["IMG_0042"]


def test_a_worker_traceback_becomes_its_original_message():
    wrapped = ("Caught SampleDecodeError in DataLoader worker process 1.\nOriginal Traceback (most recent call "
               "last):\n  File \"x.py\", line 1, in f\n    raise\nloaders.errors.SampleDecodeError: cannot decode "
               "sample 'a' from /p/a.jpg: OSError: truncated. Fix or remove the file, or pass on_error='skip' to "
               "skip such samples (they are counted and reported in loader.skipped).\n")
    import argparse

    from loaders.errors import SampleDecodeError
    from synfashion import cliexit

    text = cliexit.error_text(SampleDecodeError(wrapped), argparse.Namespace(skip_bad_images=False))
    assert text == ("cannot decode sample 'a' from /p/a.jpg: OSError: truncated. Fix or remove the file, or pass "
                    "--skip-bad-images to skip such samples (they are counted and reported in the run's output).")
    assert cliexit.error_text(SampleDecodeError(wrapped), argparse.Namespace()).endswith("in loader.skipped).")


# --------------------------------------------------------------------------------------------- 5. settings
def test_the_settings_comparison_normalises_and_names_only_what_differs():
    from synfashion.settings import differences

    assert differences({"params": {"tac_blocks": [], "size": [8, 8], "out": "a"}},
                       {"params": {"tac_blocks": (), "size": (8, 8), "out": Path("a")}}) == []
    assert differences({"method_config": {"lora_rank": 16, "full": False}},
                       {"method_config": {"lora_rank": 8, "full": False}}) == ["method_config.lora_rank: 16 -> 8"]
    assert differences({"a": 1, "plans": [1]}, {"a": 1.0, "plans": [2]}, ignore=("plans",)) == []


def test_a_failed_start_does_not_block_the_corrected_rerun(model, built_dataset, tmp_path, capsys):
    out = tmp_path / "r2r"

    def args(steps: int = 4) -> list[str]:
        return ["translate-dataset", str(built_dataset), str(out), "--model", str(model), "--split", "test",
                "--limit", "2", "--batch-size", "2", "--resize", "48x64", "--steps", str(steps), "--strength", "0.5",
                "--no-progress", "--num-workers", "0"]

    if not torch.cuda.is_available():
        assert r2r_main([*args(), "--device", "cuda"]) == 2
        assert "CUDA is not available" in capsys.readouterr().err
    assert r2r_main([*args(), "--device", "cpu"]) == 0, capsys.readouterr().err
    # a real difference into the finished folder is still refused, naming only the setting that changed
    assert r2r_main(args(steps=6)) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert "params.num_inference_steps: 4 -> 6" in line and "tac_blocks" not in line


def test_build_names_the_setting_that_differs(sample_release, tmp_path, capsys):
    out = tmp_path / "built"
    assert synfashion_main(["build", str(sample_release), str(out), "--workers", "1", "--shard-size", "1MB"]) == 0
    capsys.readouterr()
    assert synfashion_main(["build", str(sample_release), str(out), "--workers", "1", "--shard-size", "2MB"]) == 2
    err = capsys.readouterr().err
    assert "shard_size: 1048576 -> 2097152" in err and "Traceback" not in err


# --------------------------------------------------------------------------------------------- 4. Hub DKI offline
@pytest.fixture
def local_hub(monkeypatch, tmp_path):
    """The local Hub-compatible server, with this process's huggingface_hub pointed at it (online) and an empty
    cache; no retry pauses."""
    import types

    from huggingface_hub import constants
    from huggingface_hub.utils import _http

    from r2r.models import resolve
    from synfashion.testing.hub_server import running_hub

    with running_hub() as hub:
        monkeypatch.setattr(constants, "ENDPOINT", hub.endpoint)
        monkeypatch.setattr(constants, "HUGGINGFACE_CO_URL_TEMPLATE", hub.endpoint + "/{repo_id}/resolve/{revision}/"
                            "{filename}")
        monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
        monkeypatch.setattr(constants, "HF_HUB_DISABLE_XET", True)
        monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub-cache"))
        monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(tmp_path / "no-login"))
        monkeypatch.setattr(_http, "time", types.SimpleNamespace(sleep=lambda s: None))
        monkeypatch.setattr(resolve, "_FETCHED", {})
        yield hub


def _push_embedding(hub, repo: str, tmp_path: Path) -> str:
    from huggingface_hub import HfApi
    from safetensors.torch import save_file

    from synfashion.testing.hub_server import DEFAULT_TOKEN

    path = tmp_path / "learned_embeds.safetensors"
    save_file({"<rendered>": torch.randn(1, 32)}, str(path))
    api = HfApi(endpoint=hub.endpoint, token=DEFAULT_TOKEN)
    api.create_repo(repo, private=False)
    api.upload_file(path_or_fileobj=str(path), path_in_repo=path.name, repo_id=repo)
    return hub.head(repo, repo_type="model")


def test_a_downloaded_hub_embedding_is_found_offline_and_pinning_its_commit_changes_nothing(local_hub, monkeypatch,
                                                                                         tmp_path):
    from huggingface_hub import constants

    from r2r.config import ModelSpec
    from r2r.models import model_identity, resolve
    from synfashion.settings import differences
    from synfashion.testing.hub_server import DEFAULT_USER

    repo = f"{DEFAULT_USER}/fashion-neg"
    commit = _push_embedding(local_hub, repo, tmp_path)
    online = resolve.hub_artifact(repo, "embedding")
    assert online.commit == commit and online.path.is_file()
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "model_index.json").write_text("{}")
    ident = model_identity(ModelSpec(str(folder), negative_embedding=repo))

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)  # the same argument, offline, from the cache
    monkeypatch.setattr(resolve, "_FETCHED", {})
    assert resolve.hub_artifact(repo, "embedding").path == online.path
    assert differences(ident, model_identity(ModelSpec(str(folder), negative_embedding=repo))) == []
    pinned = model_identity(ModelSpec(str(folder), negative_embedding=f"{repo}@{commit}"))
    assert differences(ident, pinned) == []  # owner/name and owner/name@<that commit>: one setting


def test_an_embedding_downloaded_pinned_is_found_offline_by_its_name(local_hub, monkeypatch, tmp_path):
    from huggingface_hub import constants

    from r2r.models import resolve
    from synfashion.testing.hub_server import DEFAULT_USER

    repo = f"{DEFAULT_USER}/fashion-neg"
    commit = _push_embedding(local_hub, repo, tmp_path)
    resolve.hub_artifact(f"{repo}@{commit}", "embedding")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    assert resolve.hub_artifact(repo, "embedding").commit == commit


# --------------------------------------------------------------------------------------------- 7. unreachable Hub
def test_an_unreachable_hub_is_one_fast_line_naming_the_offline_way(built_dataset, tmp_path, monkeypatch, capsys):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "ENDPOINT", "http://127.0.0.1:9")  # the discard port: nothing listens
    monkeypatch.setattr(constants, "HUGGINGFACE_CO_URL_TEMPLATE", "http://127.0.0.1:9/{repo_id}/resolve/{revision}/"
                        "{filename}")
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    from synfashion.hub import reach

    monkeypatch.setattr(reach, "_ANSWERS", {})  # ask again: this process may have asked another endpoint
    t0 = time.perf_counter()
    code = r2r_main(["downstream", "--train", f"rendered={built_dataset}", "--out", str(tmp_path / "ds"),
                     "--num-workers", "0", "--no-progress"])  # the default --model microsoft/resnet-18
    line = _one_error_line(capsys.readouterr().err)
    assert code == 2 and "cannot reach http://127.0.0.1:9" in line and "--arch resnet18" in line
    assert time.perf_counter() - t0 < 30  # no minutes of "Retrying in 8s"


# --------------------------------------------------------------------------------------------- 8. hub-server
def test_hub_server_prints_the_environment_and_stops_on_ctrl_c(tmp_path, warm):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([warm.python, "-m", "synfashion.cli", "hub-server", "--port", "0"], cwd=tmp_path,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        lines = [proc.stdout.readline() for _ in range(3)]
        export = next(line for line in lines if line.startswith("export "))
        endpoint = re.search(r"HF_ENDPOINT=(http://127\.0\.0\.1:\d+)", export).group(1)
        assert "HF_HUB_DISABLE_XET=1" in export and "HF_TOKEN=" in export
        import socket

        host, port = endpoint.removeprefix("http://").split(":")
        socket.create_connection((host, int(port)), timeout=10).close()  # it serves
    except Exception:
        proc.kill()
        raise
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0 and "hub server stopped" in err and "Traceback" not in err
    module = subprocess.run([warm.python, "-m", "synfashion.testing.hub_server"], env=env, capture_output=True,
                            text=True, timeout=60)
    assert module.returncode != 0 and "synfashion hub-server" in module.stderr


# --------------------------------------------------------------------------------------------- 9. Ctrl-C
def test_ctrl_c_is_one_line_promptly_and_the_same_command_resumes(model, built_dataset, tmp_path, warm):
    """Through the warm interpreter's processes (tests/conftest.py `warm`): the SIGINT sent to the client is the
    command's."""
    interrupted, exit_status = "interrupted; run the same command again to resume", 130
    out = tmp_path / "r2r"
    cmd = [warm.python, "-m", "r2r.cli", "translate-dataset", str(built_dataset), str(out), "--model", str(model),
           "--split", "test", "--limit", "8", "--batch-size", "1", "--resize", "48x64", "--steps", "10",
           "--strength", "0.5", "--no-progress", "--num-workers", "1"]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    units = out / ".synfashion-build" / "staged" / "units"
    deadline = time.time() + 240
    while proc.poll() is None and time.time() < deadline and not any(units.glob("*.json")):
        time.sleep(0.05)
    assert proc.poll() is None, "it finished before the interruption: slow the run down"
    proc.send_signal(signal.SIGINT)
    t0 = time.perf_counter()
    _, err = proc.communicate(timeout=60)
    stopped = time.perf_counter() - t0
    assert proc.returncode == exit_status and _one_error_line(err) == interrupted, err
    assert stopped < 10, f"{stopped:.1f}s to stop"
    again = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr
    assert re.search(r"[1-9]\d* from earlier runs", again.stderr.replace("\n", " ")), again.stderr


def test_a_process_pool_stops_its_workers_at_ctrl_c():
    from synfashion.parallel import parallel_map

    timer = threading.Timer(1.0, os.kill, (os.getpid(), signal.SIGINT))
    t0 = time.perf_counter()
    timer.start()
    with pytest.raises(KeyboardInterrupt):
        list(parallel_map(time.sleep, [30.0] * 4, workers=2, chunksize=1, progress=False))
    assert time.perf_counter() - t0 < 10  # not the 30 s the running jobs would take


# --------------------------------------------------------------------------------------------- 10. output
def test_library_bars_are_off_when_stderr_is_not_a_terminal(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}  # tiny tensors: threads only spin
    proc = subprocess.run([sys.executable, "-m", "r2r.cli", "tiny-model", str(tmp_path / "tiny")], env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0 and "it/s]" not in proc.stderr and "Writing" not in proc.stderr, proc.stderr
    assert (tmp_path / "tiny" / "unet" / "diffusion_pytorch_model.safetensors").stat().st_mode & 0o044


def test_translation_reports_every_step_of_a_batch(model):
    from r2r.config import ModelSpec, RIGParams
    from r2r.translate.engine import Translator

    steps: list[tuple[int, int]] = []
    translator = Translator(ModelSpec(str(model)), RIGParams(num_inference_steps=8, strength=0.5))
    images = torch.randint(0, 255, (2, 3, 32, 32), dtype=torch.uint8)
    translator(images, ["a", "b"], on_step=lambda done, total: steps.append((done, total)))
    assert steps == [(i, 8) for i in range(1, 9)]  # 4 inversion + 4 denoising steps


def test_verify_prints_its_verdict_on_stdout_and_progress_on_stderr(built_dataset, warm):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([warm.python, "-m", "synfashion.cli", "verify", str(built_dataset), "--workers", "1"],
                          env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0 and proc.stdout.startswith("OK ") and "verifying" not in proc.stdout
    assert "OK " not in proc.stderr


# --------------------------------------------------------------------------------------------- smaller ones
def test_smaller_messages_name_flags_and_files(tmp_path, capsys, tiny_model):
    # a folder holding a tiny model already: the flag that replaces it, in the command's words (a folder of the
    # user's own files is refused whatever the flags: tests/test_folder_ownership.py)
    shutil.copytree(tiny_model, tmp_path / "full")
    assert r2r_main(["tiny-model", str(tmp_path / "full")]) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert "pass --overwrite to replace it" in line and "overwrite=True" not in line

    assert synfashion_main(["verify", str(tmp_path / "typo")]) == 1
    out = capsys.readouterr().out
    assert "no such folder" in out and "interrupted" not in out

    release = tmp_path / "release" / "Dress"
    release.mkdir(parents=True)
    Image.new("RGB", (16, 16)).save(release / "IMG_1234.jpg")
    assert synfashion_main(["build", str(tmp_path / "release"), str(tmp_path / "out"), "--workers", "1"]) == 2
    err = capsys.readouterr().err
    assert "--pattern" in err and "--metadata" in err


def test_every_no_progress_option_says_what_it_does():
    import argparse

    import r2r.cli
    import synfashion.cli

    for parser in (r2r.cli.build_parser(), synfashion.cli.make_parser()):
        sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        for name, p in sub.choices.items():
            for action in p._actions:
                if "--no-progress" in action.option_strings:
                    assert action.help, f"{parser.prog} {name} --no-progress has no help"
    description = synfashion.cli.make_parser().description
    assert "Argument parsing only" not in description and "Hugging Face dataset" in description
