"""How close the metric networks run to this machine's convolution roofline, at 768x1024 (Inception, LPIPS, SSIM).

For each metric and batch size (default 1 and 4; random weights: speed does not depend on their values; torch
threads = all cores unless --threads): the network's seconds per call, images/s (LPIPS and SSIM: pairs/s), and the
"roofline fraction" = (seconds of a plain loop of the same primitive calls) / (seconds of the network). For
Inception and LPIPS the plain loop is every `F.conv2d` (and `F.linear`) call the network makes, with its exact
shapes, collected by forward hooks and replayed alone on random inputs: what the convolution library reaches on
those shapes, with none of the network's other work (Inception's TF1 resize and BatchNorms, LPIPS's normalisation,
pooling and unit-normalised differences, allocation). A fraction near 1 means the network is as fast as its
convolutions allow here; the rest is overhead outside them. SSIM has no convolutions (separable shifted adds,
ssim.py) and is bound by memory traffic: its plain loop is the in-place axpy it is made of (`a.add_(b, alpha=c)`
on one [N, 3, H, W] float32 map), timed alone, times the number of such map-sized passes its algorithm makes
(`ssim_passes`, ~127).

This machine is shared (2 cores): each round runs the network and then its plain loop back to back, --iters rounds
(default 3) after one warm-up round, and the best round of each is kept (the least disturbed; a median of three on
a busy machine still mixes in other people's work). About 1-2 minutes on 2 cores. Prints a table and one JSON line.

    PYTHONPATH=$PWD .venv/bin/python benchmarks/bench_metrics_roofline.py [--iters 3] [--batches 1,4] [--device cuda]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

W, H = 768, 1024


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def once(fn, device: torch.device) -> float:
    t = time.perf_counter()
    fn()
    _sync(device)
    return time.perf_counter() - t


def best_rounds(network, loop, device: torch.device, iters: int) -> tuple[float, float]:
    """(best network seconds, best loop seconds) over `iters` interleaved rounds after one warm-up round."""
    network(), loop()
    _sync(device)
    net_times, loop_times = [], []
    for _ in range(iters):
        net_times.append(once(network, device))
        loop_times.append(once(loop, device))
    return min(net_times), min(loop_times)


def images(n: int, seed: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    base = torch.rand(n, 3, H // 16, W // 16, generator=g)
    x = F.interpolate(base, size=(H, W), mode="bilinear", align_corners=False)
    x = (x + 0.05 * torch.rand(x.shape, generator=g)).clamp(0, 1)
    y = (x * 0.9 + 0.05 + 0.02 * torch.randn(x.shape, generator=g)).clamp(0, 1)
    return x.to(device), y.to(device)


def record_calls(net: nn.Module, run) -> list[tuple]:
    """Every Conv2d / Linear call `run()` makes: (kind, input shape, weight shape, has bias, stride, padding,
    dilation, groups)."""
    calls: list[tuple] = []

    def hook(module, inputs, _output):
        x = inputs[0]
        if isinstance(module, nn.Conv2d):
            calls.append(("conv", tuple(x.shape), tuple(module.weight.shape), module.bias is not None,
                          module.stride, module.padding, module.dilation, module.groups))
        else:
            calls.append(("linear", tuple(x.shape), tuple(module.weight.shape), module.bias is not None))

    handles = [m.register_forward_hook(hook) for m in net.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    try:
        run()
    finally:
        for h in handles:
            h.remove()
    return calls


def call_flops(call: tuple) -> float:
    if call[0] == "conv":
        _, xs, ws, _, stride, padding, dilation, groups = call
        n, _, h, w = xs
        k_h, k_w = ws[2], ws[3]
        h_out = (h + 2 * padding[0] - dilation[0] * (k_h - 1) - 1) // stride[0] + 1
        w_out = (w + 2 * padding[1] - dilation[1] * (k_w - 1) - 1) // stride[1] + 1
        return 2.0 * n * ws[0] * h_out * w_out * (ws[1] * k_h * k_w)
    _, xs, ws, _ = call
    rows = 1
    for s in xs[:-1]:
        rows *= s
    return 2.0 * rows * ws[0] * ws[1]


def plain_loop(calls: list[tuple], device: torch.device):
    """A function running every recorded call once, on random inputs of the recorded shapes (made beforehand)."""
    g = torch.Generator().manual_seed(0)
    prepared = []
    for call in calls:
        x = torch.randn(call[1], generator=g).to(device)
        w = (0.05 * torch.randn(call[2], generator=g)).to(device)
        b = torch.zeros(call[2][0], device=device) if call[3] else None
        prepared.append((call, x, w, b))

    def run() -> None:
        for call, x, w, b in prepared:
            if call[0] == "conv":
                F.conv2d(x, w, b, *call[4:])
            else:
                F.linear(x, w, b)

    return run


def ssim_passes(window: int = 11) -> float:
    """Map-sized float32 read-read-write passes of ssim.py per pair: centring the two images (~2 each), three
    products (1 each), five separable blurs (per 1-D pass one scaled copy, ~2/3 of a pass, and window - 1 in-place
    adds), ~15 elementwise formula ops and the final mean (~1/3)."""
    return 2 * 2 + 3 + 5 * 2 * (2 / 3 + (window - 1)) + 15 + 1 / 3


def bench(args, device: torch.device) -> list[dict]:
    from r2r.metrics import (ALEXNET, INCEPTION, LPIPS, LPIPS_ALEX_HEADS, InceptionFeatures, random_state_dict,
                             random_weights, ssim)

    inception = InceptionFeatures(random_state_dict(INCEPTION, 0)).to(device)
    lpips = LPIPS(alexnet=random_weights(ALEXNET, 1), heads=random_weights(LPIPS_ALEX_HEADS, 2)).to(device)
    rows: list[dict] = []
    for batch in args.batches:
        x, y = images(batch, batch, device)
        u8 = (x * 255).round().to(torch.uint8)
        for name, net, run in (("inception", inception, lambda: inception(u8)), ("lpips", lpips, lambda: lpips(x, y))):
            with torch.inference_mode():
                calls = record_calls(net, run)
                seconds, loop = best_rounds(run, plain_loop(calls, device), device, args.iters)
            flops = sum(call_flops(c) for c in calls)
            rows.append({"metric": name, "batch": batch, "img_s": batch / seconds, "seconds": seconds,
                         "roofline_seconds": loop, "fraction": loop / seconds, "calls": len(calls),
                         "gflop": flops / 1e9, "gflops_network": flops / seconds / 1e9,
                         "gflops_roofline": flops / loop / 1e9, "basis": "conv2d/linear loop"})
        a, b = torch.rand_like(x), torch.rand_like(x)
        passes = ssim_passes()
        with torch.inference_mode():
            seconds, axpy = best_rounds(lambda: ssim(x, y), lambda: a.add_(b, alpha=0.5), device, args.iters)
        rows.append({"metric": "ssim", "batch": batch, "img_s": batch / seconds, "seconds": seconds,
                     "roofline_seconds": passes * axpy, "fraction": passes * axpy / seconds, "calls": 0,
                     "gb_moved": passes * 3 * x.numel() * 4 / 1e9, "gb_s_axpy": 3 * x.numel() * 4 / axpy / 1e9,
                     "basis": "axpy passes"})
    return rows


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--batches", default="1,4")
    p.add_argument("--iters", type=int, default=3)
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="torch threads (default: all cores)")
    args = p.parse_args(argv)
    args.batches = [int(b) for b in args.batches.split(",")]
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    t0 = time.perf_counter()
    load_before = os.getloadavg()[0]
    rows = bench(args, device)
    print(f"metric roofline, {W}x{H} inputs, device {device}, {torch.get_num_threads()} threads, "
          f"best of {args.iters} interleaved rounds after 1 warm-up; 1-min load average {load_before:.2f} before, "
          f"{os.getloadavg()[0]:.2f} after (this process counts for ~{torch.get_num_threads()})")
    print(f"{'metric':10s} {'batch':>5s} {'img/s':>8s} {'s/call':>8s} {'roofline s':>11s} {'fraction':>9s}  basis")
    for r in rows:
        if r["calls"]:
            note = (f"{r['calls']} calls, {r['gflop']:.1f} GFLOP: {r['gflops_network']:.0f} GFLOP/s in the network, "
                    f"{r['gflops_roofline']:.0f} alone")
        else:
            note = f"{r['gb_moved']:.1f} GB; axpy alone {r['gb_s_axpy']:.1f} GB/s"
        print(f"{r['metric']:10s} {r['batch']:5d} {r['img_s']:8.2f} {r['seconds']:8.3f} {r['roofline_seconds']:11.3f} "
              f"{r['fraction']:9.2f}  {r['basis']} ({note})")
    result = {"bench": "metrics_roofline", "device": str(device), "torch_threads": torch.get_num_threads(),
              "image_size": f"{W}x{H}", "iters": args.iters, "loadavg_before": round(load_before, 2),
              "loadavg_after": round(os.getloadavg()[0], 2), "seconds_total": time.perf_counter() - t0}
    for r in rows:
        stem = f"{r['metric']}_b{r['batch']}"
        result[f"{stem}_img_s"] = round(r["img_s"], 4)
        result[f"{stem}_roofline_fraction"] = round(r["fraction"], 4)
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
