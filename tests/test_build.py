"""End to end: release -> build -> load_dataset / webdataset -> verify, plus resume, rejection and corruption."""

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import datasets
import pytest
import webdataset as wds

from synfashion.build import BuildConfig, BuildError, RejectedInputsError, build_dataset
from synfashion.splits import SplitConfig
from synfashion.verify import verify_dataset
from tests.conftest import image_bytes, small_release, write_release


def _tree(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*")) if p.is_file()
    }


@pytest.fixture(scope="module")
def release(tmp_path_factory):
    return small_release(tmp_path_factory.mktemp("rel") / "release")


@pytest.fixture(scope="module")
def built(release, tmp_path_factory):
    out = tmp_path_factory.mktemp("out") / "built"
    build_dataset(release, out, BuildConfig(shard_size=20_000), workers=2, progress=False)
    return out


def test_layout_and_verify(built):
    names = set(_tree(built))
    assert {"README.md", "manifest.json"} <= names
    assert any(n.startswith("data/renders/train-00000-of-") for n in names)
    assert any(n.startswith("data/garments/test-") for n in names)
    assert any(n.startswith("webdataset/validation/validation-00000") for n in names)
    assert not any(".tmp-" in n or ".synfashion-build" in n for n in names)
    report = verify_dataset(built)
    assert report.ok, report.problems
    assert report.checked["parquet rows"] == report.checked["webdataset samples"] == 96


def test_load_dataset_renders_byte_identical(built, release):
    ds = datasets.load_dataset(str(built))
    assert set(ds) == {"train", "validation", "test"}
    assert sum(len(d) for d in ds.values()) == 96
    feats = ds["train"].features
    assert isinstance(feats["image"], datasets.Image) and isinstance(feats["category"], datasets.ClassLabel)
    assert len(feats["category"].names) == 20
    raw = ds["test"].cast_column("image", datasets.Image(decode=False))
    for row in raw:
        src = (release / row["source_path"]).read_bytes()
        assert row["image"]["bytes"] == src
        assert hashlib.sha256(src).hexdigest() == row["sha256"]
    img = ds["train"][0]["image"]
    assert img.size == (48, 64)


def test_garments_config_and_streaming(built):
    g = datasets.load_dataset(str(built), "garments")
    assert sum(len(d) for d in g.values()) == 96 // 4
    row = g["train"][0]
    assert all(row[v] is not None for v in ("front", "back", "random1", "random2"))
    stream = datasets.load_dataset(str(built), split="validation", streaming=True)
    keys = [r["key"] for r in stream]
    manifest = json.loads((built / "manifest.json").read_text())
    assert sorted(keys) == sorted(s["key"] for s in manifest["samples"] if s["split"] == "validation")


def test_webdataset_matches_parquet(built):
    ds = datasets.load_dataset(str(built), split="train").cast_column("image", datasets.Image(decode=False))
    want = {r["key"]: r["image"]["bytes"] for r in ds}
    urls = sorted(str(p) for p in (built / "webdataset" / "train").glob("*.tar"))
    got = {s["__key__"]: s["jpg"] for s in wds.WebDataset(urls, shardshuffle=False)}
    assert got == want
    via_hf = datasets.load_dataset("webdataset", data_files={"train": urls}, split="train")
    assert sorted(via_hf["__key__"]) == sorted(want)
    assert via_hf[0]["json"]["key"] == via_hf[0]["__key__"]


def test_no_split_leak_in_data(built):
    manifest = json.loads((built / "manifest.json").read_text())
    splits_of = {}
    for s in manifest["samples"]:
        for ident in (("p", s["category"], s["project"]), ("t", s["texture"])):
            splits_of.setdefault(ident, set()).add(s["split"])
    assert all(len(v) == 1 for v in splits_of.values())
    assert all(manifest["counts"]["per_split"][s] > 0 for s in ("train", "validation", "test"))


def test_rebuild_is_byte_identical_and_worker_independent(release, built, tmp_path):
    other = tmp_path / "built"
    build_dataset(release, other, BuildConfig(shard_size=20_000), workers=1, progress=False)
    assert _tree(other) == _tree(built)


def test_rerun_on_finished_build_reuses_shards(release, tmp_path):
    out = tmp_path / "o"
    build_dataset(release, out, BuildConfig(shard_size=20_000), progress=False)
    before = _tree(out)
    r = build_dataset(release, out, BuildConfig(shard_size=20_000), progress=False)
    assert r.shards_written == 0 and _tree(out) == before
    with pytest.raises(BuildError, match="--overwrite"):
        build_dataset(release, out, BuildConfig(shard_size=30_000), progress=False)
    build_dataset(release, out, BuildConfig(shard_size=30_000, overwrite=True), progress=False)
    assert verify_dataset(out).ok


def test_refuses_foreign_non_empty_folder(release, tmp_path):
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "precious.txt").write_text("keep me")
    with pytest.raises(BuildError, match="not empty"):
        build_dataset(release, tmp_path / "x", progress=False)
    assert (tmp_path / "x" / "precious.txt").read_text() == "keep me"


@pytest.mark.parametrize("workers", [1, 2])
def test_resume_after_kill_is_byte_identical(release, tmp_path, workers):
    # one image per shard: ~120 shard jobs, so a kill after a few lands mid-build
    cfg = BuildConfig(shard_size=1)
    clean = tmp_path / "clean"
    build_dataset(release, clean, cfg, progress=False)
    out = tmp_path / "killed"
    cmd = [sys.executable, "-m", "synfashion.cli", "build", str(release), str(out), "--shard-size", "1",
           "--workers", str(workers)]
    # its own process group, killed whole: the build and its pool workers die together, as with Ctrl-C or a job kill
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 60
    while time.time() < deadline and len(list(out.glob("data/renders/*.parquet"))) < 5:
        time.sleep(0.005)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (out / "manifest.json").exists(), "the kill came too late to test resuming"
    assert (out / ".synfashion-build").exists()
    r = build_dataset(release, out, cfg, progress=False)
    assert r.shards_reused >= 1 and r.shards_written >= 1
    assert _tree(out) == _tree(clean)


def test_rejected_inputs_stop_the_build_by_default(tmp_path):
    rel = small_release(tmp_path / "rel", categories=("Hat",))
    write_release(rel, {"Hat/hat-p09_t1_front.jpg": image_bytes(seed=99)[:200], "Hat/garbage.bin": b"xx"})
    with pytest.raises(RejectedInputsError) as e:
        build_dataset(rel, tmp_path / "out", progress=False)
    assert "hat-p09_t1_front.jpg" in str(e.value) and "--allow-rejected" in str(e.value)
    assert not (tmp_path / "out").exists()
    r = build_dataset(rel, tmp_path / "out", BuildConfig(allow_rejected=True), progress=False)
    rejected = {x["source_path"]: x["reason"] for x in r.manifest.rejected}
    assert rejected == {"Hat/hat-p09_t1_front.jpg": "corrupt", "Hat/garbage.bin": "unsupported-extension"}
    assert verify_dataset(tmp_path / "out").ok


def test_odd_modes_are_packaged_with_original_bytes(tmp_path):
    files = {
        "Coat/coat-p1_t1_front.jpg": image_bytes("JPEG", mode="CMYK", seed=1),
        "Coat/coat-p1_t1_back.png": image_bytes("PNG", mode="RGBA", seed=2),
        "Coat/coat-p1_t1_random1.png": image_bytes("PNG", mode="I;16", seed=3),
        "Coat/coat-p1_t1_random2.png": image_bytes("PNG", mode="P", seed=4),
    }
    rel = write_release(tmp_path / "rel", files)
    r = build_dataset(rel, tmp_path / "out", BuildConfig(split=SplitConfig(fractions={"train": 1.0})), progress=False)
    modes = {s["source_path"]: s["mode"] for s in r.manifest.samples}
    assert modes == {"Coat/coat-p1_t1_front.jpg": "CMYK", "Coat/coat-p1_t1_back.png": "RGBA",
                     "Coat/coat-p1_t1_random1.png": "I;16", "Coat/coat-p1_t1_random2.png": "P"}
    ds = datasets.load_dataset(str(tmp_path / "out"), split="train").cast_column("image", datasets.Image(decode=False))
    assert {r["source_path"]: r["image"]["bytes"] for r in ds} == files
    assert verify_dataset(tmp_path / "out").ok


@pytest.mark.parametrize("fmt", ["parquet", "webdataset"])
def test_single_format(release, tmp_path, fmt):
    out = tmp_path / "o"
    build_dataset(release, out, BuildConfig(formats=(fmt,), shard_size=50_000), progress=False)
    assert (out / "data").exists() == (fmt == "parquet")
    assert (out / "webdataset").exists() == (fmt == "webdataset")
    assert verify_dataset(out).ok


def _copy(src: Path, dst: Path) -> Path:
    import shutil

    shutil.copytree(src, dst)
    return dst


def _flip_byte(path: Path, at: float, mask: int) -> None:
    """Corrupt `path` in place: XOR `mask` into the byte at fraction `at` of its length."""
    data = bytearray(path.read_bytes())
    data[int(len(data) * at)] ^= mask
    path.write_bytes(bytes(data))


def test_verify_catches_flipped_byte(built, tmp_path):
    out = _copy(built, tmp_path / "c")
    shard = sorted((out / "webdataset" / "train").glob("*.tar"))[0]
    _flip_byte(shard, 1 / 2, 0x01)
    report = verify_dataset(out)
    assert not report.ok
    assert any(shard.name in p and "sha256" in p for p in report.problems)


def test_verify_catches_missing_shard_and_manifest(built, tmp_path):
    out = _copy(built, tmp_path / "c")
    victim = sorted((out / "data" / "renders").glob("test-*.parquet"))[0]
    victim.unlink()
    report = verify_dataset(out)
    assert any("missing" in p and victim.name in p for p in report.problems)
    (out / "manifest.json").unlink()
    assert not verify_dataset(out).ok


def test_verify_catches_texture_leak(tmp_path):
    rel = small_release(tmp_path / "rel", categories=("Hoodie", "Dress", "Shirt", "Coat", "Hat", "Suit"))
    # every project shares one texture: grouping by project only must leak it
    for p in rel.rglob("*_random2.jpg"):
        cat, rest = p.parent, p.name.split("_")
        p.rename(cat / f"{rest[0]}_tshared_{rest[2]}")
    out = tmp_path / "o"
    build_dataset(rel, out, BuildConfig(split=SplitConfig(tie_textures=False)), progress=False)
    report = verify_dataset(out)
    assert any("split leak: texture tshared" in p for p in report.problems)


def test_cli_build_verify_stats(release, tmp_path):
    from synfashion.cli import main

    out = tmp_path / "cli"
    assert main(["build", str(release), str(out), "--shard-size", "40KB", "--workers", "1"]) == 0
    assert main(["verify", str(out)]) == 0
    assert main(["stats", str(out), "--sheets", str(tmp_path / "sheets")]) == 0
    assert (tmp_path / "sheets" / "contact-sheet-train.png").stat().st_size > 1000
    assert main(["build", str(release), str(tmp_path / "x"), "--split", "train=2"]) == 2


def test_rerun_rewrites_an_output_whose_bytes_were_lost(release, built, tmp_path):
    # outputs are not fsynced by default: after a power cut a shard can exist, full size, with its blocks zeroed
    out = _copy(built, tmp_path / "c")
    victim = sorted((out / "data" / "garments").glob("train-*.parquet"))[0]
    victim.write_bytes(bytes(victim.stat().st_size))
    r = build_dataset(release, out, BuildConfig(shard_size=20_000), workers=1, progress=False)
    assert r.shards_written == 1
    assert _tree(out) == _tree(built)


def test_resume_trusts_only_outputs_that_hash_to_their_record(release, built, tmp_path, monkeypatch):
    out = tmp_path / "interrupted"
    calls = _interrupted_build(release, out, monkeypatch, after=6)  # a Ctrl-C after six outputs
    records = sorted((out / ".synfashion-build" / "done").glob("*.json"))
    assert len(records) == 6 and not (out / "manifest.json").exists()
    (out / calls[0]).write_bytes(bytes((out / calls[0]).stat().st_size))  # lost blocks
    records[-1].write_text('{"path": ')  # a torn record: its output is written again
    r = build_dataset(release, out, BuildConfig(shard_size=20_000), workers=1, progress=False)
    assert r.shards_reused == 4
    assert _tree(out) == _tree(built)


def test_a_source_changed_after_the_scan_stops_the_build(release, tmp_path):
    import shutil

    from synfashion.release.scan import scan_release

    rel = tmp_path / "rel"
    shutil.copytree(release, rel)
    scan = scan_release(rel, progress=False)
    victim = rel / scan.records[5].source_path
    victim.write_bytes(victim.read_bytes() + b"edited")  # same name, new bytes: its sha256 in the scan is stale
    with pytest.raises(BuildError, match=f"{victim.name} changed while the build was running"):
        build_dataset(rel, tmp_path / "out", scan=scan, progress=False)
    assert not (tmp_path / "out" / "manifest.json").exists()


@pytest.mark.parametrize("fsync", [False, True])
def test_fsync_is_opt_in(release, tmp_path, monkeypatch, fsync):
    synced = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: synced.append(fd) or real_fsync(fd))
    r = build_dataset(release, tmp_path / "o", BuildConfig(shard_size=20_000, fsync=fsync), workers=1,
                      progress=False)
    # with it: at least every output and the folder holding it (their done records, card and manifest too)
    assert len(synced) >= 2 * len(r.manifest.shards) + 4 if fsync else synced == []


def test_verify_in_parallel_reports_what_one_process_reports(built, tmp_path):
    out = _copy(built, tmp_path / "c")
    tar = sorted((out / "webdataset" / "train").glob("*.tar"))[0]
    _flip_byte(tar, 1 / 3, 0x10)
    sorted((out / "data" / "garments").glob("*.parquet"))[-1].unlink()
    one, two = verify_dataset(out, workers=1), verify_dataset(out, workers=2)
    assert not one.ok and one.problems == two.problems and one.checked == two.checked
    assert any(tar.name in p for p in one.problems) and any("missing" in p for p in one.problems)
    assert verify_dataset(built, workers=2).ok


def _interrupted_build(release, out, monkeypatch, after=4) -> list[str]:
    """Run a build that a Ctrl-C stops after `after` output files; return those files' paths under `out`."""
    import synfashion.build.core as build_module

    real, calls = build_module.run_output_job, []

    def interrupted(job):
        if len(calls) == after:
            raise KeyboardInterrupt
        calls.append(job.rel)
        return real(job)

    monkeypatch.setattr(build_module, "run_output_job", interrupted)
    with pytest.raises(KeyboardInterrupt):
        build_dataset(release, out, BuildConfig(shard_size=20_000), workers=1, progress=False)
    monkeypatch.setattr(build_module, "run_output_job", real)
    return calls


def _count_inspections(monkeypatch) -> list[str]:
    import synfashion.release.scan as scan_module

    seen, real = [], scan_module.inspect_image

    def counting(data, **kw):
        seen.append(hashlib.sha256(data).hexdigest())
        return real(data, **kw)

    monkeypatch.setattr(scan_module, "inspect_image", counting)
    return seen


def test_resume_reads_only_sources_changed_since_the_first_scan(release, built, tmp_path, monkeypatch):
    import shutil

    rel = tmp_path / "copy" / release.name  # the manifest names the release folder
    shutil.copytree(release, rel)
    out = tmp_path / "o"
    _interrupted_build(rel, out, monkeypatch)
    inspected = _count_inspections(monkeypatch)
    r = build_dataset(rel, out, BuildConfig(shard_size=20_000), workers=1, progress=False)
    assert inspected == [] and r.shards_reused == 4  # every source came from the scan cache
    assert _tree(out) == _tree(built)

    out2 = tmp_path / "o2"
    _interrupted_build(rel, out2, monkeypatch)
    touched = sorted(rel.rglob("*.jpg"))[7]
    os.utime(touched, ns=(touched.stat().st_atime_ns, touched.stat().st_mtime_ns + 10**9))  # same bytes, new stamp
    inspected.clear()
    build_dataset(rel, out2, BuildConfig(shard_size=20_000), workers=1, progress=False)
    assert inspected == [hashlib.sha256(touched.read_bytes()).hexdigest()]
    assert _tree(out2) == _tree(built)


def test_scan_cache_of_other_validation_settings_is_not_used(release, tmp_path, monkeypatch):
    from synfashion.release.scan import ScanConfig

    out = tmp_path / "o"
    _interrupted_build(release, out, monkeypatch)
    inspected = _count_inspections(monkeypatch)
    cfg = BuildConfig(shard_size=20_000, scan=ScanConfig(validate="decode"), overwrite=True)
    build_dataset(release, out, cfg, workers=1, progress=False)
    assert len(inspected) == 96  # a decode-level build validates every file itself
