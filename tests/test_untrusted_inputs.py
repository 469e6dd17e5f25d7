"""Untrusted inputs (issue 20, second round): every user image file is read through `loaders/files.py` (regular
files only, links only inside their folder, a size bound) and decoded under the declared-pixel bound
(`loaders/decode.py`), so a FIFO, a link to /dev/zero or a PNG declaring 150 Mpx is listed with its reason (or one
clear error) and never hangs or exhausts a run; every input is used or listed; nothing published or printed leaks
the user's layout, a file's bytes or terminal escapes; and bad cards, LoRAs, UNets and tar metadata are one line."""

from __future__ import annotations

import io
import json
import os
import shutil
import signal
import struct
import tarfile
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from r2r.cli import main

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # see conftest.py

ESC = "\x1b"


@pytest.fixture(autouse=True)
def no_hang():
    """A read that blocks (a FIFO) fails the test after 60 s instead of hanging the suite."""
    def alarm(signum, frame):
        raise TimeoutError("hung: a blocking read")

    old = signal.signal(signal.SIGALRM, alarm)
    signal.alarm(60)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, old)


def bomb_png(width: int = 15_000, height: int = 10_000) -> bytes:
    """A valid PNG of a few hundred bytes whose header declares width x height (150 Mpx by default)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit grey
    rows = zlib.compress(b"\x00" * 16)  # far fewer rows than declared: the decoder would allocate first
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", rows) + chunk(b"IEND", b"")


def _png(path: Path, seed: int = 0, size=(48, 64)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.random.default_rng(seed).integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)).save(path)
    return path


def hostile_folder(root: Path, outside: Path, names: dict[str, str] | None = None) -> Path:
    """A good image plus, each named like an image: a FIFO, a link to /dev/zero, a link out of the folder, a PNG
    declaring 150 Mpx and a text file. `names` renames them (kind -> file name)."""
    n = {"good": "good.png", "fifo": "fifo.png", "zero": "zero.png", "out": "out.png", "bomb": "bomb.png",
         "text": "passwd.png", **(names or {})}
    root.mkdir(parents=True, exist_ok=True)
    _png(root / n["good"], 1)
    os.mkfifo(root / n["fifo"])
    os.symlink("/dev/zero", root / n["zero"])
    _png(outside / "secret.png", 2)
    os.symlink(outside / "secret.png", root / n["out"])
    (root / n["bomb"]).write_bytes(bomb_png())
    (root / n["text"]).write_text("root:*:0:0:root:/root:/bin/sh\n")
    return root


# ------------------------------------------------------------------------------------------------ 2 and 3: reading
def test_image_folder_lists_every_bad_file_with_its_reason_and_never_hangs(tmp_path):
    from loaders import ImageFolderDataset, SampleDecodeError
    from loaders.errors import is_skipped
    from loaders.transforms import ImageTransform, TransformConfig

    root = hostile_folder(tmp_path / "photos", tmp_path / "elsewhere")
    tf = ImageTransform(TransformConfig(size=(32, 32), output="uint8"))
    ds = ImageFolderDataset(root, transform=tf, on_error="skip", captions="none")
    assert ds.files == ["bomb.png", "fifo.png", "good.png", "out.png", "passwd.png", "zero.png"]  # all listed
    reasons = {}
    for i, rel in enumerate(ds.files):
        sample = ds[i]
        reasons[rel] = sample["__skipped__"].reason if is_skipped(sample) else None
    assert reasons["good.png"] is None
    assert "named pipe (FIFO)" in reasons["fifo.png"] and "/dev/zero, outside" in reasons["zero.png"]
    assert "outside" in reasons["out.png"] and "decompression-bomb guard" in reasons["bomb.png"]
    assert "not an image format" in reasons["passwd.png"] and "root:" not in reasons["passwd.png"]
    strict = ImageFolderDataset(root, transform=tf, captions="none")
    with pytest.raises(SampleDecodeError, match=r"fifo\.png: is a named pipe"):
        strict[ds.files.index("fifo.png")]


def test_read_file_refuses_devices_and_fifos_without_opening_them_for_reading(tmp_path):
    from loaders.files import ImageFileError, read_file

    os.mkfifo(tmp_path / "pipe.png")
    for path, reason in ((Path("/dev/zero"), "character device"), (tmp_path / "pipe.png", "named pipe")):
        with pytest.raises(ImageFileError, match=reason):
            read_file(path)
    big = tmp_path / "big.png"
    big.write_bytes(b"x" * 100)
    with pytest.raises(ImageFileError, match="100 bytes is more than the 99"):
        read_file(big, max_bytes=99)


def test_decode_names_the_problem_never_the_bytes_and_bounds_the_pixels():
    from loaders.decode import decode_image

    with pytest.raises(Exception) as e:
        decode_image(b"root:*:0:0:root:/root:/bin/sh\n")
    assert "root" not in str(e.value) and "30 bytes" in str(e.value)
    with pytest.raises(Image.DecompressionBombError, match=r"15000x10000 .* decompression-bomb guard"):
        decode_image(bomb_png())


def test_evaluate_lists_fifos_devices_links_out_and_bombs_instead_of_hanging(tmp_path, capsys, monkeypatch):
    import datasets
    from test_evaluate import FAST, _records, write_source

    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "hf-cache")
    source = write_source(tmp_path / "source")
    keys = [rec.key for rec, _ in _records()]
    method = tmp_path / "method"  # a method folder whose "outputs" are named after four source keys
    hostile_folder(method, tmp_path / "elsewhere", {"good": f"{keys[0]}.png", "fifo": f"{keys[1]}.png",
                                                    "out": f"{keys[2]}.png", "bomb": f"{keys[3]}.png",
                                                    "zero": "zero.png", "text": "passwd.png"})
    real = hostile_folder(tmp_path / "real", tmp_path / "elsewhere2")
    _png(real / "good2.png", 7)
    out = tmp_path / "eval.json"
    code = main(["evaluate", "--translated", str(method), "--source", str(source), "--real", str(real), "--out",
                 str(out), *FAST, "--num-workers", "0"])
    assert code == 1, capsys.readouterr().err
    problems = json.loads(out.read_text())["problems"]
    unreadable = {u["name"]: u["reason"] for u in problems["unreadable"]}
    assert set(unreadable) == {f"{keys[1]}.png", f"{keys[2]}.png", f"{keys[3]}.png"}  # the link out is not scored
    assert "named pipe" in unreadable[f"{keys[1]}.png"] and "outside" in unreadable[f"{keys[2]}.png"]
    assert "decompression-bomb guard" in unreadable[f"{keys[3]}.png"]
    real_bad = {Path(u["name"]).name: u["reason"] for u in problems["real_unreadable"]}
    assert set(real_bad) == {"fifo.png", "zero.png", "out.png", "bomb.png", "passwd.png"}
    assert "root:" not in out.read_text() and "starting b'" not in out.read_text()  # the problem, not the bytes


def test_translate_images_rejects_what_it_cannot_read_by_name(tmp_path, capsys):
    from r2r.tiny import TinyModelConfig, save_tiny_model

    model = save_tiny_model(tmp_path / "model", TinyModelConfig(unet_channels=(16, 32), unet_layers_per_block=1))
    root = hostile_folder(tmp_path / "renders", tmp_path / "elsewhere")
    _png(root / "good.png", 1, (64, 64))
    out = tmp_path / "out"
    assert main(["translate-images", "--model", str(model), "--input", str(root), "--output", str(out), "--steps",
                 "2", "--strength", "0.5", "--no-progress"]) == 1
    record = json.loads((out / "r2r_run.json").read_text())
    assert sorted(record["rejected"]) == ["bomb.png", "fifo.png", "out.png", "passwd.png", "zero.png"]
    assert "named pipe" in record["rejected"]["fifo.png"] and "outside" in record["rejected"]["out.png"]
    assert "root:" not in json.dumps(record)
    assert sorted(p.name for p in out.glob("*.png")) == ["good.png"]


def test_report_and_downstream_real_photos_never_hang(tmp_path, capsys):
    from loaders.transforms import TransformConfig
    from r2r.downstream.config import DownstreamError
    from r2r.downstream.data import open_real

    renders = tmp_path / "renders"
    translated = hostile_folder(tmp_path / "translated", tmp_path / "elsewhere")
    for name in ("good", "fifo", "zero", "out", "bomb"):
        _png(renders / f"{name}.png", 3)
    assert main(["report", "--input", str(renders), "--output", str(translated), "--out", str(tmp_path / "r")]) == 0
    page = (tmp_path / "r" / "report.html").read_text()
    for name, reason in (("fifo", "named pipe"), ("zero", "/dev/zero, outside"), ("out", "secret.png, outside"),
                         ("bomb", "decompression-bomb guard")):
        assert f"cannot read {name}.png: " in page and reason in page, name
    photos = tmp_path / "photos"
    hostile_folder(photos / "Dress", tmp_path / "elsewhere2")
    transform = TransformConfig(size=(32, 32), output="uint8")
    with pytest.raises(DownstreamError, match=r"--test-real: .*photos/Dress/\w+\.png cannot be read .*--skip-bad-images"):
        open_real(photos, transform, 0)  # checked before any training: one line, never a hang on the FIFO
    real = open_real(photos, transform, 0, skip_bad=True)  # each bad photo listed with its reason, not scored
    reasons = {u.file: u.reason for u in real.unmatched}
    assert "named pipe" in reasons["Dress/fifo.png"] and "/dev/zero, outside" in reasons["Dress/zero.png"]
    assert "outside" in reasons["Dress/out.png"] and "decompression bomb" in reasons["Dress/bomb.png"]


def test_dki_training_data_check_skips_over_a_fifo(tmp_path):
    from r2r.dki import DataConfig
    from r2r.dki.data import open_source

    root = hostile_folder(tmp_path / "renders", tmp_path / "elsewhere")
    started = time.monotonic()  # (a blocked read ends only by the alarm, which the size check would swallow)
    src = open_source(DataConfig(source=str(root), resolution=32, num_workers=0, skip_bad_images=True))
    assert time.monotonic() - started < 30 and len(src) == 6  # listed; the loader skips the bad ones, saying why


# ------------------------------------------------------------------------------------------------ 4: leaks
def test_a_run_record_publishes_paths_relative_to_the_run_or_names(tmp_path):
    from r2r.dki.outputs import public_record

    run = tmp_path / "runs" / "neg"
    (run / "checkpoints" / "checkpoint-00000003").mkdir(parents=True)
    (tmp_path / "models" / "sd15").mkdir(parents=True)
    record = {"config": {"model": str(tmp_path / "models" / "sd15"), "out": str(run), "resume": "latest",
                         "data": {"source": str(tmp_path / "home" / "alice" / "renders"), "captions": "auto"},
                         "method": {"init_embedding": None, "token": "<rendered>"}},
              "resumed_from": str(run / "checkpoints" / "checkpoint-00000003"), "hub": "owner/name"}
    public = public_record(record, run)
    assert public["config"]["model"] == "sd15" and public["config"]["out"] == "."
    assert public["config"]["data"]["source"] == "renders" and public["config"]["data"]["captions"] == "auto"
    assert public["resumed_from"] == "checkpoints/checkpoint-00000003" and public["hub"] == "owner/name"
    assert str(tmp_path) not in json.dumps(public)


def test_study_results_never_pass_terminal_escapes_on(tmp_path, capsys):
    from r2r.pages.study import QUESTIONS, VOTES_FORMAT

    evil = f"{ESC}]0;pwned{ESC}\\{ESC}[31mours"
    votes = [{"trial": "t1", "source_key": "k", "left": evil, "right": "CUT", "question": q, "choice": "left",
              "preferred": evil} for q, _ in QUESTIONS]
    path = tmp_path / "votes.json"
    path.write_text(json.dumps({"format": VOTES_FORMAT, "study": "abc", "seed": 0, "methods": [evil, "CUT"],
                                "questions": [q for q, _ in QUESTIONS], "session": "s", "participant": "p",
                                "exported": "2025-01-01T00:00:00Z", "trials": 1, "votes": votes}))
    md = tmp_path / "table.md"
    assert main(["study-results", str(path), "--markdown", str(md)]) == 0
    out = capsys.readouterr()
    assert ESC not in out.out + out.err and "\\x1b]0;pwned" in out.out
    assert ESC not in md.read_text() and "\\x1b[31mours" in md.read_text()
    assert main(["study-results", str(path), "--markdown", "-"]) == 0
    assert ESC not in capsys.readouterr().out


# ------------------------------------------------------------------------------------------------ 5: one line
@pytest.mark.parametrize("header", ["license: [unclosed\n", "license: !!python/object/apply:os.system ['echo x']\n",
                                    "- a list\n- not a mapping\n"])
def test_a_card_with_bad_yaml_is_one_line_in_verify_and_push(built_dataset, tmp_path, capsys, header):
    from synfashion.cli import main as synfashion_main
    from synfashion.hub.errors import HubError
    from synfashion.hub.push import card_license

    folder = shutil.copytree(built_dataset, tmp_path / "copy")
    card = folder / "README.md"
    card.write_text("---\n" + header + "---\n\n# a card\n")
    assert synfashion_main(["verify", str(folder), "--workers", "1"]) != 0
    err = capsys.readouterr()
    text = err.out + err.err
    assert "README.md: the YAML header cannot be read" in " ".join(text.split()) and "Traceback" not in text
    with pytest.raises(HubError, match="the YAML header cannot be read"):
        card_license(folder)


@pytest.fixture(scope="module")
def two_models(tmp_path_factory):
    from r2r.tiny import TinyModelConfig, save_random_lora, save_tiny_model

    root = tmp_path_factory.mktemp("models")
    a = save_tiny_model(root / "a", TinyModelConfig(unet_channels=(16, 32), unet_layers_per_block=1))
    b = save_tiny_model(root / "b", TinyModelConfig(unet_channels=(32, 32), unet_layers_per_block=1, text_width=64))
    return a, b, save_random_lora(b, root / "lora-of-b")


def test_a_lora_or_unet_of_another_model_is_one_line_naming_it(two_models):
    from r2r.config import ModelSpec
    from r2r.models import ModelFileError, load_pipeline

    a, b, lora = two_models
    with pytest.raises(ModelFileError) as e:
        load_pipeline(ModelSpec(str(a), lora=str(lora)))
    message = str(e.value)
    assert "\n" not in message and str(lora) in message and "tensor(s) of other shapes" in message
    with pytest.raises(ModelFileError, match=rf"--unet {b}: a UNet for another model \(cross_attention_dim 64, the "
                                             r"model needs 32\)"):
        load_pipeline(ModelSpec(str(a), unet=str(b)))


@pytest.mark.parametrize(("field", "value"), [("width", "wide"), ("height", -3), ("width", True),
                                              ("orientation", 9)])
def test_a_tar_sources_bad_size_is_one_line_naming_the_file(built_dataset, tmp_path, field, value):
    from loaders.sources import SourceError, open_records

    tars = tmp_path / "tars"
    tars.mkdir()
    tar = next((built_dataset / "webdataset" / "test").glob("*.tar"))
    bad = None
    with tarfile.open(tar) as src, tarfile.open(tars / "t.tar", "w", format=tarfile.PAX_FORMAT) as dst:
        for m in src:
            data = src.extractfile(m).read()
            if m.name.endswith(".json") and bad is None:
                data = json.dumps({**json.loads(data), field: value}).encode()
                m.size, bad = len(data), m.name
            dst.addfile(m, io.BytesIO(data))
    with pytest.raises(SourceError, match=rf"t\.tar: {bad.replace('.', '[.]')}: field '{field}'"):
        open_records(tars, ["test"])



def test_a_symlink_loop_among_photos_is_unreadable_not_a_crash(tmp_path):
    # Python 3.11's Path.resolve() raises RuntimeError on a loop: every reader of user images must still say
    # "cannot be read" (and evaluate's statistics cache must simply not cache such a set)
    from loaders import ImageFolderDataset
    from loaders.files import ImageFileError, read_file
    from r2r.evaluation.reference import content_hashes

    photos = tmp_path / "photos"
    photos.mkdir()
    _png(photos / "good.png", 1)
    os.symlink("loop.png", photos / "loop.png")
    with pytest.raises(ImageFileError, match=r"loop\.png.*cannot be resolved"):
        read_file(photos / "loop.png", root=photos)
    assert content_hashes(ImageFolderDataset(photos, captions="none")) is None
