"""`r2r translate-dataset` through real processes: killed with SIGKILL and run again, two ranks under torchrun, and the
Hub (a translated dataset pushed and loaded back by repo id; a Hub repo as the source, pinned to its commit).

Apart from tests/test_translate_dataset.py so that the two files run side by side in the test workers.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from r2r.cli import main
from synfashion.manifest import Manifest
from synfashion.verify import verify_dataset
from tests.translate_world import ROOT, _args, _tree

pytestmark = pytest.mark.usefixtures("one_torch_thread")

CLIENT = r"""
import hashlib, json, sys
import datasets
datasets.disable_progress_bars()
sha = lambda b: hashlib.sha256(b).hexdigest()
out = {}
for config, column in (("renders", "image"), ("pairs", "translated_image")):
    ds = datasets.load_dataset(sys.argv[1], config, split="test").cast_column(column, datasets.Image(decode=False))
    out[config] = {row["key"]: sha(row[column]["bytes"]) for row in ds}
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def model(tiny_model):
    return tiny_model  # conftest.py: `r2r tiny-model`'s output, made once per test process


@pytest.fixture(scope="module")
def source(translate_source):
    return translate_source  # conftest.py: a small built SynFashion folder with a sidecar column


@pytest.fixture(scope="module")
def translated(translated_dataset):
    return translated_dataset  # conftest.py: translate_world.args(model, source, OUT) run once per test process


def _wait_for_unit(out: Path, proc: subprocess.Popen, timeout: float = 120.0) -> None:
    units = out / ".synfashion-build" / "staged" / "units"
    end = time.monotonic() + timeout
    while time.monotonic() < end and proc.poll() is None:
        if units.is_dir() and any(units.glob("*.json")):
            return
        time.sleep(0.05)
    raise AssertionError("no batch was committed before the timeout")


def test_kill_9_and_rerun_is_byte_identical(model, source, tmp_path, capsys, warm):
    """A run killed with SIGKILL after its first batch, run again, gives the bytes of an uninterrupted run. Only the
    killed run needs a process of its own (one of the warm interpreter's, tests/conftest.py `warm`); the rerun and
    the uninterrupted run are this process (one torch thread here and there: the same float sums, so the same
    bytes)."""
    out = tmp_path / "killed"
    args = _args(model, source, out, "--batch-size", "1")
    proc = subprocess.Popen([warm.python, "-m", "r2r.cli", *args], cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, env={**os.environ, "OMP_NUM_THREADS": "1"})
    _wait_for_unit(out, proc)
    assert warm.kill(proc, signal.SIGKILL) == -signal.SIGKILL  # the command itself, then its client
    assert not (out / "manifest.json").exists()
    capsys.readouterr()
    assert main(args) == 0
    assert "from earlier runs" in " ".join(capsys.readouterr().err.split())
    uninterrupted = tmp_path / "whole"
    assert main(_args(model, source, uninterrupted, "--batch-size", "1")) == 0
    assert _tree(out) == _tree(uninterrupted)


def test_two_ranks_give_the_same_bytes_as_one(model, source, tmp_path, warm):
    """torchrun with two CPU processes (gloo; the warm interpreter's), and two --rank runs plus --finalize, against
    one process."""
    one = tmp_path / "one"
    # several shards (one garment each at most), so each rank has some; 4 steps (one denoising step): the ranks
    # and their bytes are tested, not the translation
    extra = ["--shard-size", "6KB", "--steps", "4"]
    assert main(_args(model, source, one, *extra)) == 0
    assert len(Manifest.read(one).shards_where(format="webdataset")) >= 2

    two = tmp_path / "torchrun"
    cmd = [warm.python, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "r2r.cli",
           *_args(model, source, two, *extra)]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr[-3000:]
    assert _tree(two) == _tree(one)

    manual = tmp_path / "manual"
    for rank in (1, 0):
        assert main(_args(model, source, manual, *extra, "--rank", str(rank), "--world-size", "2")) == 0
        assert not (manual / "manifest.json").exists()
    assert main(_args(model, source, manual, *extra, "--finalize")) == 0
    assert _tree(manual) == _tree(one)


def test_push_and_load_back_by_repo_id(translated, tmp_path):
    from rich.console import Console

    from synfashion.hub import push_dataset
    from synfashion.testing.hub_server import DEFAULT_TOKEN, DEFAULT_USER, running_hub

    repo = f"{DEFAULT_USER}/synfashion-r2r"
    with running_hub() as hub:
        from huggingface_hub import constants

        saved = constants.HF_HUB_OFFLINE, constants.HF_HUB_DISABLE_XET
        constants.HF_HUB_OFFLINE, constants.HF_HUB_DISABLE_XET = False, True
        try:
            push_dataset(translated, repo, endpoint=hub.endpoint, token=DEFAULT_TOKEN, progress=False,
                         console=Console(file=__import__("io").StringIO()))
        finally:
            constants.HF_HUB_OFFLINE, constants.HF_HUB_DISABLE_XET = saved
        assert hub.is_private(repo)
        proc = subprocess.run([sys.executable, "-c", CLIENT, repo], cwd=ROOT, timeout=300, capture_output=True,
                              text=True, env=hub.client_env(token=DEFAULT_TOKEN, home=tmp_path / "hf_home"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    local = {m["key"]: m["sha256"] for m in Manifest.read(translated).samples}
    assert got["renders"] == local and got["pairs"] == local


def test_source_can_be_a_hub_repo_pinned_to_its_commit(model, source, translated, tmp_path):
    from rich.console import Console

    from synfashion.hub import push_dataset
    from synfashion.testing.hub_server import DEFAULT_TOKEN, DEFAULT_USER, running_hub

    repo = f"{DEFAULT_USER}/synfashion-hf"
    out = tmp_path / "from-hub"
    with running_hub() as hub:
        from huggingface_hub import constants

        saved = constants.HF_HUB_OFFLINE, constants.HF_HUB_DISABLE_XET
        constants.HF_HUB_OFFLINE, constants.HF_HUB_DISABLE_XET = False, True
        try:
            pushed = push_dataset(source, repo, endpoint=hub.endpoint, token=DEFAULT_TOKEN, progress=False,
                                  console=Console(file=__import__("io").StringIO()))
        finally:
            constants.HF_HUB_OFFLINE, constants.HF_HUB_DISABLE_XET = saved
        cmd = [sys.executable, "-m", "r2r.cli", *_args(model, repo, out)]
        proc = subprocess.run(cmd, cwd=ROOT, timeout=300, capture_output=True, text=True,
                              env={**hub.client_env(token=DEFAULT_TOKEN, home=tmp_path / "hf_home"),
                                   "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    manifest = Manifest.read(out)
    assert manifest.source["kind"] == "hub" and manifest.source["repo_id"] == repo
    assert manifest.source["revision"] == pushed.commit_oid
    assert manifest.source["fingerprint"] == Manifest.read(source).fingerprint
    assert {(s["key"], s["source_sha256"]) for s in manifest.samples} == \
        {(s["key"], s["source_sha256"]) for s in Manifest.read(translated).samples}
    assert verify_dataset(out).ok
