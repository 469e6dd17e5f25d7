"""Shared fixtures: a generated sample release and its build, made once per test session (small sizes, CPU)."""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")


@pytest.fixture(scope="session", autouse=True)
def _private_stats_cache(tmp_path_factory):
    """`r2r evaluate` caches real-set features under $R2R_CACHE/stats: tests use a folder of their own, never the
    user's cache (a test that needs a fresh or a given cache passes --stats-cache)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("R2R_CACHE", str(tmp_path_factory.mktemp("r2r-cache")))
        yield


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
