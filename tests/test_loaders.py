"""loaders: each source on a small built sample, worker x rank splitting, filters, errors, resume, determinism.

The sample is built once per session by `synfashion build`: from the generated sample when `synfashion.sample` is
importable, else from a small hand-made release. A second folder, written by hand with the packaging side's own
shard writers (the build refuses corrupt inputs), holds corrupt samples. Offline, CPU only.
"""

from __future__ import annotations

import gc
import hashlib
import io
import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import datasets
import numpy as np
import pytest
import torch
from PIL import Image

from loaders import (
    EVAL_512,
    LoaderConfig,
    SampleDecodeError,
    Selection,
    ShardReadError,
    TransformConfig,
    hf_image_loader,
    image_folder_loader,
    synfashion_dataset,
    synfashion_loader,
    webdataset_loader,
)
from synfashion.schema import RenderRecord, make_key, renders_features, renders_row
from synfashion.taxonomy import VIEWS
from synfashion.writers import ParquetShardWriter, WdsShardWriter

SMALL = TransformConfig(size=(32, 48), crop="random", flip=0.5)  # (width, height)
CATS = ("hoodie", "coat", "hat")
W, H = 48, 64


@pytest.fixture(autouse=True)
def _offline(monkeypatch, tmp_path_factory):
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path_factory.getbasetemp() / "hf-cache")
    # datasets sleeps 5 s when a streamed Parquet iteration ends (an Arrow thread-shutdown workaround); not here.
    monkeypatch.setattr(datasets.config, "SLEEP_TIME_ON_THREADS_SHUTDOWN", 0)
    for var in ("RANK", "WORLD_SIZE"):
        monkeypatch.delenv(var, raising=False)


# ------------------------------------------------------------------------------------------ sample fixtures
def _image_bytes(seed: int, fmt: str, size=(W, H)) -> bytes:
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 255, 3)
    y, x = np.mgrid[0 : size[1], 0 : size[0]]
    arr = np.clip(base + np.stack([x * 2, y * 2, (x + y)], -1) % 128, 0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, "JPEG" if fmt == "jpg" else "PNG", **({"quality": 90} if fmt == "jpg" else {}))
    return buf.getvalue()


def write_built_folder(out: Path, items: list[tuple[RenderRecord, bytes]], shards_per_split: dict[str, int],
                       row_group_size: int = 4) -> Path:
    """The `synfashion build` layout written with the packaging writers: data/renders, webdataset/, manifest."""
    by_split: dict[str, list] = {}
    for rec, data in sorted(items, key=lambda t: t[0].key):
        by_split.setdefault(rec.split, []).append((rec, data))
    shards, samples = [], []
    for split, recs in by_split.items():
        n = shards_per_split.get(split, 1)
        for i in range(n):
            part = recs[i::n]
            pq_rel = f"data/renders/{split}-{i:05d}-of-{n:05d}.parquet"
            tar_rel = f"webdataset/{split}/{split}-{i:05d}.tar"
            with ParquetShardWriter(out / pq_rel, renders_features(), row_group_size=row_group_size) as pw, \
                    WdsShardWriter(out / tar_rel) as tw:
                for rec, data in part:
                    pw.write(renders_row(rec, data))
                    tw.write(rec.key, rec.extension, data, rec.metadata())
            for rel, fmt, writer in ((pq_rel, "parquet", pw), (tar_rel, "webdataset", tw)):
                shards.append({"path": rel, "format": fmt, "config": "renders", "split": split,
                               "num_samples": len(part), "num_bytes": writer.num_bytes, "sha256": writer.sha256})
            samples += [rec.metadata() for rec, _ in part]
    doc = {"format": "synfashion-build/2", "parameters": {"formats": ["parquet", "webdataset"]}, "shards": shards,
           "samples": samples}
    (out / "manifest.json").write_text(json.dumps(doc))
    return out


def _record(cat: str, project: str, texture: str, view: str, data: bytes, ext: str, split: str, orientation=1):
    return RenderRecord(
        key=make_key(cat, project, texture, view), category=cat, project=project, texture=texture, view=view,
        source_path=f"{cat}/{project}_{texture}_{view}.{ext}", width=W, height=H, mode="RGB",
        format="JPEG" if ext == "jpg" else "PNG", orientation=orientation,
        sha256=hashlib.sha256(data).hexdigest(), num_bytes=len(data), split=split,
    )


def _write_release(root: Path) -> Path:
    """A small release in the default naming: 3 categories x 3 projects x 2 textures x 4 views of JPEGs."""
    n = 0
    for display in ("Hoodie", "Coat", "Hat"):
        slug = display.lower()
        for p in range(3):
            for t in range(2):
                for view in VIEWS:
                    path = root / display / f"{slug}-p{p:02d}_t{slug}{p}{t}_{view}.jpg"
                    path.parent.mkdir(parents=True, exist_ok=True)
                    path.write_bytes(_image_bytes(n, "jpg"))
                    n += 1
    return root


def _add_odd_files(root: Path) -> None:
    """One more garment whose 4 views are odd-but-valid files, as real releases have: an RGBA PNG, a grey JPEG,
    a CMYK JPEG and a JPEG stored sideways with EXIF orientation 6."""
    folder = root / "Coat"
    folder.mkdir(parents=True, exist_ok=True)
    img = Image.open(io.BytesIO(_image_bytes(999, "jpg")))
    rgba = img.copy()
    rgba.putalpha(Image.new("L", img.size, 128))
    rgba.save(folder / "coat-p90_tcoatodd_front.png")
    img.convert("L").save(folder / "coat-p90_tcoatodd_back.jpg", quality=90)
    img.convert("CMYK").save(folder / "coat-p90_tcoatodd_random1.jpg", quality=90)
    exif = Image.Exif()
    exif[0x0112] = 6
    img.transpose(Image.Transpose.ROTATE_90).save(folder / "coat-p90_tcoatodd_random2.jpg", quality=90, exif=exif)


@pytest.fixture(scope="session")
def built(tmp_path_factory) -> Path:
    """A folder written by `synfashion build`: the generated sample when `synfashion.sample` exists (small, few
    categories), else a hand-made release. Splits 60/20/20 so that every split has samples."""
    from synfashion.build import BuildConfig, build_dataset
    from synfashion.splits import SplitConfig

    tmp = tmp_path_factory.mktemp("built")
    src, out = tmp / "release", tmp / "out"
    try:
        from synfashion.sample import SampleConfig, generate_sample
    except ModuleNotFoundError as e:  # absent (older tree), not broken: a broken module fails the fixture
        if e.name != "synfashion.sample":
            raise
        _write_release(src)
        shard_size = 20_000
    else:
        generate_sample(src, SampleConfig(projects_per_category=3, textures_per_project=2, width=96, height=128,
                                          image_format="jpg", seed=0, categories=("hoodie", "coat", "hat")),
                        workers=1, progress=False)
        shard_size = 100_000
    _add_odd_files(src)
    split = SplitConfig(fractions={"train": 0.6, "validation": 0.2, "test": 0.2})
    config = BuildConfig(shard_size=shard_size, row_group_size=8, split=split)
    build_dataset(src, out, config, workers=1, progress=False)
    return out


def manifest_rows(folder: Path, split: str) -> list[dict]:
    return [s for s in json.loads((folder / "manifest.json").read_text())["samples"] if s["split"] == split]


def _all_keys(folder: Path, split: str) -> list[str]:
    return sorted(s["key"] for s in manifest_rows(folder, split))


def other_split(folder: Path) -> str:
    """A non-train split with samples (the build's assignment is hash-based)."""
    return next(s for s in ("validation", "test") if manifest_rows(folder, s))


@pytest.fixture(scope="session")
def corrupt(tmp_path_factory) -> Path:
    """A hand-made built folder whose train split holds one truncated JPEG and one non-image among good ones."""
    out = tmp_path_factory.mktemp("corrupt")
    items = []
    for i in range(6):
        data = _image_bytes(100 + i, "jpg")
        if i == 2:
            data = data[: len(data) // 3]
        if i == 4:
            data = b"this is not an image"
        items.append((_record("coat", "coat-p0", f"t{i}", "front", data, "jpg", "train"), data))
    return write_built_folder(out, items, {"train": 1})


def keys_of(loader) -> list[str]:
    return [k for batch in loader for k in batch["key"]]


# ------------------------------------------------------------------------------------------ each source
@pytest.mark.parametrize("streaming", [False, True])
def test_synfashion_loader_reads_the_split(built, streaming):
    loader = synfashion_loader(built, Selection(split="train"), SMALL, LoaderConfig(batch_size=8, num_workers=0),
                               streaming=streaming)
    batches = list(loader)
    keys = [k for b in batches for k in b["key"]]
    assert sorted(keys) == _all_keys(built, "train")
    b = batches[0]
    assert b["image"].shape[1:] == (3, 48, 32) and b["image"].dtype == torch.float32
    assert b["image"].min() >= -1 and b["image"].max() <= 1
    assert b["label"].dtype == torch.int64 and set(b["split"]) == {"train"}
    assert {"category", "project", "texture", "view", "source"} <= set(b)


def test_odd_modes_and_exif_rotation_come_out_upright_rgb(built):
    rows = [r for split in ("train", "validation", "test") for r in manifest_rows(built, split)]
    assert {"RGBA", "L", "CMYK"} <= {r["mode"] for r in rows} and any(r["orientation"] == 6 for r in rows)
    rotated = {r["key"] for r in rows if r["orientation"] == 6}
    fit = TransformConfig(size=(W, H), resize="contain", background=(255, 0, 255))  # magenta shows any padding
    for split in ("train", "validation", "test"):
        for make in (synfashion_loader, webdataset_loader):
            for s in make(built, Selection(split=split), fit, LoaderConfig(batch_size=None, num_workers=0)):
                assert s["image"].shape == (3, H, W)
                if s["key"] in rotated:  # stored landscape; upright it is portrait and fills the frame exactly
                    top = s["image"][:, 0, :]
                    assert not torch.allclose(top, torch.tensor([1.0, -1.0, 1.0]).view(3, 1).expand_as(top))


def test_webdataset_loader_reads_the_split(built):
    split = other_split(built)
    loader = webdataset_loader(built, Selection(split=split), SMALL, LoaderConfig(batch_size=5, num_workers=0))
    batches = list(loader)
    assert sorted(k for b in batches for k in b["key"]) == _all_keys(built, split)
    assert all(b["image"].shape[1:] == (3, 48, 32) for b in batches)
    assert {c for b in batches for c in b["category"]} == {r["category"] for r in manifest_rows(built, split)}


def test_webdataset_accepts_patterns_and_lists(built):
    tars = sorted(str(p) for p in (built / "webdataset" / "train").glob("*.tar"))
    n = len(tars)
    pattern = str(built / "webdataset" / "train" / f"train-{{00000..{n - 1:05d}}}.tar")
    cfg = LoaderConfig(batch_size=16, num_workers=0, shuffle=False)
    a = keys_of(webdataset_loader(pattern, transform=SMALL, loader=cfg))
    b = keys_of(webdataset_loader(tars, transform=SMALL, loader=cfg))
    assert a == b and sorted(a) == _all_keys(built, "train")


def test_map_style_and_webdataset_give_the_same_pixels(built):
    cfg = LoaderConfig(batch_size=None, num_workers=0, shuffle=False)
    hf = {s["key"]: s["image"] for s in synfashion_loader(built, transform=EVAL_512.with_(size=(32, 32)), loader=cfg)}
    wd = {s["key"]: s["image"] for s in webdataset_loader(built, transform=EVAL_512.with_(size=(32, 32)), loader=cfg)}
    assert hf.keys() == wd.keys()
    assert all(torch.equal(hf[k], wd[k]) for k in hf)


def test_a_datasets_object_with_an_index_mapping(built):
    files = sorted(str(p) for p in (built / "data" / "renders").glob("train-*"))
    ds = datasets.load_dataset("parquet", data_files=files, split="train")
    picked = ds.shuffle(seed=3).select(range(10))  # an index mapping: rows go through datasets' own access
    keys = keys_of(synfashion_loader(picked, transform=SMALL, loader=LoaderConfig(batch_size=4, num_workers=0)))
    assert sorted(keys) == sorted(picked["key"])


def test_spawned_workers(built):
    # spawn pickles the dataset (fork does not): what is pickled must not drag the Arrow table along
    cfg = LoaderConfig(batch_size=8, num_workers=1, multiprocessing_context="spawn")
    assert sorted(keys_of(synfashion_loader(built, transform=SMALL, loader=cfg))) == _all_keys(built, "train")


def test_image_folder_with_jsonl_captions_and_sidecars(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    for i, rel in enumerate(["a/x.jpg", "a/y.png", "b/z.jpg"]):
        (tmp_path / rel).write_bytes(_image_bytes(i, rel[-3:]))
    (tmp_path / ".hidden.jpg").write_bytes(b"ignored")
    (tmp_path / "metadata.jsonl").write_text('{"file_name": "a/x.jpg", "text": "a red coat"}\n')
    loader = image_folder_loader(tmp_path, SMALL, LoaderConfig(batch_size=3, num_workers=0, shuffle=False))
    (batch,) = list(loader)
    assert batch["key"] == ["a/x", "a/y", "b/z"] and batch["image"].shape == (3, 3, 48, 32)
    assert batch["caption"] == ["a red coat", None, None]
    (tmp_path / "metadata.jsonl").unlink()
    (tmp_path / "b" / "z.txt").write_text("a photo\n")
    (batch,) = list(image_folder_loader(tmp_path, SMALL, LoaderConfig(batch_size=3, num_workers=0, shuffle=False)))
    assert batch["caption"] == [None, None, "a photo"]


def test_image_folder_with_csv_captions(tmp_path):
    for i in range(2):
        (tmp_path / f"{i}.jpg").write_bytes(_image_bytes(i, "jpg"))
    (tmp_path / "metadata.csv").write_text("file_name,caption\n0.jpg,first\n1.jpg,second\n")
    (batch,) = list(image_folder_loader(tmp_path, SMALL, LoaderConfig(batch_size=2, num_workers=0, shuffle=False)))
    assert batch["caption"] == ["first", "second"]


def test_any_datasets_image_dataset(tmp_path):
    ds = datasets.Dataset.from_dict(
        {"image": [{"bytes": _image_bytes(i, "png"), "path": None} for i in range(5)],
         "text": [f"c{i}" for i in range(5)]}
    ).cast_column("image", datasets.Image())
    loader = hf_image_loader(ds, SMALL, LoaderConfig(batch_size=5, num_workers=0, shuffle=False), caption_column="text")
    (batch,) = list(loader)
    assert batch["image"].shape == (5, 3, 48, 32) and batch["caption"] == [f"c{i}" for i in range(5)]


# ------------------------------------------------------------------------------------------ worker x rank
def _epoch_keys(make, world=2, workers=2) -> list[str]:
    keys = []
    for rank in range(world):
        keys += keys_of(make(LoaderConfig(batch_size=3, num_workers=workers, rank=rank, world_size=world, seed=1)))
    return keys


@pytest.mark.parametrize(
    "source",
    ["map", "streaming", "wds-shards", "wds-examples"],
)
def test_two_workers_by_two_ranks_cover_the_split_exactly_once(built, source):
    sel = Selection(split="train")
    if source == "map":
        make = lambda cfg: synfashion_loader(built, sel, SMALL, cfg)  # noqa: E731
    elif source == "streaming":
        make = lambda cfg: synfashion_loader(built, sel, SMALL, cfg, streaming=True)  # noqa: E731
    else:
        mode = source.split("-")[1]
        make = lambda cfg: webdataset_loader(built, sel, SMALL, cfg, split_by=mode)  # noqa: E731
    keys = _epoch_keys(make)
    assert len(keys) == len(set(keys)), Counter(keys).most_common(3)  # no duplicates
    assert sorted(keys) == _all_keys(built, "train")  # no gaps


def test_ranks_from_the_launcher_environment(built, monkeypatch):
    keys = []
    for rank in range(2):
        monkeypatch.setenv("RANK", str(rank))
        monkeypatch.setenv("WORLD_SIZE", "2")
        keys += keys_of(synfashion_loader(built, transform=SMALL, loader=LoaderConfig(batch_size=4, num_workers=0)))
    assert sorted(keys) == _all_keys(built, "train")


def test_even_drops_the_remainder_so_ranks_take_equal_steps(built):
    lens = [len(synfashion_dataset(built, transform=SMALL)) for _ in range(1)]
    n = lens[0]
    counts = [len(keys_of(synfashion_loader(built, transform=SMALL, loader=LoaderConfig(
        batch_size=1, num_workers=0, rank=r, world_size=5, even=True)))) for r in range(5)]
    assert len(set(counts)) == 1 and sum(counts) == n - n % 5


# ------------------------------------------------------------------------------------------ filters
def test_filters_by_category_view_project(built):
    rows = manifest_rows(built, "train")
    cats = sorted({r["category"] for r in rows})[:2]
    sel = Selection(split="train", categories=cats, views=("front", "back"))
    expected = sorted(r["key"] for r in rows if r["category"] in cats and r["view"] in ("front", "back"))
    for loader in (
        synfashion_loader(built, sel, SMALL, LoaderConfig(batch_size=None, num_workers=0)),
        synfashion_loader(built, sel, SMALL, LoaderConfig(batch_size=None, num_workers=0), streaming=True),
        webdataset_loader(built, sel, SMALL, LoaderConfig(batch_size=None, num_workers=0)),
    ):
        samples = list(loader)
        assert sorted(s["key"] for s in samples) == expected
        assert {s["category"] for s in samples} == set(cats) and {s["view"] for s in samples} == {"front", "back"}
    one = rows[0]
    proj = Selection(split="train", projects=(f"{one['category']}/{one['project']}",))
    samples = list(synfashion_loader(built, proj, SMALL, LoaderConfig(batch_size=None, num_workers=0)))
    assert sorted(s["key"] for s in samples) == sorted(
        r["key"] for r in rows if (r["category"], r["project"]) == (one["category"], one["project"]))


def test_unknown_category_or_view_is_refused_with_the_choices():
    with pytest.raises(ValueError, match="expected one of"):
        Selection(categories=("spacesuit",))
    with pytest.raises(ValueError, match="views are"):
        Selection(views=("side",))


def test_eval_subset_is_fixed_and_the_same_for_every_source(built):
    sel = Selection(split="train", eval_per_category=3, eval_seed=7)
    cfg = LoaderConfig(batch_size=None, num_workers=0)
    a = sorted(s["key"] for s in synfashion_loader(built, sel, SMALL, cfg))
    other_seed = LoaderConfig(batch_size=None, num_workers=0, seed=5)
    b = sorted(s["key"] for s in synfashion_loader(built, sel, SMALL, other_seed))
    c = sorted(s["key"] for s in synfashion_loader(built, sel, SMALL, cfg, streaming=True))
    d = sorted(s["key"] for s in webdataset_loader(built, sel, SMALL, cfg))
    per_cat = Counter(r["category"] for r in manifest_rows(built, "train"))
    assert a == b == c == d and len(a) == sum(min(3, n) for n in per_cat.values())
    salt = Selection(split="train", eval_per_category=3)
    other = sorted(s["key"] for s in synfashion_loader(built, salt, SMALL, cfg))
    assert other != a


def test_balanced_sampling_evens_out_categories(built):
    # a split holding two categories (which ones a hash split gives each split is the sample's luck)
    split = next(s for s in ("train", "validation", "test")
                 if len({r["category"] for r in manifest_rows(built, s)}) > 1)
    rows = manifest_rows(built, split)
    big, small = sorted({r["category"] for r in rows})[:2]
    # every sample of one category, two of the other: unbalanced on disk
    keys = [r["key"] for r in rows if r["category"] == big] + [r["key"] for r in rows if r["category"] == small][:2]
    sel = Selection(split=split, keys=frozenset(keys))
    plain = LoaderConfig(batch_size=None, num_workers=0)
    on_disk = Counter(s["category"] for s in synfashion_loader(built, sel, SMALL, plain))
    assert on_disk[big] > on_disk[small] == 2
    cfg = LoaderConfig(batch_size=None, num_workers=0, balanced=True, num_samples=40)
    assert Counter(s["category"] for s in synfashion_loader(built, sel, SMALL, cfg)) == {big: 20, small: 20}


# ------------------------------------------------------------------------------------------ determinism
def test_same_seed_same_order_and_pixels_whatever_the_worker_count(built):
    def run(seed, workers):
        cfg = LoaderConfig(batch_size=4, num_workers=workers, seed=seed)
        batches = list(synfashion_loader(built, transform=SMALL, loader=cfg))
        return [k for b in batches for k in b["key"]], torch.cat([b["image"] for b in batches])

    k0, x0 = run(3, 0)
    k2, x2 = run(3, 2)
    assert k0 == k2 and torch.equal(x0, x2)
    k_other, _ = run(4, 0)
    assert k_other != k0 and sorted(k_other) == sorted(k0)


def test_epochs_reshuffle_and_stay_reproducible(built):
    def two_epochs(make):
        loader = make()
        return [keys_of(loader), keys_of(loader)]

    for make in (
        lambda: synfashion_loader(built, transform=SMALL, loader=LoaderConfig(batch_size=8, num_workers=0)),
        lambda: webdataset_loader(built, transform=SMALL, loader=LoaderConfig(batch_size=8, num_workers=0,
                                                                               shuffle_buffer=8)),
    ):
        e = two_epochs(make)
        assert e[0] != e[1] and sorted(e[0]) == sorted(e[1])
        assert two_epochs(make) == e


def test_webdataset_multiple_passes_per_iteration(built):
    split = other_split(built)
    cfg = LoaderConfig(batch_size=8, num_workers=0)
    loader = webdataset_loader(built, Selection(split=split), SMALL, cfg, epochs=3)
    keys = keys_of(loader)
    assert Counter(keys) == Counter({k: 3 for k in _all_keys(built, split)})


def test_persistent_workers_follow_the_epoch(built):
    def epochs(persistent):
        cfg = LoaderConfig(batch_size=4, num_workers=2, persistent_workers=persistent, shuffle_buffer=8)
        loader = webdataset_loader(built, transform=SMALL, loader=cfg)
        return [keys_of(loader), keys_of(loader)]

    fresh, persistent = epochs(False), epochs(True)
    assert persistent == fresh and persistent[0] != persistent[1]
    assert sorted(persistent[1]) == _all_keys(built, "train")


def test_drop_last_drops_only_partial_batches(built):
    for make in (synfashion_loader, webdataset_loader):
        batches = list(make(built, transform=SMALL, loader=LoaderConfig(batch_size=5, num_workers=2, drop_last=True)))
        sizes = [len(b["key"]) for b in batches]
        assert set(sizes) == {5}
        assert len(_all_keys(built, "train")) - sum(sizes) < 5 * 2  # at most one partial batch per worker


# ------------------------------------------------------------------------------------------ errors
def test_corrupt_sample_error_names_the_shard_and_key(corrupt):
    for make in (synfashion_loader, webdataset_loader):
        loader = make(corrupt, transform=SMALL, loader=LoaderConfig(batch_size=2, num_workers=0, shuffle=False))
        with pytest.raises(SampleDecodeError) as err:
            list(loader)
        msg = str(err.value)
        assert "coat__coat-p0__t2__front" in msg
        assert ("train-00000-of-00001.parquet" in msg) or ("train-00000.tar" in msg)
        assert "on_error='skip'" in msg


@pytest.mark.parametrize("workers", [0, 2])
def test_corrupt_samples_are_skipped_and_counted(corrupt, workers):
    for make in (synfashion_loader, webdataset_loader):
        loader = make(corrupt, transform=SMALL,
                      loader=LoaderConfig(batch_size=2, num_workers=workers, shuffle=False, on_error="skip"))
        with pytest.warns(UserWarning, match="skipped 2 undecodable"):
            keys = keys_of(loader)
        assert len(keys) == 4
        assert sorted(s.key for s in loader.skipped) == ["coat__coat-p0__t2__front", "coat__coat-p0__t4__front"]
        assert all(s.source for s in loader.skipped)


def test_worker_errors_reach_the_caller_with_the_message(corrupt, monkeypatch):
    # torch waits MP_STATUS_CHECK_INTERVAL (5 s) per worker when it shuts down workers after an error; the
    # shutdown happens when the iterator is collected, so collect it here with a short interval.
    monkeypatch.setattr(torch.utils.data._utils, "MP_STATUS_CHECK_INTERVAL", 0.2)
    loader = synfashion_loader(corrupt, transform=SMALL, loader=LoaderConfig(batch_size=2, num_workers=2))
    with pytest.raises(SampleDecodeError, match="coat__coat-p0__t") as err:
        list(loader)
    del err
    gc.collect()


def test_unreadable_tar_names_the_shard(tmp_path):
    bad = tmp_path / "broken-00000.tar"
    bad.write_bytes(b"\x00garbage" * 200)
    with pytest.raises(ShardReadError, match="broken-00000.tar"):
        list(webdataset_loader(str(bad), transform=SMALL, loader=LoaderConfig(num_workers=0)))


def test_not_a_built_folder_is_explained(tmp_path):
    with pytest.raises(Exception, match="synfashion build"):
        synfashion_loader(tmp_path, transform=SMALL)


# ------------------------------------------------------------------------------------------ resume
@pytest.mark.parametrize("source", ["map", "streaming", "wds"])
@pytest.mark.parametrize("workers", [0, 2])
def test_resume_mid_epoch_continues_exactly(built, source, workers):
    cfg = LoaderConfig(batch_size=4, num_workers=workers, seed=2, shuffle_buffer=0 if source == "streaming" else 8)
    if source == "wds":
        make = lambda: webdataset_loader(built, transform=SMALL, loader=cfg)  # noqa: E731
    else:
        streaming = source == "streaming"
        make = lambda: synfashion_loader(built, transform=SMALL, loader=cfg, streaming=streaming)  # noqa: E731
    full = keys_of(make())
    first = make()
    seen = []
    for i, batch in enumerate(first):
        seen += batch["key"]
        if i == 2:
            state = first.state_dict()
            break
    state = json.loads(json.dumps(state))  # a checkpoint survives serialisation
    resumed = make()
    resumed.load_state_dict(state)
    rest = keys_of(resumed)
    assert seen + rest == full
    assert resumed.epoch == 1  # the resumed epoch completed; the next one starts fresh
    assert sorted(keys_of(resumed)) == sorted(full)


# ------------------------------------------------------------------------------------------ Hub id and URLs
# The built sample is pushed in-process to the loopback Hub server (a private repo); the loaders run in a client
# subprocess because huggingface_hub and datasets read HF_ENDPOINT when they are imported. The tars stream from the
# resolve URLs with HF_TOKEN in a header, in the main process and in forked workers alike.
ROOT = Path(__file__).resolve().parents[1]

CLIENT = r"""
import json, sys
import datasets
from loaders import LoaderConfig, Selection, TransformConfig, synfashion_loader, webdataset_loader
from synfashion.hub import webdataset_urls

datasets.disable_progress_bars()
datasets.config.SLEEP_TIME_ON_THREADS_SHUTDOWN = 0
repo = sys.argv[1]
t = TransformConfig(size=(32, 48))
keys = lambda loader: [k for b in loader for k in b["key"]]
one = LoaderConfig(batch_size=8, num_workers=0)
out = {
    "map": keys(synfashion_loader(repo, Selection(split="train"), t, one)),
    "streaming": keys(synfashion_loader(repo, Selection(split="train"), t, one, streaming=True)),
    "wds": keys(webdataset_loader(webdataset_urls(repo, "train"), Selection(split="train"), t, one)),
    "streaming_2x2": [], "wds_2x2": [],
}
for rank in range(2):
    cfg = LoaderConfig(batch_size=4, num_workers=2, rank=rank, world_size=2)
    out["streaming_2x2"] += keys(synfashion_loader(repo, Selection(split="train"), t, cfg, streaming=True))
    out["wds_2x2"] += keys(webdataset_loader(webdataset_urls(repo, "train"), Selection(split="train"), t, cfg))
print(json.dumps(out))
"""


@pytest.fixture
def hub_push(monkeypatch, tmp_path):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "HF_HUB_DISABLE_XET", True)
    monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(tmp_path / "no-saved-login"))


def test_hub_id_and_urls(built, hub_push, tmp_path):
    from synfashion.hub import push_dataset
    from synfashion.testing.hub_server import DEFAULT_TOKEN, DEFAULT_USER, HubServer

    repo = f"{DEFAULT_USER}/synfashion-loaders"
    with HubServer() as hub:
        push_dataset(built, repo, token=DEFAULT_TOKEN, endpoint=hub.endpoint, progress=False)  # private
        assert hub.is_private(repo)
        proc = subprocess.run([sys.executable, "-c", CLIENT, repo], cwd=ROOT, timeout=300, capture_output=True,
                              text=True, env=hub.client_env(token=DEFAULT_TOKEN, home=tmp_path / "home"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    expected = _all_keys(built, "train")
    for name, keys in got.items():
        assert len(keys) == len(set(keys)), name
        assert sorted(keys) == expected, name
