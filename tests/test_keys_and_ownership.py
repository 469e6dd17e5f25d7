"""Keys are names, never paths; an overwrite replaces only what the same command wrote (issue 20, the urgent part).

A dataset's sample key becomes file names (`<key>.json` in a tar, staged `<key>.image` / `<key>.source`), so a key
read from a manifest, a Parquet row or a tar member is checked where it is read, and `key_file` is the one way a key
becomes a file name. A translated dataset's `--overwrite` never removes an original build, nor the run's source.
"""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import tarfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from synfashion.build import BuildConfig, BuildError, BuildState, build_dataset
from synfashion.build.staging import Staging
from synfashion.manifest import Manifest, ManifestError
from synfashion.fs.safepath import UnsafePathError, check_key, key_file, key_problem
from tests.conftest import small_release

HOSTILE_KEYS = [
    "..", "../x", "../../etc/passwd", "/abs", "a/b", "a\\b", "..\\..\\x", "C:x", "pipe:rm -rf", "https://x/y",
    "", " ", "a b", "a.b", ".hidden", "x.", "a\x00b", "a\nb", "a\tb", "\x1b[31m", "é", "ＡＢ", "．．", "a\u2215b",
    "%2e%2e%2fx", "~", "~/x", "$HOME", "`id`", "x" * 241, None, 1, b"abc", ["a"],
]


def _tree(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


# ----------------------------------------------------------------------------------------------- the key rule
@pytest.mark.parametrize("key", HOSTILE_KEYS, ids=repr)
def test_key_file_refuses_every_hostile_key_and_never_leaves_its_folder(tmp_path, key):
    assert key_problem(key) is not None
    with pytest.raises(UnsafePathError, match="sample key"):
        key_file(tmp_path / "staged", key, ".image")
    with pytest.raises(UnsafePathError):
        Staging(tmp_path).path(key, "image")
    assert not any(tmp_path.rglob("*"))


def test_plain_keys_are_files_directly_in_the_folder(tmp_path):
    for key in ("hoodie-p01__t0042__front", "a", "A_b-9", "x" * 240, "u_0123456789ab__v"):
        assert check_key(key) == key
        path = key_file(tmp_path, key, ".source")
        assert path.parent == tmp_path and path.name == f"{key}.source"
    with pytest.raises(ValueError, match="extension"):
        key_file(tmp_path, "a", "/../../x")


def test_the_writers_refuse_a_key_that_is_a_path(tmp_path):
    from synfashion.writers.webdataset import WdsShardWriter

    with pytest.raises(UnsafePathError, match="sample key"):
        with WdsShardWriter(tmp_path / "x.tar") as w:
            w.write("../../escape", "png", b"data", {})
    assert not (tmp_path / "x.tar").exists()
    from synfashion.build.plan import plan_shards

    with pytest.raises(UnsafePathError, match="sample key"):
        plan_shards([{"key": "a/b", "split": "test", "category": "dress", "project": "p", "texture": "t",
                      "num_bytes": 1}], 100)


def test_a_manifest_with_a_path_for_a_key_is_refused_where_it_is_read(built_dataset, tmp_path):
    folder = tmp_path / "bad"
    shutil.copytree(built_dataset, folder)
    doc = json.loads((folder / "manifest.json").read_text())
    doc["samples"][0]["key"] = "../../../pwned"
    (folder / "manifest.json").write_text(json.dumps(doc))
    with pytest.raises(ManifestError, match=r"key '\.\./\.\./\.\./pwned' is not a plain name"):
        Manifest.read(folder)


def test_a_scanned_name_too_long_for_a_key_is_rejected_by_name(tmp_path):
    from synfashion.release.scan import ScanConfig, scan_release

    release = tmp_path / "release"
    jpg = next(small_release(tmp_path / "rel", categories=("Dress",), projects=1, textures=1).rglob("*.jpg"))
    for project, texture in (("p" * 200, "t" * 100), ("p01", "t1")):  # a key over 240 characters, and a plain one
        (release / "Dress" / project).mkdir(parents=True)
        shutil.copy(jpg, release / "Dress" / project / f"{texture}_front.jpg")
    pattern = "(?P<project>[^/]+)/(?P<texture>[^_/]+)_(?P<view>[a-z0-9]+)"
    scan = scan_release(release, ScanConfig(pattern=pattern), workers=1, progress=False)
    assert [(r.reason, r.source_path.startswith("Dress/ppp")) for r in scan.rejected] == [("bad-name", True)]
    assert [r.key for r in scan.records] == ["dress__p01__t1__front"]


# ----------------------------------------------------------------------------------------------- hostile sources
def _poison_folder(src: Path, dst: Path, key: str) -> str:
    """A copy of a built folder whose first test sample's key is `key` in the manifest, the Parquet rows and the
    tars alike (a consistent hostile dataset, as a stranger's Hub repo could be)."""
    shutil.copytree(src, dst)
    doc = json.loads((dst / "manifest.json").read_text())
    victim = next(s for s in doc["samples"] if s["split"] == "test")
    old = victim["key"]
    victim["key"] = key
    for shard in doc["shards"]:
        path = dst / shard["path"]
        if shard["format"] == "parquet":
            table = pq.read_table(path)
            if "key" in table.column_names:
                keys = [key if k == old else k for k in table.column("key").to_pylist()]
                table = table.set_column(table.column_names.index("key"), "key", pa.array(keys))
                pq.write_table(table, path)
        else:
            members = []
            with tarfile.open(path) as tf:
                for m in tf:
                    data = tf.extractfile(m).read()
                    stem, _, ext = m.name.partition(".")
                    if stem == old:
                        m.name = f"{key}.{ext}"
                        if ext == "json":
                            data = json.dumps({**json.loads(data), "key": key}).encode()
                            m.size = len(data)
                    members.append((m, data))
            with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tf:
                for m, data in members:
                    tf.addfile(m, io.BytesIO(data))
        data = path.read_bytes()
        shard.update(num_bytes=len(data), sha256=hashlib.sha256(data).hexdigest())
    (dst / "manifest.json").write_text(json.dumps(doc))
    return old


@pytest.mark.parametrize("key", ["../../../pwned", "sub/../../pwned"])
def test_translate_dataset_refuses_a_source_whose_key_is_a_path_and_writes_nothing(built_dataset, tmp_path, capsys,
                                                                                  key):
    from r2r.cli import main

    src = tmp_path / "a" / "b" / "c" / "hostile"
    _poison_folder(built_dataset, src, key)
    out = tmp_path / "a" / "b" / "c" / "out"
    before = _tree(tmp_path)
    assert main(["translate-dataset", str(src), str(out), "--model", str(tmp_path / "no-model"), "--split", "test",
                 "--no-progress", "--num-workers", "0"]) == 2
    assert "is not a plain name" in capsys.readouterr().err
    assert _tree(tmp_path) == before and not out.exists()
    assert not list(tmp_path.rglob("pwned*"))


def test_a_tar_source_whose_json_names_another_key_is_refused(built_dataset, tmp_path):
    from loaders.sources import SourceError, open_records

    tars = tmp_path / "tars"
    tars.mkdir()
    tar = next((built_dataset / "webdataset" / "test").glob("*.tar"))
    members = []
    with tarfile.open(tar) as tf:
        for m in tf:
            data = tf.extractfile(m).read()
            if m.name.endswith(".json") and not any(n.name.endswith(".json") for n, _ in members):
                data = json.dumps({**json.loads(data), "key": "../../pwned"}).encode()
                m.size = len(data)
            members.append((m, data))
    with tarfile.open(tars / "test-00000.tar", "w", format=tarfile.PAX_FORMAT) as tf:
        for m, data in members:
            tf.addfile(m, io.BytesIO(data))
    with pytest.raises(SourceError, match=r"says its key is '\.\./\.\./pwned', not the member's"):
        open_records(tars, ["test"])
    assert not list(tmp_path.rglob("pwned*"))


def test_a_tar_source_without_sha256_or_category_is_one_line(built_dataset, tmp_path):
    from loaders.sources import SourceError, open_records

    tars = tmp_path / "tars"
    tars.mkdir()
    tar = next((built_dataset / "webdataset" / "test").glob("*.tar"))
    with tarfile.open(tar) as src, tarfile.open(tars / "t.tar", "w", format=tarfile.PAX_FORMAT) as dst:
        for m in src:
            data = src.extractfile(m).read()
            if m.name.endswith(".json"):
                data = json.dumps({k: v for k, v in json.loads(data).items() if k != "sha256"}).encode()
                m.size = len(data)
            dst.addfile(m, io.BytesIO(data))
    with pytest.raises(SourceError, match=r"\.json has no sha256"):
        open_records(tars, ["test"])


# ----------------------------------------------------------------------------------------------- ownership
@pytest.fixture
def two_builds(sample_release, built_dataset, tmp_path):
    """A copy of the session's build (the source) and a second original build (a stranger's OUT)."""
    src = tmp_path / "src"
    shutil.copytree(built_dataset, src)
    other = tmp_path / "other-build"
    build_dataset(small_release(tmp_path / "rel", categories=("Dress",), projects=2, textures=1), other,
                  BuildConfig(shard_size=50_000), workers=1, progress=False)
    return src, other


def _translate(src, out, *extra) -> int:
    from r2r.cli import main

    return main(["translate-dataset", str(src), str(out), "--model", "no-such-model-folder", "--split", "test",
                 "--no-progress", "--num-workers", "0", *extra])


@pytest.mark.parametrize("where", ["src", "other", "parent-of-src", "inside-src"])
def test_translate_overwrite_never_touches_an_original_build_or_its_source(two_builds, tmp_path, capsys, where):
    src, other = two_builds
    out = {"src": src, "other": other, "parent-of-src": tmp_path, "inside-src": src / "translated"}[where]
    before = {p: _tree(p) for p in (src, other)}
    assert _translate(src, out, "--overwrite") == 2
    err = capsys.readouterr().err
    expected = {"src": "is the source dataset", "other": "SynFashion build (synfashion build)",
                "parent-of-src": "contains the source dataset", "inside-src": "lies inside the source dataset"}
    assert expected[where] in err, err
    assert {p: _tree(p) for p in (src, other)} == before
    assert not (src / "translated").exists()


def test_build_overwrite_never_replaces_a_translated_dataset(tmp_path):
    from synfashion.testing.fixtures import make_built_folder

    out = make_built_folder(tmp_path / "translated")
    doc = json.loads((out / "manifest.json").read_text())
    doc["kind"] = "translated"
    (out / "manifest.json").write_text(json.dumps(doc))
    before = _tree(out)
    state = BuildState(out, "f" * 64, kind="synfashion")
    with pytest.raises(BuildError, match=r"translated dataset \(r2r translate-dataset\).*never replaced"):
        state.prepare(["data/renders/test-00000-of-00001.parquet"], overwrite=True)
    assert _tree(out) == before


def test_an_interrupted_build_of_another_kind_is_not_replaced_either(tmp_path):
    out = tmp_path / "out"
    BuildState(out, "a" * 64, kind="synfashion").prepare([], overwrite=False)
    (out / "data").mkdir()
    (out / "data" / "x.parquet").write_bytes(b"partial")
    with pytest.raises(BuildError, match="an interrupted SynFashion build"):
        BuildState(out, "b" * 64, kind="translated").prepare([], overwrite=True)
    assert (out / "data" / "x.parquet").read_bytes() == b"partial"
    assert (out / ".synfashion-build" / "kind").read_text() == "synfashion"


def test_a_release_build_into_its_own_release_folder_is_refused(sample_release, tmp_path):
    release = tmp_path / "release"
    shutil.copytree(sample_release, release)
    before = _tree(release)
    with pytest.raises(BuildError, match="lies inside the release folder"):
        build_dataset(release, release / "out", BuildConfig(), workers=1, progress=False)
    assert _tree(release) == before
