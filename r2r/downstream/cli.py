"""`r2r downstream`: argument parsing into a `DownstreamConfig`, then one run.

Every process of an `accelerate launch -m r2r.cli downstream ...` run parses the same arguments, so nothing here
depends on the rank. Parsing imports no torch (`r2r --help` stays instant). Bad input is a DownstreamError (a
ValueError): `r2r` prints one line and exits with status 2.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from .config import DEFAULT_MODEL, LR_PRETRAINED, LR_SCRATCH, DownstreamConfig, TrainSource, parse_size

ARCH_NAMES = ("resnet-tiny", "resnet18", "resnet34", "resnet50", "convnext-tiny", "convnext-small", "vit-tiny",
              "vit-small", "vit-base")  # r2r/downstream/models.py ARCHS (not imported here: it imports torch)


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "downstream", help="train a garment classifier on each variant (rendered, translated, ...), test on real "
                           "photos",
        description="Sim-to-real evidence: train the same classifier (same initial weights, seed, schedule and "
                    "transforms) on the 20-category label of each --train dataset, and score every one on the same "
                    "test sets: real photos and each source's held-out split. Writes OUT/results.json, results.md, "
                    "accuracy.png, confusion/<variant>.png, models/<variant>/ (safetensors) and per-epoch "
                    "checkpoints; running the same command again continues an interrupted run. Multi-GPU: "
                    "accelerate launch -m r2r.cli downstream ...",
    )
    p.add_argument("--train", action="append", required=True, metavar="NAME=SOURCE",
                   help="a training variant (repeatable): a built SynFashion folder, a Hub dataset id, or a dataset "
                        "written by r2r translate-dataset; its train split is used")
    p.add_argument("--test-real", metavar="FOLDER",
                   help="real photos: a sub-folder per category (names as in the release, e.g. 'Down jacket'), or a "
                        "metadata.jsonl/csv with file_name and category columns; unmatched images are listed")
    p.add_argument("--test-split", default="test", choices=("test", "validation", ""),
                   help="held-out split of every training source, scored by every variant ('' for none)")
    p.add_argument("--out", required=True, type=Path, help="output folder (one comparison per folder)")
    m = p.add_mutually_exclusive_group()
    m.add_argument("--model", help=f"Hugging Face image-classification model id or folder, pretrained weights "
                                   f"and a new 20-way head (default: {DEFAULT_MODEL} unless --arch is given)")
    m.add_argument("--arch", choices=ARCH_NAMES,
                   help="an architecture built from a transformers config with random weights (no download)")
    d = p.add_argument_group("images")
    d.add_argument("--size", default="192x256", metavar="WxH",
                   help="input size; 3:4 like the 768x1024 renders, so a render is scaled whole")
    d.add_argument("--resize", choices=("contain", "cover"), default="contain",
                   help="contain: fit the whole image and pad with white (nothing of the garment is cut); cover: "
                        "fill the frame and crop the overflow")
    d.add_argument("--flip", type=float, default=0.5, help="horizontal flip probability in training")
    d.add_argument("--balanced", action="store_true",
                   help="draw categories equally often (the release has 10 to 40 projects per category)")
    d.add_argument("--num-workers", type=int, default=2, help="image decoding processes per training process")
    t = p.add_argument_group("training")
    t.add_argument("--epochs", type=int, default=10, help="passes over each training split")
    t.add_argument("--batch-size", type=int, default=64, help="per process")
    t.add_argument("--lr", type=float,
                   help=f"AdamW peak learning rate (default {LR_PRETRAINED:g} with --model, {LR_SCRATCH:g} with "
                        "--arch); 5%% warm-up, then cosine decay")
    t.add_argument("--weight-decay", type=float, default=0.05, help="AdamW weight decay (not on biases and norms)")
    t.add_argument("--seed", type=int, default=0, help="initial weights, data order and augmentation")
    t.add_argument("--mixed-precision", choices=("no", "fp16", "bf16"), default="no", help="autocast dtype")
    t.add_argument("--no-channels-last", action="store_true", help="keep NCHW tensors (channels-last is faster "
                                                                    "for convolutions on CPU and GPU)")
    t.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto", help="auto: CUDA when available")
    t.add_argument("--overwrite", action="store_true",
                   help="start over in an OUT that holds a run with other settings: removes only the files a run "
                        "wrote there, never others")
    t.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=_cmd)


def config_of(args: argparse.Namespace) -> DownstreamConfig:
    model = args.model if args.model or args.arch else DEFAULT_MODEL
    return DownstreamConfig(
        train=tuple(TrainSource.parse(t) for t in args.train), out=str(args.out), test_real=args.test_real,
        test_split=args.test_split, model=model, arch=args.arch, size=parse_size(args.size), resize=args.resize,
        flip=args.flip, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, weight_decay=args.weight_decay,
        seed=args.seed, balanced=args.balanced, mixed_precision=args.mixed_precision,
        channels_last=not args.no_channels_last, num_workers=args.num_workers, device=args.device,
        overwrite=args.overwrite, progress=not args.no_progress,
    )


def _cmd(args: argparse.Namespace) -> int:
    cfg = config_of(args)  # validated before torch is imported
    from .runner import run_downstream

    run_downstream(cfg)
    return 0
