"""A build never deletes a user's file, never leaves a torn shard, and verify vouches for nothing it did not check.

The failure classes an attacker's and a careless user's tries found: --overwrite on a folder that merely held a
manifest.json deleted the user's files; two builds into one folder; a full disk left a truncated tar under its final
name; verify passed stray shards, tar members named /tmp/... or ../..., wrong counts and a foreign licence; manifests
from strangers (a list, invalid JSON, a `pipe:` path, a shard without num_bytes) gave tracebacks or ran commands.
"""

import errno
import hashlib
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from synfashion.build import BuildConfig, BuildError, build_dataset
from synfashion.manifest import Manifest, ManifestError
from synfashion.fs.space import NoSpaceError
from synfashion.fs.locks import FolderBusyError, folder_lock
from synfashion.verify import verify_dataset
from tests.conftest import small_release

CFG = BuildConfig(shard_size=20_000)


@pytest.fixture(scope="module")
def release(tmp_path_factory):
    return small_release(tmp_path_factory.mktemp("rel") / "release", categories=("Hoodie", "Dress", "Hat"))


@pytest.fixture(scope="module")
def built(release, tmp_path_factory):
    out = tmp_path_factory.mktemp("out") / "built"
    build_dataset(release, out, CFG, progress=False)
    return out


def _copy(built: Path, tmp_path: Path) -> Path:
    out = tmp_path / "copy"
    shutil.copytree(built, out)
    return out


def _tree(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


# ------------------------------------------------------------------------------------------- no user file deleted
def _users_folder(root: Path, manifest: bytes) -> Path:
    (root / "data").mkdir(parents=True)
    (root / "data" / "precious.parquet").write_bytes(b"the user's own data")
    (root / "README.md").write_text("my notes")
    (root / "manifest.json").write_bytes(manifest)
    return root


@pytest.mark.parametrize("manifest", [b'{"format": "something-else", "samples": []}', b"[1, 2]", b"{not json",
                                      b'{"format": "synfashion-build/1", "samples": [], "shards": "x"}'])
def test_a_foreign_folder_is_refused_whatever_the_flags(release, tmp_path, manifest):
    out = _users_folder(tmp_path / "users", manifest)
    before = _tree(out)
    for overwrite in (False, True):
        with pytest.raises(BuildError, match="holds no synfashion build"):
            build_dataset(release, out, BuildConfig(shard_size=20_000, overwrite=overwrite), progress=False)
        assert _tree(out) == before


def test_overwrite_removes_only_what_our_build_wrote(release, built, tmp_path):
    out = _copy(built, tmp_path)
    (out / "notes.txt").write_text("keep me")
    other = BuildConfig(shard_size=30_000, overwrite=True)
    build_dataset(release, out, other, progress=False)
    assert (out / "notes.txt").read_text() == "keep me"
    assert verify_dataset(out).problems == ["notes.txt: a file that manifest.json does not list (loaders and push "
                                            "would pick it up); remove it, or rebuild"]


def test_overwrite_refuses_before_removing_anything_when_a_foreign_file_is_among_the_shards(release, built,
                                                                                              tmp_path):
    out = _copy(built, tmp_path)
    stray = out / "data" / "renders" / "mine.parquet"
    stray.write_bytes(b"user data")
    edited = next((out / "data" / "garments").glob("*.parquet"))
    edited.write_bytes(edited.read_bytes() + b"!")  # a shard the user changed is no longer provably ours
    before = _tree(out)
    with pytest.raises(BuildError, match="mine.parquet") as e:
        build_dataset(release, out, BuildConfig(shard_size=30_000, overwrite=True), progress=False)
    assert edited.name in str(e.value) and "left untouched" in str(e.value)
    assert _tree(out) == before


def test_an_edited_card_is_not_ours_to_replace(release, built, tmp_path):
    out = _copy(built, tmp_path)
    (out / "README.md").write_text((out / "README.md").read_text() + "\nmy addition\n")
    with pytest.raises(BuildError, match="README.md"):
        build_dataset(release, out, BuildConfig(shard_size=30_000, overwrite=True), progress=False)
    assert "my addition" in (out / "README.md").read_text()


def test_a_second_build_into_the_same_folder_is_refused(release, tmp_path):
    out = tmp_path / "busy"
    with folder_lock(out, "synfashion build"):  # as a running build holds it
        with pytest.raises(FolderBusyError, match="in use by another synfashion build"):
            build_dataset(release, out, CFG, progress=False)
    build_dataset(release, out, CFG, progress=False)  # free again once the first is done
    assert verify_dataset(out).ok


def test_the_lock_dies_with_its_process_even_when_workers_outlive_it(release, tmp_path):
    """flock belongs to the open file description, which forked workers share: they drop their copy at fork, so a
    `kill -9` of the build frees the folder at once."""
    out = tmp_path / "o"
    code = (f"import os, sys; from synfashion.fs.locks import folder_lock\n"
            f"from concurrent.futures import ProcessPoolExecutor\n"
            f"with folder_lock({str(out)!r}):\n"
            f"    pool = ProcessPoolExecutor(2); pool.submit(os.getpid).result()\n"
            f"    print('locked', flush=True); sys.stdin.read()\n")
    proc = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                            start_new_session=True)  # its own process group: the orphaned workers are killed after
    assert proc.stdout.readline().strip() == "locked"
    with pytest.raises(FolderBusyError):
        with folder_lock(out):
            pass
    proc.kill()
    proc.wait()
    try:
        with folder_lock(out):  # the workers may still be alive: they hold no copy of the lock
            pass
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the orphaned pool workers, which would idle on forever


# ------------------------------------------------------------------------------------------- full disk
def test_a_write_failing_for_space_leaves_no_shard_under_its_final_name(release, tmp_path, monkeypatch):
    import synfashion.writers.hashing as hashing

    real_init = hashing.HashingFile.__init__

    class Full:
        def __init__(self, raw):
            self.raw, self.n = raw, 0

        def write(self, b):
            self.n += len(b)
            if self.n > 20_000:
                raise OSError(errno.ENOSPC, "No space left on device")
            return self.raw.write(b)

        def close(self):
            self.raw.close()

    monkeypatch.setattr(hashing.HashingFile, "__init__", lambda self, raw: real_init(self, Full(raw)))
    out = tmp_path / "o"
    with pytest.raises(NoSpaceError, match=f"no space left on {out}"):
        build_dataset(release, out, BuildConfig(shard_size=10**9, formats=("webdataset",)), progress=False)
    assert not list(out.rglob("*.tar")), "a torn tar was renamed into place"


def _tmpfs(path: Path, size: str):
    path.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({done.stderr.decode().strip() or 'mount failed'}): the full-disk "
                    "run needs root")


def test_a_real_full_disk_is_one_clear_error_and_no_torn_shard(release, tmp_path, warm):
    disk = tmp_path / "small-disk"
    _tmpfs(disk, "200k")
    try:
        out = disk / "out"
        proc = subprocess.run([warm.python, "-m", "synfashion.cli", "build", str(release), str(out), "--formats", "webdataset",
                               "--workers", "1", "--shard-size", "1GB"], capture_output=True, text=True)
        assert proc.returncode == 2, proc.stderr
        assert "no space left on" in proc.stderr and "MB needed" in proc.stderr and "Traceback" not in proc.stderr
        for tar in out.rglob("*.tar"):  # whatever reached its final name is complete
            with tarfile.open(tar) as tf:
                assert tf.getmembers()
    finally:
        subprocess.run(["umount", str(disk)], check=False)


# ------------------------------------------------------------------------------------------- verify vouches for less
def test_verify_refuses_a_stray_shard(built, tmp_path):
    out = _copy(built, tmp_path)
    tars = sorted((out / "webdataset" / "train").glob("*.tar"))
    shutil.copy(tars[0], out / "webdataset" / "train" / "train-09999.tar")
    report = verify_dataset(out)
    assert any("train-09999.tar" in p and "does not list" in p for p in report.problems)
    assert "webdataset/train/train-09999.tar" not in report.vouched


def _rewrite_tar(path: Path, extra: list[tarfile.TarInfo]) -> None:
    """Append members to a tar and record its new hash in the manifest, as an attacker editing both would."""
    data = io.BytesIO(path.read_bytes())
    with tarfile.open(fileobj=data, mode="a") as tf:
        for info in extra:
            tf.addfile(info, io.BytesIO(b"x" * info.size) if info.isfile() else None)
    path.write_bytes(data.getvalue())
    root = path.parents[2]
    doc = json.loads((root / "manifest.json").read_text())
    for shard in doc["shards"]:
        if shard["path"] == path.relative_to(root).as_posix():
            shard["num_bytes"], shard["sha256"] = len(data.getvalue()), hashlib.sha256(data.getvalue()).hexdigest()
    (root / "manifest.json").write_text(json.dumps(doc))


@pytest.mark.parametrize("name,kind", [("/tmp/evil.jpg", tarfile.REGTYPE), ("../../../evil.jpg", tarfile.REGTYPE),
                                       ("shadow.jpg", tarfile.SYMTYPE), ("sub/x.jpg", tarfile.REGTYPE)])
def test_verify_refuses_tar_members_that_are_not_plain_names(built, tmp_path, name, kind):
    out = _copy(built, tmp_path)
    tar = sorted((out / "webdataset" / "train").glob("*.tar"))[0]
    info = tarfile.TarInfo(name)
    info.type = kind
    if kind == tarfile.SYMTYPE:
        info.linkname = "/etc/shadow"
    else:
        info.size = 3
    _rewrite_tar(tar, [info])
    report = verify_dataset(out)
    assert any(name in p and ("not a plain" in p or "not a regular file" in p) for p in report.problems), \
        report.problems


def test_verify_checks_counts_and_the_licence(built, tmp_path):
    out = _copy(built, tmp_path)
    doc = json.loads((out / "manifest.json").read_text())
    doc["counts"]["total"] += 5
    (out / "manifest.json").write_text(json.dumps(doc))
    card = (out / "README.md").read_text().replace("license: cc-by-nc-nd-4.0", "license: mit")
    (out / "README.md").write_text(card)
    problems = verify_dataset(out).problems
    assert any("counts.total" in p for p in problems)
    assert any("license is 'mit'" in p for p in problems)


# ------------------------------------------------------------------------------------------- manifests from strangers
@pytest.mark.parametrize("edit,message", [
    (lambda d: [1, 2], "a manifest is a JSON object"),
    (lambda d: {k: v for k, v in d.items() if k != "samples"}, "needs 'samples'"),
    (lambda d: {**d, "shards": [{**d["shards"][0], "path": "pipe:touch /tmp/pwned"}]}, "scheme or command"),
    (lambda d: {**d, "shards": [{**d["shards"][0], "path": "../../etc/passwd"}]}, "'..' segment"),
    (lambda d: {**d, "shards": [{k: v for k, v in d["shards"][0].items() if k != "num_bytes"}]}, "needs num_bytes"),
])
def test_a_malformed_manifest_is_one_clear_error(built, tmp_path, edit, message, warm):
    out = _copy(built, tmp_path)
    doc = json.loads((out / "manifest.json").read_text())
    (out / "manifest.json").write_text(json.dumps(edit(doc)))
    with pytest.raises(ManifestError, match=message):
        Manifest.read(out)
    report = verify_dataset(out)
    assert not report.ok and any(message.split("'")[0] in p for p in report.problems)
    proc = subprocess.run([warm.python, "-m", "synfashion.cli", "verify", str(out)], capture_output=True, text=True)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert not Path("/tmp/pwned").exists()


def test_invalid_json_manifest_names_the_file(built, tmp_path):
    out = _copy(built, tmp_path)
    (out / "manifest.json").write_text("{nope")
    report = verify_dataset(out)
    assert report.problems and "manifest.json: not valid JSON" in report.problems[0]


@pytest.mark.parametrize("column,value", [("key", None), ("category", 99), ("image", "a string")])
def test_verify_reports_a_malformed_parquet_shard_by_name(built, tmp_path, column, value):
    import pyarrow as pa
    import pyarrow.parquet as pq

    out = _copy(built, tmp_path)
    path = sorted((out / "data" / "renders").glob("train-*.parquet"))[0]
    table = pq.read_table(path)
    if value is None:
        table = table.drop_columns([column])
    else:
        i = table.schema.get_field_index(column)
        table = table.set_column(i, column, pa.array([value] * table.num_rows))
    pq.write_table(table, path)
    doc = json.loads((out / "manifest.json").read_text())
    rel = path.relative_to(out).as_posix()
    data = path.read_bytes()
    for shard in doc["shards"]:
        if shard["path"] == rel:
            shard["num_bytes"], shard["sha256"] = len(data), hashlib.sha256(data).hexdigest()
    (out / "manifest.json").write_text(json.dumps(doc))
    problems = verify_dataset(out).problems
    assert problems and any(rel in p for p in problems), problems


def test_push_refuses_what_verify_does_not_vouch_for(built, tmp_path):
    from synfashion.hub import HubError, push_dataset

    out = _copy(built, tmp_path)
    tars = sorted((out / "webdataset" / "train").glob("*.tar"))
    shutil.copy(tars[0], out / "webdataset" / "train" / "train-09999.tar")
    with pytest.raises(HubError, match="does not pass synfashion verify(.|\n)*train-09999.tar"):
        push_dataset(out, "someone/x", token="unused", endpoint="http://127.0.0.1:9", progress=False,
                     console=__import__("rich.console").console.Console(file=io.StringIO()))


def test_cli_errors_print_names_literally(tmp_path, warm):
    """A folder name with rich markup in it is printed as it is, in one line, exit 2."""
    out = tmp_path / "x[bold]y"
    out.mkdir()
    (out / "foo.txt").write_text("user file")
    proc = subprocess.run([warm.python, "-m", "synfashion.cli", "build", str(tmp_path / "missing[red]"), str(out)], capture_output=True,
                          text=True)
    assert proc.returncode == 2 and "missing[red]" in proc.stderr and "Traceback" not in proc.stderr
    assert os.listdir(out) == ["foo.txt"]
