"""Typed settings of `r2r downstream`: which datasets train the classifier, what it is tested on, how it is trained.

Why a torch-free module of plain frozen dataclasses: the CLI builds them from arguments (`r2r --help` stays instant),
the runner and the results file read them, and the output folder's record keeps their fingerprint, so a rerun into
the same folder continues only with the same settings. Each default is written here once, with the option that
sets it (`synfashion.cliutil.option`; the command is r2r/commands/downstream.py). No behaviour beyond validation
and the fingerprint.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, get_args

from synfashion.cliutil import NO_PROGRESS_HELP, option

ResizeMode = Literal["contain", "cover"]
MixedPrecision = Literal["no", "fp16", "bf16"]
Device = Literal["auto", "cpu", "cuda"]

# Variant names become file names (models/<name>/, confusion-<name>.png): letters, digits, '.', '_', '-'.
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")

# SynFashion renders are 768x1024 (3:4 portrait). 192x256 keeps that aspect at a quarter of the side.
DEFAULT_SIZE = (192, 256)
DEFAULT_MODEL = "microsoft/resnet-18"
# AdamW learning rate when none is given: fine-tuning pretrained weights, or training a config from scratch.
LR_PRETRAINED = 1e-4
LR_SCRATCH = 1e-3
ARCH_NAMES = ("resnet-tiny", "resnet18", "resnet34", "resnet50", "convnext-tiny", "convnext-small", "vit-tiny",
              "vit-small", "vit-base")  # r2r/downstream/models.py ARCHS (not imported here: it imports torch)


class DownstreamError(ValueError):
    """Bad `r2r downstream` input (a ValueError, so `r2r` prints one line and exits 2); the message names the
    argument or file at fault and the fix."""


@dataclass(frozen=True)
class TrainSource:
    """One training variant: a name for the tables and files, and a SynFashion-layout dataset (a built folder, a
    Hub dataset id, or a translated dataset written by `r2r translate-dataset`)."""

    name: str
    source: str

    def __post_init__(self) -> None:
        if not _NAME.match(self.name):
            raise DownstreamError(f"--train {self.name}={self.source}: the name must be letters, digits, '.', '_' or "
                                  "'-' (it names files), at most 64 characters")
        if not self.source:
            raise DownstreamError(f"--train {self.name}=: no dataset given after '='")

    @classmethod
    def parse(cls, text: str) -> "TrainSource":
        """'NAME=SOURCE' (SOURCE may itself hold '=': only the first one splits)."""
        name, sep, source = text.partition("=")
        if not sep:
            raise DownstreamError(f"--train {text!r}: expected NAME=SOURCE, e.g. rendered=./synfashion-hf")
        return cls(name.strip(), source.strip())


def parse_train(texts: tuple[str, ...]) -> tuple[TrainSource, ...]:
    """--train NAME=SOURCE, each one."""
    return tuple(TrainSource.parse(t) for t in texts)


def parse_size(text: str) -> tuple[int, int]:
    """'192x256' -> (192, 256): width x height."""
    try:
        w, h = (int(x) for x in text.lower().split("x"))
    except ValueError:
        raise DownstreamError(f"--size {text!r}: expected WIDTHxHEIGHT, e.g. 192x256") from None
    if w < 16 or h < 16:
        raise DownstreamError(f"--size {text}: both sides must be at least 16 pixels")
    return w, h


def shown_size(size: tuple[int, int]) -> str:
    return f"{size[0]}x{size[1]}"


@dataclass(frozen=True)
class DownstreamConfig:
    """One comparison: every `train` variant trains the same model from the same initial weights with the same seed,
    schedule and transforms, and is scored on the same test sets.

    test_real: real photos (an image folder with a sub-folder per category, or with a metadata.jsonl holding a
        `category` column); None scores on the synthetic held-out splits only.
    test_split: the held-out split of every training source that is scored too ("" for none).
    model / arch: a Hugging Face image-classification model id or folder (pretrained weights, a new 20-way head),
        or a named architecture built from a transformers config with random weights (no download). One of them.
    size / resize: (width, height) and how an image is fitted into it: "contain" scales it to fit and pads with
        white (the render background), so nothing of the garment is cut; "cover" fills the frame and crops.
    flip: horizontal flip probability in training. balanced: draw categories equally often (loaders'
        BalancedSampler) instead of each image once per epoch.
    batch_size: per process. lr: AdamW peak learning rate (None: LR_PRETRAINED or LR_SCRATCH); linear warm-up over
        the first 5% of the steps, then cosine decay to zero.
    """

    train: tuple[TrainSource, ...] = option(
        "--train", append=True, metavar="NAME=SOURCE", parse=parse_train,
        help="a training variant (repeatable): a built SynFashion folder, a Hub dataset id, or a dataset written by "
             "r2r translate-dataset; its train split is used")
    out: str = option("--out", type=Path, parse=str, help="output folder (one comparison per folder)")
    test_real: str | None = option(
        "--test-real", default=None, metavar="FOLDER",
        help="real photos: a sub-folder per category (names as in the release, e.g. 'Down jacket'), or a "
             "metadata.jsonl/csv with file_name and category columns; unmatched images are listed")
    test_split: str = option("--test-split", default="test", choices=("test", "validation", ""),
                             help="held-out split of every training source, scored by every variant ('' for none)")
    # the command's --model defaults to DEFAULT_MODEL when --arch is not given either
    model: str | None = option("--model", default=None,
                               help=f"Hugging Face image-classification model id or folder, pretrained weights and a "
                                    f"new 20-way head (default: {DEFAULT_MODEL} unless --arch is given)")
    arch: str | None = option("--arch", default=None, choices=ARCH_NAMES,
                              help="an architecture built from a transformers config with random weights (no "
                                   "download)")
    size: tuple[int, int] = option("--size", default=DEFAULT_SIZE, metavar="WxH", parse=parse_size, show=shown_size,
                                   help="input size; 3:4 like the 768x1024 renders, so a render is scaled whole")
    resize: ResizeMode = option("--resize", default="contain", choices=get_args(ResizeMode),
                                help="contain: fit the whole image and pad with white (nothing of the garment is "
                                     "cut); cover: fill the frame and crop the overflow")
    flip: float = option("--flip", default=0.5, type=float, help="horizontal flip probability in training")
    epochs: int = option("--epochs", default=10, type=int, help="passes over each training split")
    batch_size: int = option("--batch-size", default=64, type=int, help="per process")
    lr: float | None = option("--lr", default=None, type=float,
                              help=f"AdamW peak learning rate (default {LR_PRETRAINED:g} with --model, "
                                   f"{LR_SCRATCH:g} with --arch); 5%% warm-up, then cosine decay")
    weight_decay: float = option("--weight-decay", default=0.05, type=float,
                                 help="AdamW weight decay (not on biases and norms)")
    seed: int = option("--seed", default=0, type=int, help="initial weights, data order and augmentation")
    balanced: bool = option("--balanced", default=False,
                            help="draw categories equally often (the release has 10 to 40 projects per category)")
    mixed_precision: MixedPrecision = option("--mixed-precision", default="no", choices=get_args(MixedPrecision),
                                             help="autocast dtype")
    channels_last: bool = option("--no-channels-last", default=True,
                                 help="keep NCHW tensors (channels-last is faster for convolutions on CPU and GPU)")
    num_workers: int = option("--num-workers", default=2, type=int,
                              help="image decoding processes per training process")
    skip_bad_images: bool = option("--skip-bad-images", default=False,
                                   help="leave out images that do not decode (each is named on the terminal and in "
                                        "results.json) instead of stopping; the real photos are checked before "
                                        "any training")
    device: Device = option("--device", default="auto", choices=get_args(Device), help="auto: CUDA when available")
    overwrite: bool = option("--overwrite", default=False,
                             help="start over in an OUT that holds a run with other settings: removes only the files "
                                  "a run wrote there, never others")
    progress: bool = option("--no-progress", default=True, help=NO_PROGRESS_HELP)

    def __post_init__(self) -> None:
        if not self.train:
            raise DownstreamError("no training data: pass --train NAME=SOURCE at least once")
        names = [t.name for t in self.train]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise DownstreamError(f"--train names must differ; {', '.join(dupes)} is given twice")
        if (self.model is None) == (self.arch is None):
            raise DownstreamError("pass exactly one of --model (a Hugging Face model id or folder) and --arch "
                                  "(an architecture built locally with random weights)")
        if self.resize not in ("contain", "cover"):
            raise DownstreamError(f"--resize {self.resize!r}: choose contain or cover")
        if not 0.0 <= self.flip <= 1.0:
            raise DownstreamError(f"--flip is a probability in [0, 1], got {self.flip}")
        for name in ("epochs", "batch_size"):
            if getattr(self, name) < 1:
                raise DownstreamError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(self, name)}")
        if self.lr is not None and not self.lr > 0:
            raise DownstreamError(f"--lr must be positive, got {self.lr}")
        if self.num_workers < 0:
            raise DownstreamError(f"--num-workers must be >= 0, got {self.num_workers}")
        if self.mixed_precision not in ("no", "fp16", "bf16"):
            raise DownstreamError(f"--mixed-precision {self.mixed_precision!r}: choose no, fp16 or bf16")
        if self.device not in ("auto", "cpu", "cuda"):
            raise DownstreamError(f"--device {self.device!r}: choose auto, cpu or cuda")

    @property
    def pretrained(self) -> bool:
        return self.model is not None

    @property
    def learning_rate(self) -> float:
        return self.lr if self.lr is not None else (LR_PRETRAINED if self.pretrained else LR_SCRATCH)

    def settings(self) -> dict:
        """What the results depend on (the fingerprint's settings part; device, workers and progress are not)."""
        return {
            "train": [[t.name, t.source] for t in self.train], "test_real": self.test_real,
            "test_split": self.test_split, "model": self.model, "arch": self.arch, "size": list(self.size),
            "resize": self.resize, "flip": self.flip, "epochs": self.epochs, "batch_size": self.batch_size,
            "lr": self.learning_rate, "weight_decay": self.weight_decay, "seed": self.seed, "balanced": self.balanced,
            "mixed_precision": self.mixed_precision, "channels_last": self.channels_last,
        }
