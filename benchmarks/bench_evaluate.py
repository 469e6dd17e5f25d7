"""Throughput of `r2r evaluate` and of its metrics against the library versions that run here, on the same images.

Per metric, identical inputs (768x1024 RGB pairs, float in [0, 1]) and batch size, runs interleaved, median kept:
- SSIM: r2r.metrics.ssim against torchmetrics' structural_similarity_index_measure (reduction="none").
- KID from features: r2r.metrics.kid_subsets against torchmetrics' KernelInceptionDistance.compute on the same
  [n, 2048] features (fed through an identity feature module; its own Inception backbone needs torch-fidelity).
- Inception features and LPIPS: ours alone (torch-fidelity, lpips and torchmetrics' LPIPS import torchvision,
  which does not load here; benchmarks/parity_metrics.py runs them in a throwaway venv).
End to end: `r2r evaluate` (random weights) on a built source folder, a folder of translated PNGs and a folder of
real PNGs written to a temp dir: pairs per second, everything included (decode, Inception, LPIPS, SSIM, KID).

    PYTHONPATH=$PWD .venv/bin/python benchmarks/bench_evaluate.py [--device cuda] [--pairs 16]

torchmetrics is not a project dependency yet; without it the comparisons are skipped and say so.
Prints figures and one JSON line.
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

W, H = 768, 1024


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn, device, repeats: int) -> float:
    """Median seconds of `fn()` over `repeats` runs after one warm-up."""
    fn()
    _sync(device)
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def images(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    base = torch.rand(n, 3, H // 16, W // 16, generator=g)
    x = torch.nn.functional.interpolate(base, size=(H, W), mode="bilinear", align_corners=False)
    x = (x + 0.05 * torch.rand(x.shape, generator=g)).clamp(0, 1)
    y = (x * 0.9 + 0.05 + 0.02 * torch.randn(x.shape, generator=g)).clamp(0, 1)
    return x, y


def bench_metrics(args, device) -> dict:
    from r2r.metrics import (ALEXNET, INCEPTION, LPIPS, LPIPS_ALEX_HEADS, InceptionFeatures, KIDConfig, kid_subsets,
                             random_state_dict, random_weights, ssim)

    out: dict = {}
    x, y = images(args.batch_size, 0)
    x, y = x.to(device), y.to(device)
    try:
        from torchmetrics.functional.image import structural_similarity_index_measure as tm_ssim
        from torchmetrics.image.kid import KernelInceptionDistance
    except ImportError:
        tm_ssim = KernelInceptionDistance = None
        out["torchmetrics"] = "not installed (not a project dependency yet): comparisons skipped"
    with torch.inference_mode():
        ours = timed(lambda: ssim(x, y), device, args.repeats)
        out["ssim_ours_img_s"] = args.batch_size / ours
        if tm_ssim is not None:
            theirs = timed(lambda: tm_ssim(x, y, data_range=1.0, reduction="none"), device, args.repeats)
            out["ssim_torchmetrics_img_s"] = args.batch_size / theirs
            out["ssim_speedup_vs_torchmetrics"] = theirs / ours
        lpips = LPIPS(alexnet=random_weights(ALEXNET, 1), heads=random_weights(LPIPS_ALEX_HEADS, 2)).to(device)
        out["lpips_ours_img_s"] = args.batch_size / timed(lambda: lpips(x, y), device, args.repeats)
        inception = InceptionFeatures(random_state_dict(INCEPTION, 0)).to(device)
        u8 = (x * 255).round().to(torch.uint8)
        out["inception_ours_img_s"] = args.batch_size / timed(lambda: inception(u8), device, args.repeats)
    # KID from features: the protocol's sizes (100 subsets of 1000) on 1100 real and 1050 translated features
    g = torch.Generator().manual_seed(3)
    real = torch.rand(1100, 2048, generator=g).to(device)
    fake = (torch.rand(1050, 2048, generator=g) * 1.05).to(device)
    ours = timed(lambda: kid_subsets(real, fake, KIDConfig()), device, max(1, args.repeats // 2))
    out["kid_ours_s"] = ours
    if KernelInceptionDistance is not None:
        def tm_kid():
            m = KernelInceptionDistance(feature=torch.nn.Identity(), subsets=100, subset_size=1000).to(device)
            m.update(real, real=True)
            m.update(fake, real=False)
            return m.compute()

        theirs = timed(tm_kid, device, max(1, args.repeats // 2))
        out["kid_torchmetrics_s"] = theirs
        out["kid_speedup_vs_torchmetrics"] = theirs / ours
    return out


def write_inputs(root: Path, pairs: int, real: int) -> None:
    import hashlib

    from PIL import Image

    from synfashion.schema import RenderRecord, make_key, renders_row
    from synfashion.testing.fixtures import write_renders_folder

    src, tr = images(pairs, 1)
    rows, samples = [], []
    (root / "translated").mkdir(parents=True)
    for i in range(pairs):
        buf = io.BytesIO()
        Image.fromarray((src[i].permute(1, 2, 0) * 255).round().byte().numpy()).save(buf, "PNG")
        data = buf.getvalue()
        rec = RenderRecord(key=make_key("dress", f"dress-p{i:04d}", "t0", "front"), category="dress",
                           project=f"dress-p{i:04d}", texture="t0", view="front",
                           source_path=f"Dress/dress-p{i:04d}_t0_front.png", width=W, height=H, mode="RGB",
                           format="PNG", orientation=1, sha256=hashlib.sha256(data).hexdigest(),
                           num_bytes=len(data), split="test")
        rows.append(renders_row(rec, data))
        samples.append(rec.metadata())
        Image.fromarray((tr[i].permute(1, 2, 0) * 255).round().byte().numpy()).save(
            root / "translated" / f"{rec.key}.png")
    write_renders_folder(root / "source", rows, samples)
    (root / "real").mkdir()
    photos, _ = images(real, 2)
    for i in range(real):
        Image.fromarray((photos[i].permute(1, 2, 0) * 255).round().byte().numpy()).save(root / "real" / f"p{i}.png")


def bench_end_to_end(args, device) -> dict:
    from r2r.cli import main

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        write_inputs(root, args.pairs, args.real)
        t = time.perf_counter()
        code = main(["evaluate", "--translated", str(root / "translated"), "--source", str(root / "source"),
                     "--real", str(root / "real"), "--out", str(root / "eval.json"), "--random-weights",
                     "--device", str(device), "--batch-size", str(args.batch_size), "--num-workers",
                     str(args.workers), "--no-progress"])
        seconds = time.perf_counter() - t
        if code != 0:
            raise SystemExit(f"r2r evaluate exited with {code}")
    return {"evaluate_seconds": seconds, "evaluate_pairs_per_s": args.pairs / seconds,
            "evaluate_images_per_s": (2 * args.pairs + args.real) / seconds}


def main() -> None:
    ap = argparse.ArgumentParser(description="r2r evaluate throughput")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--pairs", type=int, default=16, help="end to end: translated/source pairs")
    ap.add_argument("--real", type=int, default=16, help="end to end: real images")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--skip-end-to-end", action="store_true")
    args = ap.parse_args()
    device = torch.device(args.device)
    result = {"bench": "evaluate", "device": str(device), "torch_threads": torch.get_num_threads(),
              "image_size": f"{W}x{H}", "batch_size": args.batch_size}
    result.update(bench_metrics(args, device))
    if not args.skip_end_to_end:
        result.update(bench_end_to_end(args, device))
    for k, v in result.items():
        print(f"{k:34s} {v:.4g}" if isinstance(v, float) else f"{k:34s} {v}")
    print(json.dumps(result))


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
