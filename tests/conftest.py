"""Shared fixtures: a generated sample release and its build, made once per test session (small sizes, CPU)."""

from __future__ import annotations

import atexit
import io
import os
import shutil
import tempfile
from pathlib import Path

# (set before numpy, torch and the Hugging Face libraries are imported: they read these then)
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
# The Hugging Face cache of this test process (and the commands it starts) is a folder of its own, never the user's
# ~/.cache/huggingface: set before any Hugging Face library is imported, since they read it then.
os.environ["HF_HOME"] = tempfile.mkdtemp(prefix="synfashion-tests-hf-")
atexit.register(shutil.rmtree, os.environ["HF_HOME"], True)
# One torch thread in the test processes and in every command they start (set before torch is imported): the tensors
# are tiny, and beside the other test worker two threads spin-waiting on each other crawl (the README path's
# translate-dataset took 53 s instead of 4). A test about threads sets its own.
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from PIL import Image  # noqa: E402


# Seconds each of the longest files takes (`scripts/test.sh --durations=0`, summed per file, quiet 2-core machine).
# pytest-xdist hands whole files to the workers in collection order (scripts/test.sh: --dist loadfile
# --no-loadscope-reorder), so these go first, longest first: a long file left for the end would run while the
# other worker idles. Not a list of what to run: every file runs; an unlisted file counts as 0 s.
LONGEST_FILES = {
    "test_readme_path.py": 50, "test_evaluate_reference.py": 43, "test_gpu_check.py": 37, "test_new_user.py": 27,
    "test_translate_dataset_runs.py": 26, "test_hub.py": 24, "test_cross_command_regressions.py": 24,
    "test_loaders.py": 24, "test_downstream.py": 24, "test_r2r_exact.py": 22, "test_ablate.py": 18,
    "test_hub_models.py": 17, "test_r2r_pipeline.py": 17, "test_hub_e2e.py": 13, "test_translate_dataset.py": 13,
    "test_r2r_models.py": 12, "test_metrics.py": 12, "test_r2r_cli_friction.py": 11, "test_build.py": 10,
}


def pytest_collection_modifyitems(items) -> None:
    items.sort(key=lambda item: -LONGEST_FILES.get(item.path.name, 0))  # stable: a file's own order is kept


@pytest.fixture(scope="session", autouse=True)
def _private_stats_cache(tmp_path_factory):
    """`r2r evaluate` caches real-set features under $R2R_CACHE/stats: tests use a folder of their own, never the
    user's cache (a test that needs a fresh or a given cache passes --stats-cache)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("R2R_CACHE", str(tmp_path_factory.mktemp("r2r-cache")))
        yield


@pytest.fixture(scope="session")
def warm(tmp_path_factory):
    """Client programs (`.python`, `.r2r`, `.synfashion`, or `.bin` for PATH) of one warm interpreter per test
    process that has torch, diffusers and the project imported (tests/warm_commands.py): a command run through them
    is a process of its own (pid, status, signals, kill -9) without 2-5 s of imports. For tests whose subject is
    not the interpreter's start; a fresh environment, library warnings at import, the entry points themselves keep
    sys.executable. Started on first use (about 7 s of CPU, once)."""
    from tests.warm_commands import WarmServer

    with WarmServer(dict(os.environ)) as server:
        yield server.clients(tmp_path_factory.mktemp("warm-bin"))


@pytest.fixture(scope="module")
def one_torch_thread():
    """Tiny tensors gain nothing from threads, and a shared CI machine makes 2+ spin-waiting threads crawl."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    """`r2r tiny-model`'s random-weight SD-1.5-architecture pipeline, made once per test process. Shared: a test
    that changes a file of it works on a copy (shutil.copytree)."""
    from r2r.tiny import save_tiny_model

    return save_tiny_model(tmp_path_factory.mktemp("tiny-model") / "tiny")


@pytest.fixture(scope="session")
def tiny_dki_model(tmp_path_factory) -> Path:
    """The smaller pipeline the training tests use (UNet channels 16, 32; one layer per block). Shared, as above."""
    from r2r.tiny import TinyModelConfig, save_tiny_model

    cfg = TinyModelConfig(unet_channels=(16, 32), unet_layers_per_block=1)
    return save_tiny_model(tmp_path_factory.mktemp("tiny-dki-model") / "model", cfg)


@pytest.fixture(scope="session")
def sample_release(tmp_path_factory) -> Path:
    from synfashion.sample import SampleConfig, generate_sample

    root = tmp_path_factory.mktemp("sample") / "release"
    generate_sample(root, SampleConfig(width=96, height=128, seed=7), workers=1, progress=False)
    return root


@pytest.fixture(scope="session")
def built_dataset(sample_release, tmp_path_factory) -> Path:
    from synfashion.build import BuildConfig, build_dataset

    out = tmp_path_factory.mktemp("built") / "synfashion-sample"
    build_dataset(sample_release, out, BuildConfig(shard_size=200_000), workers=1, progress=False)
    return out


def image_bytes(fmt: str = "JPEG", size=(48, 64), mode="RGB", seed=0, **save) -> bytes:
    """A small smooth test image in any PIL mode/format."""
    rng = np.random.default_rng(seed)
    w, h = size
    base = (np.linspace(0, 255, w)[None, :] * np.ones((h, 1))).astype(np.uint8)
    noise = rng.integers(0, 255, size=(h, w), dtype=np.uint8)  # seed-specific, so different seeds differ
    rgb = np.stack([base, base[:, ::-1], noise], -1).astype(np.uint8)
    img = Image.fromarray(rgb, "RGB")
    if mode == "I;16":
        img = Image.fromarray((base.astype(np.uint16) * 257))  # numpy uint16 -> PIL "I;16"
    elif mode != "RGB":
        img = img.convert(mode)
    buf = io.BytesIO()
    img.save(buf, format=fmt, **save)
    return buf.getvalue()


def random_pngs(root: Path, n: int, *, size=(72, 80), seed: int = 0, prefix: str = "im") -> Path:
    """`n` PNGs of seeded uniform noise (`size` = width, height) named <prefix>0.png ... in `root` (created)."""
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(n):
        Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)).save(root / f"{prefix}{i}.png")
    return root


def write_release(root: Path, files: dict[str, bytes]) -> Path:
    for rel, data in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
    return root


def small_release(root: Path, categories=("Hoodie", "T-shirt", "Dress", "Down jacket"), projects=3, textures=2) -> Path:
    """A hand-made release in the default naming, some textures shared between projects of a category."""
    files = {}
    seed = 0
    for cat in categories:
        slug = cat.lower().replace(" ", "-")
        for p in range(projects):
            for t in range(textures):
                tex = f"t{slug[:4]}{p * textures + t}" if (p, t) != (1, 1) else f"t{slug[:4]}0"
                for v in ("front", "back", "random1", "random2"):
                    seed += 1
                    files[f"{cat}/{slug}-p{p:02d}_{tex}_{v}.jpg"] = image_bytes(seed=seed)
    return write_release(root, files)


@pytest.fixture(scope="session")
def translate_source(tmp_path_factory) -> Path:
    """A built SynFashion folder: 2 categories x 3 projects x 2 textures x 4 views of 48x64 JPEGs, with a sidecar
    column (`shade`) that must travel into the translated rows (tests/test_translate_dataset*.py)."""
    import json

    from synfashion.build import BuildConfig, build_dataset

    root = tmp_path_factory.mktemp("src")
    release = small_release(root / "release", categories=("Hoodie", "Dress"))
    files = sorted(p.relative_to(release).as_posix() for p in release.rglob("*.jpg"))
    rows = [json.dumps({"file_name": f, "shade": i % 3}) for i, f in enumerate(files)]  # a sidecar extra column
    (release / "metadata.jsonl").write_text("\n".join(rows) + "\n")
    out = root / "synfashion-hf"
    build_dataset(release, out, BuildConfig(shard_size=40_000), progress=False)
    return out


@pytest.fixture(scope="session")
def translated_dataset(tiny_model, translate_source, tmp_path_factory) -> Path:
    """`r2r translate-dataset` of 4 test images of `translate_source` (tests/translate_world.py's command line), in
    this process with one torch thread."""
    import torch

    from r2r.cli import main
    from tests.translate_world import _args

    out = tmp_path_factory.mktemp("tr-out") / "synfashion-r2r"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        assert main(_args(tiny_model, translate_source, out)) == 0
    finally:
        torch.set_num_threads(threads)
    return out


@pytest.fixture(scope="session")
def evaluated(tmp_path_factory) -> dict:
    """Two `r2r evaluate` results ("ours", a translated dataset; a folder of another method's outputs) on a tiny
    source: see tests/eval_world.py."""
    import datasets
    import torch

    from eval_world import make_world

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path_factory.getbasetemp() / "hf-cache")
        world = make_world(tmp_path_factory.mktemp("evaluated"))
    torch.set_num_threads(threads)
    return world
