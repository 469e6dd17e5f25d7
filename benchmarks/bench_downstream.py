"""Downstream training benchmark: samples/s of `r2r downstream` against a plain PyTorch loop over an image folder.

    python benchmarks/bench_downstream.py [--arch resnet-tiny|resnet18|...] [--size 192x256] [--batch-size 32]
        [--workers 2] [--projects 2 --textures 2] [--epochs 2] [--repeats 2] [--device cpu|cuda] [--cache .bench]

Data: the generated sample release of 20 categories x projects x textures x 4 views of 768x1024 JPEGs (shared with
bench_loaders.py / bench_build.py, cached under --cache) and its build. Both paths train the same model (a
transformers config, same seed, same initial weights) with the same batch size, the same number of DataLoader
workers, AdamW, on the same images (the build's train split), the last partial batch dropped:

  ours   r2r.downstream.run_downstream on the built folder: loaders' map-style reader (bytes straight from Arrow,
         reduced-size JPEG decode, torch's antialiased uint8 resize, "contain" into the frame), uint8 batches
         normalised on the device, channels-last, persistent workers
  plain  a torch Dataset over the release's image files: PIL open + convert("RGB") + ImageOps.pad (the same
         "contain" geometry, bicubic) + random flip + float tensor + normalise per item in the workers, a standard
         torch DataLoader (shuffle, same workers, default settings), the model in NCHW

The figure is training samples/s of the last epoch (the first one warms up: worker start, allocator, oneDNN
kernels), best of --repeats rounds with the two paths alternating. Beside it, the CPU time the epoch cost (this
process and its DataLoader workers, live or exited, from psutil): on a shared machine wall time moves with other
people's load, CPU time per sample hardly does, and on an idle machine with both paths CPU-bound the two ratios
agree. To explain the ratio it also times (CPU) the parts both paths spend per sample: decoding + transforming one
image (plain vs ours, one process) and one training step of the model (NCHW vs channels-last) on a synthetic batch.
Ends with one JSON line.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import platform
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image, ImageOps  # noqa: E402


# ------------------------------------------------------------------------------------------------ the data
def train_files(built: Path, release: Path) -> tuple[list[Path], list[int]]:
    """The build's train split as release files and labels (the plain loop reads exactly these images)."""
    from synfashion.manifest import Manifest
    from synfashion.taxonomy import CATEGORIES

    samples = [s for s in Manifest.read(built).samples if s["split"] == "train"]
    return [release / s["source_path"] for s in samples], [CATEGORIES.index(s["category"]) for s in samples]


def mini_real(cache: Path, release: Path) -> Path:
    """One image per category, hard-linked into a folder: the smallest test set `run_downstream` accepts (its
    scoring is not part of the figure)."""
    root = cache / "downstream-real-mini"
    for cat in sorted(p for p in release.iterdir() if p.is_dir()):
        first = sorted(cat.glob("*.jpg"))[0]
        target = root / cat.name / first.name
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            os.link(first, target)
    return root


class PlainFolder(torch.utils.data.Dataset):
    """What a plain PyTorch script does per item: PIL decode, fit into the frame, flip, float tensor, normalise."""

    def __init__(self, files: list[Path], labels: list[int], size: tuple[int, int]):
        self.files, self.labels, self.size = files, labels, size
        self.mean = torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1)
        self.std = torch.tensor([0.229, 0.224, 0.225]).view(3, 1, 1)

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int):
        img = Image.open(self.files[i]).convert("RGB")
        img = ImageOps.pad(img, self.size, method=Image.Resampling.BICUBIC, color=(255, 255, 255))
        if random.random() < 0.5:
            img = ImageOps.mirror(img)
        x = torch.from_numpy(np.asarray(img).copy()).permute(2, 0, 1).float().div_(255.0)
        return (x - self.mean) / self.std, self.labels[i]


def _model(arch: str, size: tuple[int, int]):
    from r2r.downstream.config import DownstreamConfig, TrainSource
    from r2r.downstream.models import build_model

    cfg = DownstreamConfig(train=(TrainSource("x", "."),), out=".", arch=arch, size=size)
    return build_model(cfg).model


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def cpu_seconds() -> float:
    """CPU seconds of this process, its exited children (waited for) and its live children (persistent workers)."""
    import psutil

    me = psutil.Process()
    t = me.cpu_times()
    total = t.user + t.system + t.children_user + t.children_system
    for child in me.children(recursive=True):
        try:
            c = child.cpu_times()
        except psutil.Error:  # exited between the listing and the read
            continue
        total += c.user + c.system
    return total


class Clock:
    """Wall and CPU time of a block."""

    def __enter__(self):
        self.wall, self.cpu = time.perf_counter(), cpu_seconds()
        return self

    def __exit__(self, *exc):
        self.wall, self.cpu = time.perf_counter() - self.wall, cpu_seconds() - self.cpu


# ------------------------------------------------------------------------------------------------ the two paths
def plain_loop(files, labels, args, device: torch.device) -> list[dict]:
    """Per-epoch samples and seconds of the plain loop."""
    import torch.nn.functional as F

    torch.manual_seed(0)
    model = _model(args.arch, args.size).to(device).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.05)
    dl = torch.utils.data.DataLoader(PlainFolder(files, labels, args.size), batch_size=args.batch_size, shuffle=True,
                                     num_workers=args.workers, drop_last=True, pin_memory=device.type == "cuda")
    out = []
    for _ in range(args.epochs):
        n = 0
        with Clock() as clock:
            for x, y in dl:  # the workers exit (and are waited for) when the epoch's iterator ends
                x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
                loss = F.cross_entropy(model(pixel_values=x).logits, y)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                n += len(y)
            _sync(device)
        out.append({"samples": n, "seconds": clock.wall, "cpu": clock.cpu})
    return out


def ours(built: Path, real: Path, args) -> list[dict]:
    from r2r.downstream import DownstreamConfig, TrainSource, run_downstream
    from r2r.downstream.trainer import VariantTrainer

    cpu: list[float] = []
    epoch = VariantTrainer._epoch

    def timed_epoch(self, *a, **kw):  # the CPU time of each epoch (the history has its wall time)
        with Clock() as clock:
            log = epoch(self, *a, **kw)
        cpu.append(clock.cpu)
        return log

    VariantTrainer._epoch = timed_epoch
    try:
        history = _ours(built, real, args)
    finally:
        VariantTrainer._epoch = epoch
    return [{**h, "cpu": c} for h, c in zip(history, cpu)]


def _ours(built: Path, real: Path, args) -> list[dict]:
    from r2r.downstream import DownstreamConfig, TrainSource, run_downstream

    with tempfile.TemporaryDirectory(prefix="bench-downstream-") as tmp:
        cfg = DownstreamConfig(train=(TrainSource("rendered", str(built)),), out=str(Path(tmp) / "out"),
                               test_real=str(real), test_split="", arch=args.arch, size=args.size, epochs=args.epochs,
                               batch_size=args.batch_size, lr=1e-3, num_workers=args.workers, device=args.device,
                               progress=False)
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            results = run_downstream(cfg)  # its table and "done" line are not the benchmark's output
    return [{"samples": h["samples"], "seconds": h["seconds"]} for h in results["variants"]["rendered"]["history"]]


# ------------------------------------------------------------------------------------------------ the parts
def part_timings(files, built: Path, args, device: torch.device) -> dict:
    """ms per sample of: data (decode + transform, one process) for each path; one training step per sample of the
    model in NCHW and in channels-last (synthetic batch)."""
    import torch.nn.functional as F

    from loaders import Selection
    from loaders.hf import synfashion_dataset
    from r2r.downstream.config import DownstreamConfig, TrainSource
    from r2r.downstream.data import transforms

    n = min(48, len(files))
    plain = PlainFolder(files[:n], [0] * n, args.size)
    cfg = DownstreamConfig(train=(TrainSource("x", "."),), out=".", arch=args.arch, size=args.size)
    ds = synfashion_dataset(str(built), Selection(split="train"), transforms(cfg)[0])
    timings = {}
    for name, get in (("data_cpu_ms_plain", lambda i: plain[i]), ("data_cpu_ms_ours", lambda i: ds[(i, 0)])):
        get(0)
        t0 = time.process_time()
        for i in range(n):
            get(i)
        timings[name] = 1000 * (time.process_time() - t0) / n
    w, h = args.size
    for name, cl in (("step_cpu_ms_nchw", False), ("step_cpu_ms_channels_last", True)):
        torch.manual_seed(0)
        model = _model(args.arch, args.size).to(device).train()
        x = torch.randn(args.batch_size, 3, h, w, device=device)
        y = torch.randint(0, 20, (args.batch_size,), device=device)
        if cl:
            model, x = model.to(memory_format=torch.channels_last), x.contiguous(memory_format=torch.channels_last)
        opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
        steps = 3
        for i in range(steps + 1):
            if i == 1:
                _sync(device)
                t0 = time.process_time()  # every thread of this process (torch's intra-op threads too)
            loss = F.cross_entropy(model(pixel_values=x).logits, y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        _sync(device)
        timings[name] = 1000 * (time.process_time() - t0) / (steps * args.batch_size)
    return {k: round(v, 3) for k, v in timings.items()}


def main() -> int:
    from bench_loaders import built as build_release
    from bench_loaders import release as make_release

    from r2r.downstream.config import parse_size

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--arch", default="resnet-tiny", help="r2r downstream --arch (same model on both paths)")
    p.add_argument("--size", default="192x256", type=parse_size, help="WxH")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--workers", type=int, default=2, help="DataLoader workers, both paths")
    p.add_argument("--projects", type=int, default=2)
    p.add_argument("--textures", type=int, default=2)
    p.add_argument("--epochs", type=int, default=2, help="the last one is timed")
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    p.add_argument("--cache", type=Path, default=Path(__file__).resolve().parents[1] / ".bench")
    args = p.parse_args()
    device = torch.device(args.device)
    args.cache.mkdir(parents=True, exist_ok=True)

    release, kind = make_release(args.cache, args.projects, args.textures)
    built = build_release(args.cache, release, kind, args.projects, args.textures)
    files, labels = train_files(built, release)
    real = mini_real(args.cache, release)
    print(f"data: {len(files)} training images (768x1024 JPEG, {kind}) -> {args.size[0]}x{args.size[1]} contain; "
          f"arch {args.arch}, batch {args.batch_size}, {args.workers} workers, {args.device}, torch threads "
          f"{torch.get_num_threads()}, load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores", flush=True)

    best: dict[str, float] = {}
    cpu_ms: dict[str, list[float]] = {"plain": [], "ours": []}
    rounds = []
    for r in range(args.repeats):
        for name, run in (("plain", lambda: plain_loop(files, labels, args, device)),
                          ("ours", lambda: ours(built, real, args))):
            epochs = run()
            last = epochs[-1]
            sps = last["samples"] / last["seconds"]
            best[name] = max(best.get(name, 0.0), sps)
            cpu_ms[name].append(1000 * last["cpu"] / last["samples"])
            rounds.append({"round": r + 1, "path": name, "samples_s": round(sps, 2),
                           "cpu_ms_per_sample": round(cpu_ms[name][-1], 2)})
            per_epoch = ", ".join(f"{e['samples'] / e['seconds']:.1f}" for e in epochs)
            print(f"round {r + 1} {name:5s}: last epoch {last['samples']} samples in {last['seconds']:.2f} s = "
                  f"{sps:.1f} samples/s, {cpu_ms[name][-1]:.1f} CPU ms/sample (samples/s per epoch: {per_epoch})",
                  flush=True)
    parts = part_timings(files, built, args, device)
    speedup = best["ours"] / best["plain"]
    cpu_plain, cpu_ours = (float(np.median(cpu_ms[k])) for k in ("plain", "ours"))
    print(f"plain loop {best['plain']:.1f} samples/s, r2r downstream {best['ours']:.1f} samples/s: {speedup:.2f}x "
          f"(best of {args.repeats}; target 1.5x)")
    print(f"CPU per trained sample (median of {args.repeats}): plain {cpu_plain:.1f} ms, ours {cpu_ours:.1f} ms: "
          f"{cpu_plain / cpu_ours:.2f}x less")
    print(f"parts, CPU ms per sample: data {parts['data_cpu_ms_plain']:.2f} plain vs {parts['data_cpu_ms_ours']:.2f} "
          f"ours; training step {parts['step_cpu_ms_nchw']:.2f} NCHW vs {parts['step_cpu_ms_channels_last']:.2f} "
          "channels-last")
    record = {"arch": args.arch, "size": list(args.size), "batch_size": args.batch_size, "workers": args.workers,
              "device": args.device, "train_images": len(files), "epochs": args.epochs, "repeats": args.repeats,
              "plain_samples_s": round(best["plain"], 2), "ours_samples_s": round(best["ours"], 2),
              "speedup": round(speedup, 3), "plain_cpu_ms_per_sample": round(cpu_plain, 2),
              "ours_cpu_ms_per_sample": round(cpu_ours, 2), "cpu_ratio": round(cpu_plain / cpu_ours, 3), **parts,
              "rounds": rounds, "torch_threads": torch.get_num_threads(),
              "load_average": round(os.getloadavg()[0], 2), "cpu_count": os.cpu_count(),
              "machine": platform.machine()}
    print(json.dumps(record))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
