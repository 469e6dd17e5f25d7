"""The release scan accounts for every entry and never hangs, crashes or merges two samples: one test per class of
failure (symbolic links, special files, non-image names, worker errors across the process pool, Unicode keys,
sidecar paths and rows, the pattern check, names printed by the CLI). CPU, tiny images."""

import contextlib
import json
import os
import pickle
import signal
import socket

import pytest

from synfashion.release.imagecheck import ImageRejected
from synfashion.release.scan import (
    ReleaseLayoutError, ScanConfig, ScanResult, reserved_sidecar_columns, scan_release,
)
from synfashion.schema import garment_key, make_key
from tests.conftest import image_bytes, write_release


@contextlib.contextmanager
def deadline(seconds: int = 20):
    """Fail instead of hanging: the old scan blocked forever on a FIFO."""

    def expired(signum, frame):
        raise TimeoutError(f"the scan did not finish within {seconds}s")

    old = signal.signal(signal.SIGALRM, expired)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def _scan(root, **config) -> ScanResult:
    with deadline():
        return scan_release(root, ScanConfig(**config), progress=False)


def _reasons(res: ScanResult) -> dict[str, str]:
    return {r.source_path: r.reason for r in res.rejected}


def _accounted(res: ScanResult) -> set[str]:
    return {r.source_path for r in res.records} | set(_reasons(res)) | {i.rstrip("/") for i in res.ignored}


# ------------------------------------------------------------------------------------------ symbolic links
def test_symlinked_category_folder_inside_the_release_is_followed_and_loops_are_named(tmp_path):
    rel = write_release(tmp_path / "rel", {
        ".store/coat/coat-p01_t1_front.jpg": image_bytes(seed=1),
        ".store/coat/coat-p01_t1_back.jpg": image_bytes(seed=2),
        "Hoodie/hoodie-p01_t2_front.jpg": image_bytes(seed=3),
    })
    os.symlink(".store/coat", rel / "Coat")  # a category folder that is a link, inside the release
    os.symlink("..", rel / "Hoodie" / "up")  # a loop back to the root
    os.symlink("../Coat", rel / "Hoodie" / "coats")  # a second path to a folder already listed
    res = _scan(rel)
    assert sorted(r.source_path for r in res.records) == [
        "Coat/coat-p01_t1_back.jpg", "Coat/coat-p01_t1_front.jpg", "Hoodie/hoodie-p01_t2_front.jpg"]
    assert _reasons(res) == {"Hoodie/up": "link-loop", "Hoodie/coats": "duplicate"}
    assert res.ignored == [".store/"]
    assert {r.category for r in res.records} == {"coat", "hoodie"}


def test_symlink_leading_outside_the_release_is_rejected_unless_allowed(tmp_path):
    outside = write_release(tmp_path / "elsewhere", {"x.jpg": image_bytes(seed=9),
                                                     "dress/dress-p01_t1_front.jpg": image_bytes(seed=8)})
    rel = write_release(tmp_path / "rel", {"Hoodie/hoodie-p01_t1_front.jpg": image_bytes(seed=1),
                                           "README.md": b"docs"})
    os.symlink(outside / "x.jpg", rel / "Hoodie" / "hoodie-p02_t1_front.jpg")
    os.symlink(outside / "dress", rel / "Dress")
    os.symlink(outside / "x.jpg", rel / "LICENSE")  # a root-level doc is never read: ignored, not rejected
    res = _scan(rel)
    assert [r.source_path for r in res.records] == ["Hoodie/hoodie-p01_t1_front.jpg"]
    assert _reasons(res) == {"Hoodie/hoodie-p02_t1_front.jpg": "outside-release", "Dress": "outside-release"}
    assert "--follow-outside-links" in res.rejected[0].detail
    assert str(outside) not in json.dumps([r.as_dict() for r in res.rejected])  # no absolute path in the manifest
    allowed = _scan(rel, follow_outside_links=True)
    assert not allowed.rejected and len(allowed.records) == 3
    assert allowed.outside_links == ["Dress", "Hoodie/hoodie-p02_t1_front.jpg"]
    assert any("outside the release" in n and "Dress" in n for n in allowed.notes)


# ------------------------------------------------------------------------------------------ special files
def test_fifo_socket_device_and_broken_links_are_rejected_by_name_without_blocking(tmp_path):
    rel = write_release(tmp_path / "r", {"Hat/hat-p01_t1_front.jpg": image_bytes(seed=1)})
    os.mkfifo(rel / "Hat" / "hat-p02_t1_front.jpg")  # the old scan blocked on open() forever
    os.symlink("/dev/zero", rel / "Hat" / "hat-p03_t1_front.jpg")  # the old scan read until MemoryError
    os.symlink("missing.jpg", rel / "Hat" / "hat-p04_t1_front.jpg")
    sock = socket.socket(socket.AF_UNIX)
    with contextlib.closing(sock):
        sock.bind(str(rel / "Hat" / "hat-p05_t1_front.jpg"))
        res = _scan(rel)
    assert [r.source_path for r in res.records] == ["Hat/hat-p01_t1_front.jpg"]
    reasons = _reasons(res)
    assert reasons == {"Hat/hat-p02_t1_front.jpg": "special-file", "Hat/hat-p03_t1_front.jpg": "special-file",
                       "Hat/hat-p04_t1_front.jpg": "broken-link", "Hat/hat-p05_t1_front.jpg": "special-file"}
    details = {r.source_path: r.detail for r in res.rejected}
    assert "FIFO" in details["Hat/hat-p02_t1_front.jpg"] and "character device" in details["Hat/hat-p03_t1_front.jpg"]
    assert "socket" in details["Hat/hat-p05_t1_front.jpg"]


def test_a_file_swapped_for_a_fifo_after_listing_cannot_block_the_worker(tmp_path):
    from synfashion.release.scan import _check_file

    os.mkfifo(tmp_path / "a.jpg")
    with deadline():
        rel, digest, stamp, verdict = _check_file((str(tmp_path), "a.jpg", 10**6, "structure", 10**6))
    assert isinstance(verdict, ImageRejected) and verdict.reason == "special-file" and digest == ""


def test_oversized_file_is_rejected_before_it_is_read(tmp_path):
    rel = write_release(tmp_path / "r", {"Hat/hat-p01_t1_front.jpg": image_bytes(seed=1)})
    res = _scan(rel, max_bytes=100)
    assert _reasons(res) == {"Hat/hat-p01_t1_front.jpg": "too-large"}


# ------------------------------------------------------------------------------------------ non-image names
def test_only_image_extensions_become_records(tmp_path):
    img = image_bytes(seed=1)
    rel = write_release(tmp_path / "r", {
        "Suit/suit-p01_t1_front": img,  # no extension: the old scan packaged it as a tar member "<key>." + ""
        "Suit/suit-p01_t1_back.json": image_bytes(seed=2),  # would overwrite the sample's <key>.json member
        "Suit/suit-p01_t1_random1.txt": image_bytes(seed=3),
        "Suit/suit-p01_t1_random2.JPG": image_bytes(seed=4),  # case does not matter
    })
    res = _scan(rel)
    assert [r.source_path for r in res.records] == ["Suit/suit-p01_t1_random2.JPG"]
    assert _reasons(res) == dict.fromkeys(
        ["Suit/suit-p01_t1_front", "Suit/suit-p01_t1_back.json", "Suit/suit-p01_t1_random1.txt"],
        "unsupported-extension")
    assert res.candidates == 1


# ------------------------------------------------------------------------------------------ worker errors
def test_image_rejected_survives_pickling():
    e = pickle.loads(pickle.dumps(ImageRejected("corrupt", "JPEG truncated at offset 300")))
    assert (type(e), e.reason, e.detail, str(e)) == (ImageRejected, "corrupt", "JPEG truncated at offset 300",
                                                     "corrupt: JPEG truncated at offset 300")


def test_every_exception_the_scan_pool_can_return_or_raise_pickles():
    for e in (ImageRejected("too-large", "x"), ReleaseLayoutError("bad folder")):
        back = pickle.loads(pickle.dumps(e))
        assert type(back) is type(e) and str(back) == str(e)


def _release_with_truncated_jpeg(root, n=24):
    files = {f"Hoodie/hoodie-p{i:02d}_t{i}_front.jpg": image_bytes(size=(16, 16), seed=i) for i in range(n)}
    files["Hoodie/hoodie-p05_t5_front.jpg"] = files["Hoodie/hoodie-p05_t5_front.jpg"][:200]
    return write_release(root, files)


def test_truncated_jpeg_with_two_workers_is_one_rejection_not_a_broken_pool(tmp_path):
    rel = _release_with_truncated_jpeg(tmp_path / "r")  # 24 files: more than one chunk, so the pool is used
    with deadline(120):
        res = scan_release(rel, workers=2, progress=False)
    assert _reasons(res) == {"Hoodie/hoodie-p05_t5_front.jpg": "corrupt"}
    assert len(res.records) == 23


def test_build_with_two_workers_lists_the_truncated_jpeg(tmp_path):
    from synfashion.build import BuildConfig, RejectedInputsError, build_dataset

    rel = _release_with_truncated_jpeg(tmp_path / "r")
    with deadline(300), pytest.raises(RejectedInputsError) as err:
        build_dataset(rel, tmp_path / "out", workers=2, progress=False)
    assert [r.source_path for r in err.value.rejected] == ["Hoodie/hoodie-p05_t5_front.jpg"]
    with deadline(300):
        result = build_dataset(rel, tmp_path / "out2", BuildConfig(allow_rejected=True), workers=2, progress=False)
    assert [r["source_path"] for r in result.manifest.rejected] == ["Hoodie/hoodie-p05_t5_front.jpg"]
    assert result.manifest.counts["total"] == 23


# ------------------------------------------------------------------------------------------ keys
def test_keys_of_plain_ascii_names_are_unchanged():
    assert make_key("down-jacket", "down-jacket-p01", "tdown2", "back") == "down-jacket__down-jacket-p01__tdown2__back"
    assert make_key("coat", "P17", "042", "front") == "coat__P17__042__front"
    assert make_key("coat", "a--b", "t1", "front") == "coat__a--b__t1__front"


def test_unicode_names_give_distinct_stable_ascii_keys():
    chinese = ["羽绒服", "连衣裙", "衬衫", "西装", "卫衣", "毛衣", "风衣", "夹克", "外套", "汉服", "牛仔裤", "短裤",
               "帽子", "套装", "家居服", "内衣", "泳装", "背心", "吊带", "半身裙", "长裤", "T恤", "大衣", "棉服",
               "马甲", "旗袍", "唐装", "睡衣", "运动服", "羊绒", "丝绸", "亚麻", "棉布", "牛仔", "格子", "条纹",
               "碎花", "波点", "刺绣", "印花"]
    names = chinese + ["Mäntel", "Möntel", "Mantel", "Man tel", "Man_tel", "Man-tel", "-Mantel", "ü", "u", "𝔘"]
    keys = [make_key("coat", n, "t1", "front") for n in names]
    assert len(set(keys)) == len(names)
    for k in keys:
        assert k.isascii() and "." not in k and "/" not in k and k.count("__") == 3
        assert all(part and part[0] != "_" and part[-1] != "_" for part in k.split("__"))
    assert make_key("coat", "Mäntel", "t1", "front") == "coat__Mantel_5756a8a2e468__t1__front"  # stable forever
    assert make_key("coat", "Mantel", "t1", "front") == "coat__Mantel__t1__front"
    assert make_key("coat", "羽绒服", "t1", "front").startswith(garment_key("coat", "羽绒服", "t1") + "__")


def test_scan_keeps_unicode_projects_apart(tmp_path):
    names = ["羽绒服", "连衣裙", "衬衫", "西装", "Mäntel", "Möntel"]
    files = {f"Coat/img{i}.jpg": image_bytes(size=(16, 16), seed=i) for i in range(len(names))}
    rel = write_release(tmp_path / "r", files)
    (rel / "metadata.jsonl").write_text("".join(
        json.dumps({"file_name": f"Coat/img{i}.jpg", "project": n, "texture": "花", "view": "front"}) + "\n"
        for i, n in enumerate(names)), encoding="utf-8")
    res = _scan(rel)
    assert not res.rejected and len({r.key for r in res.records}) == len(names)
    assert {r.project for r in res.records} == set(names)


def test_key_collision_is_rejected_not_merged(tmp_path, monkeypatch):
    import synfashion.release.scan as scan

    rel = write_release(tmp_path / "r", {"Hat/hat-p01_t1_front.jpg": image_bytes(seed=1),
                                         "Hat/hat-p02_t1_front.jpg": image_bytes(seed=2)})
    monkeypatch.setattr(scan, "make_key", lambda *parts: "same")  # what a hash collision would do
    res = _scan(rel)
    assert _reasons(res) == {"Hat/hat-p02_t1_front.jpg": "key-collision"}


# ------------------------------------------------------------------------------------------ sidecar
@pytest.mark.parametrize("name", ["../Coat/coat-p01_t1_front.jpg", "/Coat/coat-p01_t1_front.jpg",
                                  "Coat/../Coat/coat-p01_t1_front.jpg", "pipe:cat Coat/coat-p01_t1_front.jpg",
                                  ".//Coat/coat-p01_t1_front.jpg"])
def test_sidecar_file_name_must_be_a_plain_relative_path(tmp_path, name):
    # the old scan stripped every leading "." and "/" and applied such a row to Coat/coat-p01_t1_front.jpg
    rel = write_release(tmp_path / "r", {"Coat/coat-p01_t1_front.jpg": image_bytes()})
    rows = [{"file_name": "Coat/other.jpg", "view": "front"}, {"file_name": name, "view": "back"}]
    (rel / "metadata.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(ReleaseLayoutError, match=r"metadata\.jsonl:2: file_name .* plain relative path"):
        _scan(rel)


def test_sidecar_leading_dot_slash_is_stripped_once(tmp_path):
    rel = write_release(tmp_path / "r", {"Coat/x.jpg": image_bytes()})
    (rel / "metadata.jsonl").write_text(json.dumps(
        {"file_name": "./Coat/x.jpg", "project": "p", "texture": "t", "view": "front"}) + "\n")
    assert [r.source_path for r in _scan(rel).records] == ["Coat/x.jpg"]


@pytest.mark.parametrize("line", ['["Coat/x.jpg", "p", "t", "front"]', '"Coat/x.jpg"', "17", "null"])
def test_jsonl_row_that_is_not_an_object_is_an_error_naming_the_row(tmp_path, line):
    rel = write_release(tmp_path / "r", {"Coat/x.jpg": image_bytes()})
    (rel / "metadata.jsonl").write_text('{"file_name": "Coat/y.jpg", "view": "front"}\n' + line + "\n")
    with pytest.raises(ReleaseLayoutError, match=r"metadata\.jsonl:2: row is a JSON \w+, not an object"):
        _scan(rel)


def test_csv_sidecar_with_a_byte_order_mark(tmp_path):
    rel = write_release(tmp_path / "r", {"Coat/x.jpg": image_bytes()})
    (rel / "metadata.csv").write_bytes("file_name,project,texture,view,fabric\nCoat/x.jpg,p1,t1,front,wool\n"
                                       .encode("utf-8-sig"))
    res = _scan(rel)
    assert [(r.project, r.extra) for r in res.records] == [("p1", {"fabric": "wool"})]


@pytest.mark.parametrize("column", ["key", "split", "category", "image", "sha256", "source_path", "front", "__key__"])
def test_sidecar_column_that_shadows_ours_is_an_error_naming_it(tmp_path, column):
    rel = write_release(tmp_path / "r", {"Coat/coat-p01_t1_front.jpg": image_bytes()})
    (rel / "metadata.jsonl").write_text(json.dumps(
        {"file_name": "Coat/coat-p01_t1_front.jpg", column: "x"}) + "\n")
    with pytest.raises(ReleaseLayoutError, match=rf"metadata\.jsonl:1: column '{column}' would shadow"):
        _scan(rel)
    assert column in reserved_sidecar_columns() or column.startswith("__")


# ------------------------------------------------------------------------------------------ pattern and counts
def test_pattern_missing_a_group_is_one_error_up_front(tmp_path):
    files = {f"Coat/p{i}_t{i}.jpg": image_bytes(seed=i) for i in range(3)}
    rel = write_release(tmp_path / "r", files)
    pattern = r"(?P<project>[a-z0-9]+)_(?P<texture>[a-z0-9\[\]]+)"  # no view group; [] is not rich markup here
    with pytest.raises(ReleaseLayoutError) as err:
        _scan(rel, pattern=pattern)
    assert "'view'" in str(err.value) and repr(pattern) in str(err.value)
    # a sidecar that gives the view for every row makes the same pattern usable, and says that it overrides
    (rel / "metadata.jsonl").write_text("".join(
        json.dumps({"file_name": f, "view": "front"}) + "\n" for f in files))
    res = _scan(rel, pattern=pattern)
    assert len(res.records) == 3 and not res.rejected
    assert res.notes == ["metadata sidecar metadata.jsonl gives view for 3 of 3 image file(s); where it gives a value "
                         "it overrides --pattern"]


def test_all_rejected_is_told_apart_from_no_images(tmp_path):
    empty = _scan(write_release(tmp_path / "a", {"Coat/notes.md": b"x"}))
    assert empty.candidates == 0 and "no images found" in empty.no_records_message()
    bad = _scan(write_release(tmp_path / "b", {"Coat/coat-p1_t1_front.jpg": b"not a jpeg"}))
    assert bad.candidates == 1 and not bad.records
    assert bad.no_records_message().startswith("all 1 image file(s)") and "no images found" not in bad.no_records_message()


def test_every_entry_is_a_record_a_rejection_or_ignored(tmp_path):
    rel = write_release(tmp_path / "r", {
        "Hat/hat-p01_t1_front.jpg": image_bytes(seed=1), "Hat/a.txt": b"x", "Hat/.cache/junk.bin": b"x",
        "Hat/sub/hat-p02_t1_front.png": image_bytes("PNG", seed=2), "notes.txt": b"x"})
    os.mkfifo(rel / "Hat" / "pipe")
    os.symlink("/", rel / "Hat" / "root-link")
    res = _scan(rel)
    on_disk = {p.relative_to(rel).as_posix() for p in rel.rglob("*") if p.is_symlink() or not p.is_dir()}
    on_disk = {p for p in on_disk if not p.startswith("Hat/.cache/")} | {"Hat/.cache"}
    assert _accounted(res) == on_disk


# ------------------------------------------------------------------------------------------ CLI output
def _cli(capsys, *argv) -> tuple[int, str]:
    from synfashion.cli import main

    code = main(list(map(str, argv)))
    return code, capsys.readouterr().err


def test_cli_prints_names_with_markup_and_control_characters_literally(tmp_path, capsys):
    rel = write_release(tmp_path / "r", {"Hat/hat-p01_t1_front.jpg": image_bytes(seed=1),
                                         "Hat/hat-p02_t2_back.jpg": image_bytes(seed=2),
                                         "Hat/x[/bold].jpg": image_bytes(seed=3),
                                         "Hat/[red]y[/red].jpg": image_bytes(seed=4),
                                         "Hat/evil\x1b[2J.jpg": image_bytes(seed=5)})
    code, err = _cli(capsys, "build", rel, tmp_path / "o", "--workers", "1")
    assert code == 2
    assert "rejected Hat/x[/bold].jpg: unparseable-name" in err
    assert "rejected Hat/[red]y[/red].jpg: unparseable-name" in err
    assert "rejected Hat/evil\\x1b[2J.jpg: bad-name" in err and "\x1b" not in err
    assert "3 input file(s)" in err and "Traceback" not in err
    code, err = _cli(capsys, "build", rel, tmp_path / "o", "--workers", "1", "--allow-rejected")
    assert code == 0 and "built" in err and "rejected Hat/x[/bold].jpg" in err and "\x1b" not in err


def test_cli_error_with_markup_in_a_folder_name_is_one_literal_line(tmp_path, capsys):
    rel = write_release(tmp_path / "r", {"[bold]Socks/a_b_front.jpg": image_bytes()})  # an unknown category
    code, err = _cli(capsys, "build", rel, tmp_path / "o", "--workers", "1")
    assert code == 2 and "folder '[bold]Socks' is not a SynFashion category" in err and err.startswith("error: ")


def test_cli_prints_scan_and_split_notes_literally(tmp_path, capsys, monkeypatch):
    # the notes the scan makes ride in the manifest (the build's job); the CLI prints whatever is there, literally
    import synfashion.build as build
    from synfashion.build import BuildResult
    from synfashion.manifest import Manifest

    manifest = Manifest(samples=[], shards=[], parameters={}, counts={"total": 1, "per_split": {"train": 1}},
                        scan={"notes": ["--pattern '[a-z]+(?P<view>[/a])' overridden"]},
                        splits={"notes": ["category [blink]x[/blink] short"]})
    monkeypatch.setattr(build, "build_dataset", lambda *a, **k: BuildResult(tmp_path, manifest, 0, 0))
    code, err = _cli(capsys, "build", tmp_path, tmp_path / "o", "--workers", "1")
    assert code == 0
    assert "scan note: --pattern '[a-z]+(?P<view>[/a])' overridden" in err
    assert "split note: category [blink]x[/blink] short" in err
