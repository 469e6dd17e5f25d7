"""The Hub round trip end to end, with the real clients in subprocesses (HF_ENDPOINT is read at import):
build -> push -> `datasets.load_dataset` (each config, Arrow and streaming) -> WebDataset streaming from the
repo's resolve URLs -> pull -> verify; and a push killed mid-upload, run again.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from rich.console import Console

from synfashion.testing.fixtures import make_built_folder
from synfashion.testing.hub_server import DEFAULT_TOKEN, DEFAULT_USER, HubServer, running_hub

ROOT = Path(__file__).resolve().parents[1]

# Runs in a client process: loads every config of the repo both ways and streams the WebDataset shards, and
# prints {name: {split/key: [sha256 of each image column]}} so the test can compare bytes with the local build.
CLIENT = r"""
import hashlib, json, sys
import datasets, webdataset as wds
from datasets import Image, load_dataset
from webdataset.gopen import gopen_schemes
from loaders.http import gopen_http
from synfashion.hub import webdataset_urls

gopen_schemes.update(http=gopen_http, https=gopen_http)  # private repo: the token in a header, no curl, no shell

datasets.disable_progress_bars()
repo, configs = sys.argv[1], json.loads(sys.argv[2])
sha = lambda b: hashlib.sha256(b).hexdigest() if b is not None else None
out = {}
for config, columns in configs.items():
    for streaming in (False, True):
        got = {}
        for split, ds in load_dataset(repo, config, streaming=streaming).items():
            if not streaming:
                out[f"{config}/features"] = ds.features.to_dict()
            ds = ds.cast_column(columns[0], Image(decode=False)) if len(columns) == 1 else ds.cast(
                datasets.Features({**ds.features, **{c: Image(decode=False) for c in columns}}))
            for row in ds:
                got[f"{split}/{row['key']}"] = [sha((row[c] or {}).get("bytes")) for c in columns]
        out[f"{config}/{'streaming' if streaming else 'arrow'}"] = got
got = {}
for split in ("train", "validation", "test"):
    for s in wds.WebDataset(webdataset_urls(repo, split), shardshuffle=False):
        got[f"{split}/{s['__key__']}"] = [sha(next(v for k, v in s.items() if k in ("jpg", "jpeg", "png", "webp")))]
out["webdataset"] = got
print(json.dumps(out))
"""


def expected_digests(folder: Path, config: str, columns: list[str]) -> dict[str, list]:
    out = {}
    for p in sorted((folder / "data" / config).glob("*.parquet")):
        split = p.name.split("-", 1)[0]
        for row in pq.read_table(p).to_pylist():
            out[f"{split}/{row['key']}"] = [hashlib.sha256(row[c]["bytes"]).hexdigest() if row[c] else None
                                            for c in columns]
    return out


def run_client(hub: HubServer, home: Path, repo_id: str, configs: dict[str, list[str]]) -> dict:
    proc = subprocess.run([sys.executable, "-c", CLIENT, repo_id, json.dumps(configs)], cwd=ROOT, timeout=300,
                          capture_output=True, text=True, env=hub.client_env(token=DEFAULT_TOKEN, home=home))
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.fixture
def client(monkeypatch, tmp_path):
    """In-process pushes: undo conftest's HF_HUB_OFFLINE (read at import) and use the LFS path."""
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "HF_HUB_DISABLE_XET", True)
    monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(tmp_path / "no-saved-login"))


@pytest.fixture(scope="module")
def real_build(request, tmp_path_factory) -> Path:
    """The sample release built by `synfashion build` (conftest's session build; a hand-made release until
    synfashion.sample exists)."""
    try:
        return request.getfixturevalue("built_dataset")
    except ImportError:
        from synfashion.build import BuildConfig, build_dataset
        from tests.conftest import small_release

        release = small_release(tmp_path_factory.mktemp("release") / "release")
        out = tmp_path_factory.mktemp("built") / "synfashion-sample"
        build_dataset(release, out, BuildConfig(shard_size=20_000), workers=1, progress=False)
        return out


def test_build_push_load_stream_pull_verify(client, real_build, tmp_path):
    from synfashion.hub import pull_dataset, push_dataset
    from synfashion.manifest import Manifest
    from synfashion.schema import garments_features
    from synfashion.taxonomy import VIEWS
    from synfashion.verify import verify_dataset

    repo = f"{DEFAULT_USER}/synfashion-sample"
    quiet = Console(file=io.StringIO())
    with running_hub(tree_page_size=4) as hub:  # small pages: the clients must follow the tree pagination
        push_dataset(real_build, repo, endpoint=hub.endpoint, token=DEFAULT_TOKEN, console=quiet, progress=False)
        assert hub.is_private(repo)
        got = run_client(hub, tmp_path / "hf_home", repo, {"renders": ["image"], "garments": list(VIEWS)})

        renders = expected_digests(real_build, "renders", ["image"])
        garments = expected_digests(real_build, "garments", list(VIEWS))
        assert renders and garments
        assert got["renders/arrow"] == renders and got["renders/streaming"] == renders  # byte-identical images
        assert got["garments/arrow"] == garments and got["garments/streaming"] == garments
        assert got["webdataset"] == renders  # private repo: plain https URLs, the token (HF_TOKEN) in a header
        stored = Manifest.read(real_build)  # the build's features, sidecar columns included, in column order
        assert got["renders/features"] == stored.features_of("renders").to_dict()
        assert list(got["renders/features"]) == list(stored.features_of("renders")) and "azimuth_deg" in got[
            "renders/features"]
        assert got["garments/features"] == stored.features_of("garments").to_dict() == garments_features().to_dict()

        pulled = pull_dataset(repo, tmp_path / "pulled", endpoint=hub.endpoint, token=DEFAULT_TOKEN, console=quiet,
                              progress=False)  # verify=True: raises if verify finds a problem
        assert verify_dataset(pulled).ok


def test_killed_push_resumes_without_resending(tmp_path):
    """`synfashion push` killed (SIGKILL) while one upload stalls; main keeps the old build; the rerun completes and
    sends only blobs that had not reached the server."""
    old = make_built_folder(tmp_path / "old", seed=0, train_shards=2)
    new = make_built_folder(tmp_path / "new", seed=1, train_shards=2)
    repo = f"{DEFAULT_USER}/killed"

    def cli(hub: HubServer) -> subprocess.Popen:
        return subprocess.Popen([sys.executable, "-m", "synfashion.cli", "push", str(new), repo], cwd=ROOT,
                                env=hub.client_env(token=DEFAULT_TOKEN, home=tmp_path / "hf_home"),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)

    with running_hub() as hub:
        first = subprocess.run([sys.executable, "-m", "synfashion.cli", "push", str(old), repo], cwd=ROOT, timeout=120,
                               env=hub.client_env(token=DEFAULT_TOKEN, home=tmp_path / "hf_home"),
                               capture_output=True, text=True)
        assert first.returncode == 0, first.stderr
        old_head = hub.head(repo)
        manifest = json.loads((new / "manifest.json").read_text())
        new_blobs = {s["sha256"] for s in manifest["shards"]}
        stall = sorted(new_blobs)[0]
        fault = hub.hang("PUT", rf"^/_lfs/{stall}$")
        uploads = len(hub.uploads)

        proc = cli(hub)
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and not (
                fault.triggered.is_set() and len(hub.uploads) - uploads >= len(new_blobs) - 1
            ):
                time.sleep(0.05)
            assert fault.triggered.is_set(), "the push never reached the stalled upload"
            os.killpg(proc.pid, signal.SIGKILL)
        finally:
            proc.wait(timeout=30)
        hub.release()
        assert hub.head(repo) == old_head  # killed before committing: main still shows the old build, whole
        stored = set(hub.uploads[uploads:])
        assert stall not in stored and stored

        start = len(hub.requests)
        proc = cli(hub)
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        resent = {r.path.rsplit("/", 1)[-1] for r in hub.requests[start:] if r.method == "PUT"}
        assert stall in resent and not resent & stored
        assert set(hub.files(repo)) - {".gitattributes"} == {
            p.relative_to(new).as_posix() for p in new.rglob("*") if p.is_file()
        }


def test_datasets_push_to_hub_works_against_the_server(tmp_path):
    """`Dataset.push_to_hub` (which deletes its temporary Parquet shard right after pre-upload, so the server must
    answer `lfs` for it) and a re-push that replaces the shard: the server contract for other writers."""
    code = r"""
import datasets
datasets.disable_progress_bars()
ds = datasets.Dataset.from_dict({"i": list(range(50))})
ds.push_to_hub("synfashion-tester/pushed", private=True)
ds.select(range(5)).push_to_hub("synfashion-tester/pushed", private=True)
print(len(datasets.load_dataset("synfashion-tester/pushed", split="train")))
"""
    with running_hub() as hub:
        proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300,
                              env=hub.client_env(token=DEFAULT_TOKEN, home=tmp_path / "hf_home"))
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert proc.stdout.split()[-1] == "5"
        assert sorted(hub.files(f"{DEFAULT_USER}/pushed")) == [".gitattributes", "README.md",
                                                                "data/train-00000-of-00001.parquet"]
