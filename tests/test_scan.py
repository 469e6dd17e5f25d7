import json

import pytest

from synfashion.release.scan import ReleaseLayoutError, ScanConfig, scan_release
from tests.conftest import image_bytes, small_release, write_release


def test_scan_parses_default_naming(tmp_path):
    root = small_release(tmp_path / "rel")
    res = scan_release(root, progress=False)
    assert not res.rejected and len(res.records) == 4 * 3 * 2 * 4
    r = next(r for r in res.records if r.source_path == "Down jacket/down-jacket-p01_tdown2_back.jpg")
    assert (r.category, r.project, r.texture, r.view) == ("down-jacket", "down-jacket-p01", "tdown2", "back")
    assert r.key == "down-jacket__down-jacket-p01__tdown2__back" and "." not in r.key
    assert len(r.sha256) == 64 and r.num_bytes > 0 and r.mode == "RGB"


def test_unknown_category_folder_is_an_error_naming_it(tmp_path):
    write_release(tmp_path, {"Socks/a_b_front.jpg": image_bytes()})
    with pytest.raises(ReleaseLayoutError, match="Socks"):
        scan_release(tmp_path, progress=False)


def test_every_file_accounted_for(tmp_path):
    good = image_bytes(seed=1)
    files = {
        "Hoodie/hoodie-p01_t1_front.jpg": good,
        "Hoodie/hoodie-p01_t1_back.jpg": image_bytes(seed=2)[:300],  # truncated
        "Hoodie/notes.txt": b"not an image",
        "Hoodie/weird-name.jpg": image_bytes(seed=3),  # unparseable
        "Hoodie/hoodie-p01_t1_sideways.jpg": image_bytes(seed=4),  # unknown view
        "Hoodie/sub/hoodie-p01_t1_front.png": image_bytes("PNG", seed=5),  # same identity as the first
        "Hoodie/hoodie-p02_t1_front.jpg": good,  # same bytes as the first
        "Hoodie/.DS_Store": b"junk",
        "README.txt": b"release notes",
    }
    write_release(tmp_path, files)
    res = scan_release(tmp_path, progress=False)
    reasons = {r.source_path: r.reason for r in res.rejected}
    assert [r.source_path for r in res.records] == ["Hoodie/hoodie-p01_t1_front.jpg"]
    assert reasons == {
        "Hoodie/hoodie-p01_t1_back.jpg": "corrupt",
        "Hoodie/notes.txt": "unsupported-extension",  # only image extensions can become records
        "Hoodie/weird-name.jpg": "unparseable-name",
        "Hoodie/hoodie-p01_t1_sideways.jpg": "unparseable-name",
        "Hoodie/sub/hoodie-p01_t1_front.png": "duplicate",
        "Hoodie/hoodie-p02_t1_front.jpg": "duplicate",
    }
    assert sorted(res.ignored) == ["Hoodie/.DS_Store", "README.txt"]
    accounted = {r.source_path for r in res.records} | set(reasons) | set(res.ignored)
    assert accounted == set(files)


def test_non_image_with_image_name_rejected(tmp_path):
    write_release(tmp_path, {"Hat/hat-p1_t1_front.jpg": b"<html>oops</html>"})
    res = scan_release(tmp_path, progress=False)
    assert [r.reason for r in res.rejected] == ["not-an-image"]


def test_custom_pattern(tmp_path):
    write_release(tmp_path, {"coat/P17-tex_042-v2.jpg": image_bytes()})
    cfg = ScanConfig(pattern=r"P(?P<project>\d+)-tex_(?P<texture>\d+)-v(?P<view>\d)")
    res = scan_release(tmp_path, cfg, progress=False)
    assert [r.reason for r in res.rejected] == ["unparseable-name"]  # view "2" is not a known view
    write_release(tmp_path, {"coat/P17-tex_042-vfront.jpg": image_bytes(seed=9)})
    cfg = ScanConfig(pattern=r"P(?P<project>\d+)-tex_(?P<texture>\d+)-v(?P<view>[a-z0-9]+)")
    res = scan_release(tmp_path, cfg, progress=False)
    assert [(r.project, r.texture, r.view) for r in res.records] == [("17", "042", "front")]


@pytest.mark.parametrize("kind", ["jsonl", "csv"])
def test_sidecar_overrides_pattern_and_keeps_extras(tmp_path, kind):
    write_release(tmp_path, {"Suit/IMG_0001.jpg": image_bytes(seed=1), "Suit/suit-p1_t1_front.jpg": image_bytes(seed=2)})
    rows = [
        {"file_name": "Suit/IMG_0001.jpg", "project": "suit-p9", "texture": "t77", "view": "back", "azimuth_deg": "180"},
        {"file_name": "Suit/suit-p1_t1_front.jpg", "project": "", "texture": "t5", "view": "", "azimuth_deg": "0"},
    ]
    side = tmp_path / f"metadata.{kind}"
    if kind == "jsonl":
        side.write_text("\n".join(json.dumps(r) for r in rows))
    else:
        side.write_text("file_name,project,texture,view,azimuth_deg\n" + "\n".join(",".join(r.values()) for r in rows))
    res = scan_release(tmp_path, progress=False)
    got = {r.source_path: (r.project, r.texture, r.view, r.extra["azimuth_deg"]) for r in res.records}
    assert got == {"Suit/IMG_0001.jpg": ("suit-p9", "t77", "back", "180"),
                   "Suit/suit-p1_t1_front.jpg": ("suit-p1", "t5", "front", "0")}
    assert res.ignored == [f"metadata.{kind}"]


def test_sidecar_row_for_missing_file_is_rejected(tmp_path):
    write_release(tmp_path, {"Suit/suit-p1_t1_front.jpg": image_bytes()})
    (tmp_path / "metadata.jsonl").write_text(json.dumps({"file_name": "Suit/gone.jpg", "view": "front"}) + "\n")
    res = scan_release(tmp_path, progress=False)
    assert [(r.source_path, r.reason) for r in res.rejected] == [("Suit/gone.jpg", "sidecar-missing-file")]


def test_malformed_sidecar_names_file_and_line(tmp_path):
    write_release(tmp_path, {"Suit/suit-p1_t1_front.jpg": image_bytes()})
    (tmp_path / "metadata.jsonl").write_text('{"file_name": "Suit/suit-p1_t1_front.jpg"}\n{oops\n')
    with pytest.raises(ReleaseLayoutError, match=r"metadata.jsonl:2"):
        scan_release(tmp_path, progress=False)


def test_bad_pattern_is_a_clear_error():
    with pytest.raises(ValueError, match="not a valid regex"):
        ScanConfig(pattern="(unclosed")


def test_parallel_scan_matches_serial(tmp_path):
    root = small_release(tmp_path / "rel")
    a = scan_release(root, workers=1, progress=False)
    b = scan_release(root, workers=2, progress=False)
    assert a.records == b.records


def test_pattern_sees_subfolders_below_the_category(tmp_path):
    # a layout with a folder per project: <category>/<project>/<texture>_<view>.jpg
    files = {f"Coat/p{p}/t{t}_{v}.jpg": image_bytes(seed=p * 10 + t * 4 + i)
             for p in (1, 2) for t in (1, 2) for i, v in enumerate(("front", "back", "random1", "random2"))}
    write_release(tmp_path, files)
    flat_default = scan_release(tmp_path, progress=False)
    assert not flat_default.records and {r.reason for r in flat_default.rejected} == {"unparseable-name"}
    nested = ScanConfig(pattern=r"(?P<project>[^/]+)/(?P<texture>[^_/]+)_(?P<view>[a-z0-9]+)")  # a "/": the path
    res = scan_release(tmp_path, nested, progress=False)
    assert not res.rejected and len(res.records) == 16
    assert {(r.project, r.texture) for r in res.records} == {(f"p{p}", f"t{t}") for p in (1, 2) for t in (1, 2)}
