"""Whose folder is this (issue 20, second round): every command that writes a folder writes only into one that is new,
empty or its own (synfashion/fs/ownership.py); anything else is refused with one line naming the folder and its
owner, whatever the flags, and nothing in it changes. The matrix points each writer at each other writer's output, at
an original build, at a folder of user files and at its own input. Outputs are real but tiny runs where that is cheap
(build, DKI training, translate-images, report, study-page, tiny-model), else the command's own smallest artifact
written by its own code (downstream's run record, ablate's record, a translated dataset's manifest contract)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from r2r.cli import main as r2r_main
from synfashion.cli import main as synfashion_main
from synfashion.fs.ownership import (
    OWNER_FILE,
    WRITERS,
    OwnedFolder,
    OwnershipError,
    owner_of,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # see conftest.py

TINY = ["--steps", "2", "--strength", "0.5", "--no-progress"]


def tree(root: Path) -> dict[str, str]:
    """Every entry under `root` (hidden ones too): files by sha256, links by target, folders by name."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath, name)
            rel = p.relative_to(root).as_posix()
            if p.is_symlink():
                out[rel] = "-> " + os.readlink(p)
            elif p.is_dir():
                out[rel] = "dir"
            else:
                out[rel] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def _image(path: Path, seed: int, size=(64, 64)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.random.default_rng(seed).integers(1, 255, (size[1], size[0], 3), dtype=np.uint8)).save(path)


@pytest.fixture(scope="module")
def world(tmp_path_factory, sample_release, built_dataset, evaluated, tiny_dki_model):
    """Every writer's output, each made once; and each writer's inputs."""
    from r2r.dki import (
        DataConfig,
        NegativeConfig,
        NegativeTrainer,
        RunConfig,
        TrainConfig,
    )
    from r2r.downstream.outdir import DownstreamFolder
    from r2r.evaluation.ablate import FORMAT, RECORD
    from r2r.tiny import TinyModelConfig, save_tiny_model

    root = tmp_path_factory.mktemp("ownership")
    cfg = TinyModelConfig(unet_channels=(16, 32), unet_layers_per_block=1)
    w = {"model": tiny_dki_model}  # the shared session model of this config: only read here
    w["release"] = shutil.copytree(sample_release, root / "inputs" / "release")
    w["source"] = shutil.copytree(evaluated["source"], root / "inputs" / "source")
    w["eval"] = evaluated["root"] / "eval"
    w["evals"] = [str(evaluated["ours"]), str(evaluated["cut"])]
    w["real"] = root / "inputs" / "real"
    for i, cat in enumerate(("Dress", "Hoodie")):
        _image(w["real"] / cat / f"photo{i}.png", 50 + i, (48, 64))
    w["renders"] = root / "inputs" / "renders"
    for i, name in enumerate(("a.png", "report.png")):  # a rendered image named like a report's grid
        _image(w["renders"] / name, i)
    out = {}
    out["build"] = shutil.copytree(built_dataset, root / "outputs" / "build")
    out["translate-dataset"] = shutil.copytree(evaluated["root"] / "ours", root / "outputs" / "translate-dataset")
    NegativeTrainer(RunConfig(
        model=str(w["model"]), out=str(root / "outputs" / "dki"),
        data=DataConfig(source=str(w["renders"]), resolution=64, num_workers=0),
        train=TrainConfig(steps=1, batch_size=2, lr=1e-2, checkpoint_every=1, progress=False),
        method=NegativeConfig())).fit()
    out["dki"] = root / "outputs" / "dki"
    out["downstream"] = root / "outputs" / "downstream"  # its run record, written by its own claim
    DownstreamFolder(out["downstream"]).claim({"train": [["a", str(w["source"])]]}, overwrite=False)
    out["ablate"] = root / "outputs" / "ablate"  # its record, as `r2r ablate` writes it before any variant
    out["ablate"].mkdir(parents=True)
    (out["ablate"] / RECORD).write_text(json.dumps({"format": FORMAT, "settings": {}, "variants": []}))
    out["translate-images"] = root / "outputs" / "translate-images"
    assert r2r_main(["translate-images", "--model", str(w["model"]), "--input", str(w["renders"]), "--output",
                     str(out["translate-images"]), *TINY]) == 0
    assert (out["translate-images"] / "report.png").is_file()  # a translated image, not a report
    out["report"] = root / "outputs" / "report"
    assert r2r_main(["report", "--input", str(w["renders"]), "--output", str(out["translate-images"]), "--out",
                     str(out["report"])]) == 0
    out["study-page"] = root / "outputs" / "study-page"
    assert r2r_main(["study-page", *w["evals"], "--n", "2", "--out", str(out["study-page"])]) == 0
    out["tiny-model"] = save_tiny_model(root / "outputs" / "tiny-model", cfg)
    out["user-files"] = root / "outputs" / "user-files"
    out["user-files"].mkdir()
    (out["user-files"] / "notes.txt").write_text("mine")
    _image(out["user-files"] / "holiday.png", 9)
    w["outputs"] = out
    return w


def _writers(w: dict) -> dict:
    """writer -> (its own input folder or None, the command pointed at OUT with every flag that could force it)."""
    model = str(w["model"])
    return {
        "build": (w["release"], lambda out: synfashion_main(
            ["build", str(w["release"]), str(out), "--overwrite", "--workers", "1"])),
        "translate-dataset": (w["source"], lambda out: r2r_main(
            ["translate-dataset", str(w["source"]), str(out), "--model", model, "--split", "test", "--overwrite",
             "--num-workers", "0", *TINY])),
        "dki": (w["renders"], lambda out: r2r_main(
            ["train-negative", "--model", model, "--renders", str(w["renders"]), "--out", str(out), "--overwrite",
             "--steps", "1", "--resolution", "64", "--batch-size", "2", "--num-workers", "0", "--no-progress"])),
        "downstream": (w["real"], lambda out: r2r_main(
            ["downstream", "--train", f"a={w['source']}", "--test-real", str(w["real"]), "--out", str(out),
             "--overwrite", "--arch", "resnet-tiny", "--epochs", "1", "--device", "cpu", "--no-progress"])),
        "ablate": (w["source"], lambda out: r2r_main(
            ["ablate", str(w["source"]), str(out), "--model", model, "--real", str(w["real"]), "--overwrite",
             "--random-weights", "--num-workers", "0", *TINY])),
        "translate-images": (w["renders"], lambda out: r2r_main(
            ["translate-images", "--model", model, "--input", str(w["renders"]), "--output", str(out), "--overwrite",
             *TINY])),
        "report": (w["renders"], lambda out: r2r_main(
            ["report", "--input", str(w["renders"]), "--output", str(w["outputs"]["translate-images"]), "--out",
             str(out)])),
        "study-page": (w["eval"], lambda out: r2r_main(
            ["study-page", *w["evals"], "--n", "2", "--seed", "3", "--out", str(out), "--overwrite"])),
        "tiny-model": (None, lambda out: r2r_main(["tiny-model", str(out), "--overwrite"])),
    }


TARGETS = [*WRITERS, "user-files", "own-input"]
CASES = [(writer, target) for writer in WRITERS for target in TARGETS
         if target != writer and not (writer == "tiny-model" and target == "own-input")]


@pytest.mark.parametrize(("writer", "target"), CASES, ids=[f"{w}->{t}" for w, t in CASES])
def test_every_writer_refuses_every_folder_that_is_not_its_own(world, writer, target, capsys):
    own_input, run = _writers(world)[writer]
    out = own_input if target == "own-input" else world["outputs"][target]
    watched = {p: tree(p) for p in {out, *world["outputs"].values()}}
    assert run(out) == 2
    err = capsys.readouterr().err
    lines = [line for line in err.strip().splitlines() if line.startswith("error")]
    assert len(lines) == 1 and "Traceback" not in err, err
    reads = {own_input, *([world["outputs"]["translate-images"]] if writer == "report" else [])}
    if out in reads:  # one of the run's inputs (report reads a translate-images folder), or the folder of one
        expected = f"output folder {out} {'contains' if writer == 'study-page' else 'is'} the "
    elif target == "user-files":
        expected = "holds files no command of this project wrote"
    else:
        expected = WRITERS[target].what
    assert expected in " ".join(err.split()), err
    assert {p: tree(p) for p in watched} == watched  # nothing changed, anywhere


def test_the_marks_name_every_writer(world):
    for target, out in world["outputs"].items():
        owner = owner_of(out)
        assert owner is not None and owner.writer == (None if target == "user-files" else target), (target, owner)
    built = world["outputs"]["build"]
    assert not (built / OWNER_FILE).exists()  # a built folder's manifest is its mark: verify accounts for every file


# ------------------------------------------------------------------------------------------------ the pages
def test_a_report_never_removes_a_users_file_that_looks_like_its_picture(world, tmp_path):
    out = tmp_path / "report"
    args = ["report", "--input", str(world["renders"]), "--output", str(world["outputs"]["translate-images"]),
            "--out", str(out)]
    assert r2r_main(args) == 0
    lookalike = out / "report_files" / "0123456789abcdef.jpg"  # named as the page names pictures; not its bytes
    lookalike.write_bytes(b"my own picture")
    (out / "notes.txt").write_text("mine")
    assert r2r_main([*args, "--max-side", "32"]) == 0  # other pictures: the old ones go, the user's stay
    assert lookalike.read_bytes() == b"my own picture" and (out / "notes.txt").read_text() == "mine"
    (out / "report.html").write_text("edited by hand")  # no longer what the report wrote: never replaced
    assert r2r_main(args) == 2
    assert (out / "report.html").read_text() == "edited by hand"


def test_a_study_page_of_another_seed_needs_overwrite(world, tmp_path, capsys):
    out = tmp_path / "study"
    args = ["study-page", *world["evals"], "--n", "2", "--out", str(out)]
    assert r2r_main([*args, "--seed", "1"]) == 0
    assert r2r_main([*args, "--seed", "1"]) == 0  # the same page again: fine
    page = tree(out)
    capsys.readouterr()
    assert r2r_main([*args, "--seed", "2"]) == 2
    err = capsys.readouterr().err
    assert "seed 1 -> 2" in err and "--overwrite" in err and len(err.strip().splitlines()) == 1
    assert tree(out) == page
    (out / "notes.txt").write_text("mine")
    assert r2r_main([*args, "--seed", "2", "--overwrite"]) == 0
    assert json.loads((out / "study.json").read_text())["seed"] == 2 and (out / "notes.txt").read_text() == "mine"


def test_owned_folder_removes_only_what_it_provably_wrote(tmp_path):
    folder = OwnedFolder(tmp_path / "f", "report")
    assert folder.claim() is False
    folder.begin({"x": 1})
    with folder.writing(["a.html", "b.png"]):
        (tmp_path / "f" / "a.html").write_text("ours")
        (tmp_path / "f" / "b.png").write_text("ours too")
    (tmp_path / "f" / "b.png").write_text("changed by the user")
    (tmp_path / "f" / "c.txt").write_text("the user's")
    again = OwnedFolder(tmp_path / "f", "report")
    assert again.claim() is True and again.settings == {"x": 1}
    assert again.in_the_way(["a.html", "b.png", "c.txt", "d"]) == ["b.png", "c.txt"]
    assert again.remove_owned() == ["a.html"]
    assert sorted(p.name for p in (tmp_path / "f").iterdir()) == [OWNER_FILE, "b.png", "c.txt"]
    with pytest.raises(OwnershipError, match="report page"):
        OwnedFolder(tmp_path / "f", "study-page").claim()
