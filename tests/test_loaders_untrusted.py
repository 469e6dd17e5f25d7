"""loaders on folders written by strangers: manifest paths are data (never a command, a URL or a file outside the
folder), a caller's own `pipe:` needs allow_pipe, malformed metadata is an error naming shard, row/member, key and
field (or a counted skip), and shards with extra columns load with their own features. Offline, CPU, tiny files.
"""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import datasets
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from PIL import Image

from loaders import (
    LoaderConfig,
    Selection,
    ShardReadError,
    TransformConfig,
    synfashion_loader,
    webdataset_loader,
)
from loaders.errors import SampleMetadataError, ShardFormatError, UnsafeSourceError
from synfashion.fs.safepath import UnsafePathError
from synfashion.schema import renders_features
from synfashion.writers import ParquetShardWriter, WdsShardWriter

SMALL = TransformConfig(size=(16, 16))
ONE = LoaderConfig(batch_size=None, num_workers=0, shuffle=False)
SKIP = LoaderConfig(batch_size=None, num_workers=0, shuffle=False, on_error="skip")


@pytest.fixture(autouse=True)
def _offline(monkeypatch, tmp_path_factory):
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path_factory.getbasetemp() / "hf-cache")
    monkeypatch.setattr(datasets.config, "SLEEP_TIME_ON_THREADS_SHUTDOWN", 0)
    for var in ("RANK", "WORLD_SIZE"):
        monkeypatch.delenv(var, raising=False)


def png(seed: int) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (12, 16), (seed * 40 % 256, 90, 160)).save(buf, "PNG")
    return buf.getvalue()


def meta(i: int, **over) -> dict:
    m = {"key": f"coat__p0__t{i}__front", "split": "train", "category": "coat", "project": "p0", "texture": f"t{i}",
         "view": "front", "width": 12, "height": 16, "mode": "RGB", "format": "PNG", "orientation": 1,
         "sha256": "0" * 64, "num_bytes": 1, "source_path": f"Coat/p0_t{i}_front.png"}
    return {**m, **over}


def row(i: int, **over) -> dict:
    m = meta(i, **over)
    m.pop("split")
    if isinstance(m["category"], str):
        m["category"] = 5  # "coat" in SynFashion's ClassLabel order
    if isinstance(m["view"], str):
        m["view"] = 0  # "front" in SynFashion's view ClassLabel order
    return {"image": {"bytes": png(i), "path": f"{i}.png"}, **m}


def write_manifest(folder: Path, shards: list[dict]) -> None:
    """A manifest in the build's format listing `shards` (sizes and hashes of the files that exist)."""
    import hashlib

    entries = []
    for shard in shards:
        path = folder / shard["path"] if isinstance(shard.get("path"), str) else None
        data = path.read_bytes() if path is not None and not shard["path"].startswith(("pipe:", "/", "http")) \
            and ".." not in shard["path"] and path.is_file() else b""
        entries.append({"config": "renders", "num_samples": 0, "num_bytes": len(data),
                        "sha256": hashlib.sha256(data).hexdigest(), **shard})
    doc = {"format": "synfashion-build/2", "parameters": {"formats": ["parquet", "webdataset"]}, "shards": entries,
           "samples": []}
    (folder / "manifest.json").write_text(json.dumps(doc))


def parquet_folder(folder: Path, rows: list[dict], features: datasets.Features | None = None, *,
                   name: str = "train-00000-of-00001.parquet") -> Path:
    rel = f"data/renders/{name}"
    (folder / "data" / "renders").mkdir(parents=True, exist_ok=True)
    with ParquetShardWriter(folder / rel, features or renders_features(), row_group_size=2) as w:
        for r in rows:
            w.write(r)
    return folder / rel


def tar_folder(folder: Path, samples: list[tuple[str, dict]]) -> Path:
    """webdataset/train/train-00000.tar written by the packaging writer: one PNG + JSON per (key, metadata)."""
    path = folder / "webdataset" / "train" / "train-00000.tar"
    path.parent.mkdir(parents=True, exist_ok=True)
    with WdsShardWriter(path) as w:
        for i, (key, m) in enumerate(samples):
            w.write(key, "png", png(i), m)
    return path


def raw_tar(path: Path, members: list[tuple[str, bytes]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tf:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return path


# ------------------------------------------------------------------------------------------ manifest paths
BAD_PATHS = {
    "pipe": "pipe:touch {marker}; cat webdataset/train/train-00000.tar",
    "absolute": "{outside}",
    "dotdot": "../outside/{name}",
    "url": "https://example.invalid/{name}",
}


@pytest.fixture
def hostile(tmp_path) -> dict:
    """A built folder (one good shard of each format) and, beside it, an `outside` folder holding valid shards."""
    folder, outside = tmp_path / "ds", tmp_path / "outside"
    outside.mkdir()
    tar = tar_folder(folder, [(meta(i)["key"], meta(i)) for i in range(3)])
    pq_path = parquet_folder(folder, [row(i) for i in range(3)])
    (outside / "train-00000.tar").write_bytes(tar.read_bytes())
    (outside / "train-00000-of-00001.parquet").write_bytes(pq_path.read_bytes())
    return {"folder": folder, "outside": outside, "marker": tmp_path / "PWNED"}


@pytest.mark.parametrize("kind", sorted(BAD_PATHS))
def test_a_webdataset_manifest_path_is_never_a_command_or_outside_the_folder(hostile, kind, monkeypatch):
    folder, marker = hostile["folder"], hostile["marker"]
    bad = BAD_PATHS[kind].format(marker=marker, outside=hostile["outside"] / "train-00000.tar", name="train-00000.tar")
    write_manifest(folder, [{"path": bad, "format": "webdataset", "config": "renders", "split": "train"}])
    monkeypatch.chdir(folder)  # webdataset_loader("."): a relative manifest path then starts the shard string
    with pytest.raises(UnsafeSourceError) as err:
        list(webdataset_loader(".", transform=SMALL, loader=ONE))
    assert isinstance(err.value, UnsafePathError)  # also safepath's error (a ValueError)
    assert "manifest.json" in str(err.value) and repr(bad) in str(err.value)
    assert not marker.exists()  # the command never ran


@pytest.mark.parametrize("kind", ["absolute", "dotdot", "pipe"])
def test_a_parquet_manifest_path_is_never_outside_the_folder(hostile, kind):
    folder = hostile["folder"]
    name = "train-00000-of-00001.parquet"
    bad = BAD_PATHS[kind].format(marker=hostile["marker"], outside=hostile["outside"] / name, name=name)
    write_manifest(folder, [{"path": bad, "format": "parquet", "config": "renders", "split": "train"}])
    for streaming in (False, True):
        with pytest.raises(UnsafeSourceError, match=r"manifest\.json.*only plain relative paths"):
            synfashion_loader(folder, transform=SMALL, loader=ONE, streaming=streaming)


def test_every_manifest_path_is_checked_not_only_the_split_read(hostile):
    folder = hostile["folder"]
    write_manifest(folder, [
        {"path": "webdataset/train/train-00000.tar", "format": "webdataset", "config": "renders", "split": "train"},
        {"path": "/etc/passwd", "format": "webdataset", "config": "renders", "split": "test"},
    ])
    with pytest.raises(UnsafeSourceError, match="/etc/passwd"):
        webdataset_loader(folder, transform=SMALL, loader=ONE)


def test_a_symlink_out_of_the_folder_is_refused(hostile):
    folder = hostile["folder"]
    (folder / "webdataset" / "train" / "link.tar").symlink_to(hostile["outside"] / "train-00000.tar")
    write_manifest(folder, [{"path": "webdataset/train/link.tar", "format": "webdataset", "split": "train"}])
    with pytest.raises(UnsafeSourceError, match="symbolic link"):
        webdataset_loader(folder, transform=SMALL, loader=ONE)


def test_a_callers_own_pipe_needs_allow_pipe(hostile):
    tar = hostile["folder"] / "webdataset" / "train" / "train-00000.tar"
    with pytest.raises(UnsafeSourceError, match="allow_pipe=True"):
        webdataset_loader(f"pipe:cat {tar}", transform=SMALL, loader=ONE)
    with pytest.raises(UnsafeSourceError, match="allow_pipe=True"):
        webdataset_loader([str(tar), f"pipe:cat {tar}"], transform=SMALL, loader=ONE)
    keys = [s["key"] for s in webdataset_loader(f"pipe:cat {tar}", transform=SMALL, loader=ONE, allow_pipe=True)]
    assert sorted(keys) == [meta(i)["key"] for i in range(3)]


# ------------------------------------------------------------------------------------------ malformed tar members
BAD_MEMBERS = {
    "json-syntax": (b"{not json", "json"),
    "json-not-object": (b"[1, 2]", "json"),
    "json-not-utf8": (b'{"key": "\xff\xfe"}', "json"),
    "unknown-category": (json.dumps(meta(9, category="spacesuit")).encode(), "category"),
    "label-99": (json.dumps(meta(9, category=99)).encode(), "category"),
    "negative-label": (json.dumps(meta(9, category=-1)).encode(), "category"),
    "orientation-abc": (json.dumps(meta(9, orientation="abc")).encode(), "orientation"),
    "orientation-12": (json.dumps(meta(9, orientation=12)).encode(), "orientation"),
    "key-not-string": (json.dumps(meta(9, key=7)).encode(), "key"),
}


def bad_member_tar(path: Path, cases: list[str]) -> Path:
    members = []
    for i in range(2):
        members += [(f"good{i}.png", png(i)), (f"good{i}.json", json.dumps(meta(i)).encode())]
    for case in cases:
        members += [(f"{case}.png", png(5)), (f"{case}.json", BAD_MEMBERS[case][0])]
    return raw_tar(path, members)


@pytest.mark.parametrize("case", sorted(BAD_MEMBERS))
def test_a_malformed_tar_member_names_shard_member_key_and_field(tmp_path, case):
    tar = bad_member_tar(tmp_path / "shard-00000.tar", [case])
    with pytest.raises(SampleMetadataError) as err:
        list(webdataset_loader(str(tar), transform=SMALL, loader=ONE))
    msg = str(err.value)
    field = BAD_MEMBERS[case][1]
    assert f"shard-00000.tar member {case}." in msg and f"sample {case!r}" in msg and f"field {field!r}" in msg, msg
    assert "on_error='skip'" in msg and err.value.field == field


def test_malformed_tar_members_are_skipped_and_counted(tmp_path):
    tar = bad_member_tar(tmp_path / "shard-00000.tar", sorted(BAD_MEMBERS))
    loader = webdataset_loader(str(tar), transform=SMALL, loader=SKIP)
    with pytest.warns(UserWarning, match=f"skipped {len(BAD_MEMBERS)} undecodable or malformed"):
        keys = [s["key"] for s in loader]
    assert sorted(keys) == [meta(0)["key"], meta(1)["key"]]
    assert sorted(s.key for s in loader.skipped) == sorted(BAD_MEMBERS)
    assert all("shard-00000.tar member" in s.source and s.reason.startswith("bad metadata") for s in loader.skipped)


def test_a_malformed_member_under_a_selection_is_reported_not_dropped(tmp_path):
    tar = bad_member_tar(tmp_path / "shard-00000.tar", ["json-syntax", "label-99"])
    loader = webdataset_loader(str(tar), Selection(categories=("coat",)), SMALL, SKIP)
    with pytest.warns(UserWarning):
        assert len(list(loader)) == 2
    assert sorted(s.key for s in loader.skipped) == ["json-syntax", "label-99"]


def test_a_metadata_error_in_a_worker_reaches_the_caller(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.utils.data._utils, "MP_STATUS_CHECK_INTERVAL", 0.2)
    tar = bad_member_tar(tmp_path / "shard-00000.tar", ["json-syntax"])
    with pytest.raises(SampleMetadataError, match="member json-syntax.json"):
        list(webdataset_loader(str(tar), transform=SMALL, loader=LoaderConfig(batch_size=2, num_workers=1)))


# ------------------------------------------------------------------------------------------ malformed Parquet
def test_a_parquet_row_with_an_unknown_category_or_orientation(tmp_path):
    rows = [row(0), row(1, category=99), row(2, orientation=12), row(3)]
    parquet_folder(tmp_path, rows)
    for streaming in (False, True):
        with pytest.raises(SampleMetadataError) as err:
            list(synfashion_loader(tmp_path, transform=SMALL, loader=ONE, streaming=streaming))
        msg = str(err.value)
        assert "train-00000-of-00001.parquet row 1" in msg and meta(1)["key"] in msg and "'category'" in msg, msg
        assert "label id 99" in msg
        loader = synfashion_loader(tmp_path, transform=SMALL, loader=SKIP, streaming=streaming)
        with pytest.warns(UserWarning, match="skipped 2"):
            keys = sorted(s["key"] for s in loader)
        assert keys == [meta(0)["key"], meta(3)["key"]]
        assert sorted(s.key for s in loader.skipped) == [meta(1)["key"], meta(2)["key"]]
        assert {s.reason.split(":")[1].strip() for s in loader.skipped} == {"field 'category'", "field 'orientation'"}


def test_a_parquet_category_is_read_through_the_shards_own_class_label(tmp_path):
    """Ids refer to the ClassLabel names stored in the shard (reordered here), not to a list the loader assumes."""
    names = list(reversed(renders_features()["category"].names))
    features = datasets.Features({**renders_features(), "category": datasets.ClassLabel(names=names)})
    parquet_folder(tmp_path, [row(0, category=names.index("hat"))], features)
    (s,) = list(synfashion_loader(tmp_path, transform=SMALL, loader=ONE))
    assert s["category"] == "hat" and s["label"] == renders_features()["category"].names.index("hat")


def _raw_parquet(path: Path, table: pa.Table) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path)


@pytest.mark.parametrize("problem", ["no-key", "string-image", "features-lie"])
def test_a_parquet_shard_without_what_the_loader_reads(tmp_path, problem):
    parquet_folder(tmp_path, [row(0), row(1)])  # train-00000-of-00001: good
    bad = tmp_path / "data" / "renders" / "train-00001-of-00002.parquet"
    if problem == "no-key":
        features = datasets.Features({k: v for k, v in renders_features().items() if k != "key"})
        parquet_folder(tmp_path, [{k: v for k, v in row(2).items() if k != "key"}], features, name=bad.name)
        column = "'key'"
    elif problem == "string-image":
        _raw_parquet(bad, pa.table({"image": ["not bytes"], "key": ["k"], "category": [5]}))
        column = "column 'image' holds string"
    else:  # the stored features (metadata, also data) say Image; the column holds strings: not believed
        table = pa.table({"image": ["not bytes"], "key": ["k"], "category": [5]})
        declared = datasets.Features({"image": datasets.Image(), "key": datasets.Value("string"),
                                      "category": datasets.Value("int64")})
        _raw_parquet(bad, table.replace_schema_metadata(declared.arrow_schema.metadata))
        column = "column 'image' holds string"
    for streaming in (False, True):
        with pytest.raises(ShardFormatError) as err:
            synfashion_loader(tmp_path, transform=SMALL, loader=ONE, streaming=streaming)
        assert bad.name in str(err.value) and column in str(err.value), str(err.value)
        assert isinstance(err.value, ShardReadError)
        loader = synfashion_loader(tmp_path, transform=SMALL, loader=SKIP, streaming=streaming)
        with pytest.warns(UserWarning, match="skipped 1"):
            assert sorted(s["key"] for s in loader) == [meta(0)["key"], meta(1)["key"]]
        (skip,) = loader.skipped
        assert skip.source.endswith(bad.name) and skip.key == "*" and column in skip.reason


def test_a_shard_refused_on_rank_0_is_reported_once_across_ranks(tmp_path):
    parquet_folder(tmp_path, [row(0), row(1)])
    _raw_parquet(tmp_path / "data" / "renders" / "train-00001-of-00002.parquet", pa.table({"x": [1]}))
    reported = []
    for rank in range(2):
        cfg = LoaderConfig(batch_size=None, num_workers=0, on_error="skip", rank=rank, world_size=2)
        loader = synfashion_loader(tmp_path, transform=SMALL, loader=cfg)
        with pytest.warns(UserWarning) if rank == 0 else _no_warning():
            list(loader)
        reported += loader.skipped
    assert len(reported) == 1


class _no_warning:
    def __enter__(self):
        import warnings

        self._cm = warnings.catch_warnings()
        self._cm.__enter__()
        warnings.simplefilter("error")

    def __exit__(self, *exc):
        self._cm.__exit__(*exc)


# ------------------------------------------------------------------------------------------ extra columns
def test_extra_columns_load_and_travel_with_each_sample(tmp_path):
    features = datasets.Features({**renders_features(), "source_key": datasets.Value("string"),
                                  "source_sha256": datasets.Value("string")})
    rows = [{**row(i), "source_key": f"src{i}", "source_sha256": f"{i:064d}"} for i in range(3)]
    rel = parquet_folder(tmp_path, rows, features).relative_to(tmp_path).as_posix()
    write_manifest(tmp_path, [{"path": rel, "format": "parquet", "config": "renders", "split": "train"}])
    for streaming in (False, True):
        got = {s["key"]: s for s in synfashion_loader(tmp_path, transform=SMALL, loader=ONE, streaming=streaming)}
        assert sorted(got) == [meta(i)["key"] for i in range(3)]
        for i in range(3):
            s = got[meta(i)["key"]]
            assert (s["source_key"], s["source_sha256"], s["category"]) == (f"src{i}", f"{i:064d}", "coat")
        only = synfashion_loader(tmp_path, transform=SMALL, loader=ONE, streaming=streaming, columns=["source_key"])
        assert all("source_key" in s and "source_sha256" not in s for s in only)
    batched = synfashion_loader(tmp_path, transform=SMALL, loader=LoaderConfig(batch_size=3, num_workers=0))
    (batch,) = list(batched)
    assert sorted(batch["source_key"]) == ["src0", "src1", "src2"]
    with pytest.raises(ValueError, match="cannot travel"):
        synfashion_loader(tmp_path, transform=SMALL, loader=ONE, columns=["label"])


def test_extra_json_fields_travel_with_tar_samples(tmp_path):
    tar = tar_folder(tmp_path, [(meta(i)["key"], {**meta(i), "source_key": f"src{i}", "notes": [1, 2]})
                                for i in range(2)])
    samples = list(webdataset_loader(str(tar), transform=SMALL, loader=ONE))
    assert sorted(s["source_key"] for s in samples) == ["src0", "src1"]
    assert all("notes" not in s for s in samples)  # lists stay behind


# ------------------------------------------------------------------------------------------ image paths in rows
def test_an_image_path_in_a_loaded_dataset_stays_inside_its_folders(tmp_path):
    """A row holding an image `path` instead of bytes: read inside the dataset's folder, refused outside it."""
    from loaders import hf_image_loader

    folder, outside = tmp_path / "ds", tmp_path / "private.png"
    folder.mkdir()
    outside.write_bytes(png(1))
    (folder / "inside.png").write_bytes(png(2))
    features = datasets.Features({"image": datasets.Image(), "text": datasets.Value("string")})
    rows = [{"image": {"bytes": png(0), "path": None}, "text": "a"},
            {"image": {"bytes": None, "path": str(folder / "inside.png")}, "text": "b"},
            {"image": {"bytes": None, "path": str(outside)}, "text": "c"}]
    with ParquetShardWriter(folder / "train.parquet", features) as w:
        for r in rows:
            w.write(r)
    cfg = LoaderConfig(batch_size=None, num_workers=0, shuffle=False)
    with pytest.raises(SampleMetadataError, match=r"row 2 .*private\.png.*outside the dataset's folders"):
        list(hf_image_loader(str(folder), SMALL, cfg))
    loader = hf_image_loader(str(folder), SMALL, LoaderConfig(batch_size=None, num_workers=0, shuffle=False,
                                                               on_error="skip"), caption_column="text")
    with pytest.warns(UserWarning, match="skipped 1"):
        assert [s["caption"] for s in loader] == ["a", "b"]
    # a Dataset object the caller built from their own files: its paths are theirs
    own = datasets.Dataset.from_list(rows, features=features)
    assert [s["caption"] for s in hf_image_loader(own, SMALL, cfg, caption_column="text")] == ["a", "b", "c"]


def test_image_folder_captions_that_are_not_text(tmp_path):
    from loaders import LoaderError, image_folder_loader

    for i in range(2):
        (tmp_path / f"{i}.png").write_bytes(png(i))
    (tmp_path / "1.txt").write_bytes(b"\xff\xfe not utf-8")
    cfg = LoaderConfig(batch_size=None, num_workers=0, shuffle=False)
    with pytest.raises(SampleMetadataError, match=r"1\.png.*field 'caption': sidecar 1\.txt"):
        list(image_folder_loader(tmp_path, SMALL, cfg))
    skip = image_folder_loader(tmp_path, SMALL, LoaderConfig(batch_size=None, num_workers=0, on_error="skip"))
    with pytest.warns(UserWarning, match="skipped 1"):
        assert [s["key"] for s in skip] == ["0"]
    (tmp_path / "metadata.jsonl").write_text('["0.png", "a list"]\n')
    with pytest.raises(LoaderError, match=r"metadata\.jsonl:1: holds a list"):
        image_folder_loader(tmp_path, SMALL, cfg)
    (tmp_path / "metadata.jsonl").unlink()
    (tmp_path / "metadata.csv").write_bytes(b"file_name,text\n0.png,\xff\n")
    with pytest.raises(LoaderError, match=r"metadata\.csv: not UTF-8"):
        image_folder_loader(tmp_path, SMALL, cfg)
