"""The one "path or Hub id" rule (synfashion.hub.refs) and the one dataset reference (loaders.sources.DatasetRef):
every command that takes a dataset or a model decides through them, so their edge cases are tested here, once."""

from __future__ import annotations

import pytest

from loaders.sources import DatasetRef, SourceError, open_records
from synfashion.hub.refs import RefError, is_hub_id, looks_like_path, split_revision


@pytest.mark.parametrize("text, path_like, hub", [
    ("./x", True, False), ("../x", True, False), ("~/x", True, False), ("/abs/x", True, False),
    ("a/b/c", True, False), ("a\\b", True, False), ("owner/", True, False), (".hidden/x", True, False),
    ("owner/name", False, True), ("owner/name@v1.0", False, True), ("owner/name@" + "a" * 40, False, True),
    ("name", False, False), ("owner/na me", False, False), ("owner/-x", False, False),
])
def test_the_path_or_hub_id_rule(text, path_like, hub):
    assert looks_like_path(text) is path_like
    assert is_hub_id(text) is hub


def test_an_existing_folder_wins_over_a_hub_id_of_the_same_spelling(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "owner" / "name").mkdir(parents=True)
    assert not is_hub_id("owner/name")
    ref = DatasetRef.parse("owner/name")
    assert ref.kind == "images" and ref.path.name == "name"


def test_revisions_split_off_and_the_typed_one_wins():
    assert split_revision("owner/name@main") == ("owner/name", "main")
    assert split_revision("owner/name") == ("owner/name", None)
    ref = DatasetRef.parse("owner/name@v2", revision="main")
    assert (ref.kind, ref.repo_id, ref.revision) == ("hub", "owner/name", "v2")
    assert DatasetRef.parse("owner/name", revision="main").revision == "main"


@pytest.mark.parametrize("text, message", [
    ("./missing", "no such folder"), ("~/surely-missing-folder-x", "no such folder"), ("a/b/c", "no such folder"),
    ("just-a-name", "not a Hub dataset id"),
])
def test_a_missing_path_is_never_a_hub_lookup(tmp_path, monkeypatch, text, message):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(RefError, match=message):
        DatasetRef.parse(text)


def test_folder_kinds(built_dataset, tmp_path):
    assert DatasetRef.parse(str(built_dataset)).kind == "built"
    assert DatasetRef.parse(str(built_dataset / "webdataset" / "test")).kind == "tars"
    (tmp_path / "photos").mkdir()
    assert DatasetRef.parse(str(tmp_path / "photos")).kind == "images"
    assert DatasetRef.parse(str(tmp_path / "photos"), kind="datasets").kind == "datasets"
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(RefError, match="a file, not a dataset folder"):
        DatasetRef.parse(str(tmp_path / "file.txt"))


def test_records_of_a_built_folder_and_of_its_tars_agree(built_dataset):
    built = open_records(str(built_dataset), ["test"])
    tars = open_records(str(built_dataset / "webdataset" / "test"), ["test"])
    assert [s["key"] for s in built.samples] == [s["key"] for s in tars.samples]
    key = built.samples[0]["key"]
    assert built.read(key) == tars.read(key)
    with pytest.raises(SourceError, match="unknown split"):
        open_records(str(built_dataset), ["nope"])
