"""Translation benchmark: images/s of RIG at 768x1024, 50 steps, strength 0.3, guidance 7.5 (issue 5).

Why: speed does not depend on weight values, so a random-weight pipeline with the real SD-1.5 architecture (the
UNet / VAE / CLIP-L configs below, written out, not downloaded) measures what real weights would. Reported:

- `reference_fp32_b1`: the published evaluation pattern (tests/r2r_reference.py: batch 1, float32, CFG in the
  inversion, 4 UNet rows per step, both branches decoded), PyTorch defaults;
- `ours_fp32_b1`: R2RPipeline in exact mode, batch 1, float32;
- `ours_best`: R2RPipeline in bfloat16, batched, SDPA, channels_last, cudnn.benchmark, optional torch.compile;
plus UNet FLOPs per evaluation (counted with torch's FlopCounterMode, math attention), FLOPs per image of each
evaluation pattern, the measured bf16 matmul rate and the utilisation of it, the deviation of the best setting from
exact mode, and one final JSON line. Real numbers need CUDA; `--tiny --device cpu` is a smoke mode.

    python benchmarks/bench_translate.py --device cuda [--batch-size 8] [--compile]
    python benchmarks/bench_translate.py --tiny --device cpu
"""

from __future__ import annotations

import argparse
import copy
import importlib.util
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from r2r.pipeline import R2RPipeline  # noqa: E402
from r2r.schedule import RIGSchedule  # noqa: E402
from r2r.tiny import (  # noqa: E402
    TinyModelConfig, build_pipeline, tokenizer_vocab, unet_config, vae_config, write_tokenizer,
)

from r2r.sd15 import SD15_UNET, SD15_VAE  # noqa: E402

SD15_TEXT = {  # CLIP ViT-L/14 text tower; vocab sized to the generated tokenizer (lookup cost only)
    "hidden_size": 768, "intermediate_size": 3072, "num_attention_heads": 12, "num_hidden_layers": 12,
    "max_position_embeddings": 77, "hidden_act": "quick_gelu", "projection_dim": 768,
}


def load_reference_module():
    spec = importlib.util.spec_from_file_location("r2r_reference", ROOT / "tests" / "r2r_reference.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def matmul_tflops(device: torch.device, dtype: torch.dtype) -> float:
    """Measured dense matmul rate (TFLOP/s) for `dtype` on `device`."""
    n = 8192 if device.type == "cuda" else 1024
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    for _ in range(3):
        a @ b
    sync(device)
    reps = 50 if device.type == "cuda" else 5
    t0 = time.perf_counter()
    for _ in range(reps):
        a @ b
    sync(device)
    return 2 * n**3 * reps / (time.perf_counter() - t0) / 1e12


@torch.no_grad()
def count_flops(fn) -> int:
    from torch.nn.attention import SDPBackend, sdpa_kernel
    from torch.utils.flop_counter import FlopCounterMode

    with sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter:  # math SDPA: counted as bmm
        fn()
    return counter.get_total_flops()


def synthetic_image(height: int, width: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width]
    stripes = 127 + 90 * np.sin(xx / 3.0 + seed) * np.cos(yy / 5.0)
    img = np.stack([stripes, stripes[:, ::-1], rng.integers(20, 235, (height, width))], -1)
    return np.clip(img, 1, 254).astype(np.uint8)


def timed(fn, device: torch.device, warmup: int, runs: int) -> float:
    """Seconds per call."""
    for _ in range(warmup):
        fn()
    sync(device)
    t0 = time.perf_counter()
    for _ in range(runs):
        fn()
    sync(device)
    return (time.perf_counter() - t0) / runs


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--tiny", action="store_true", help="tiny random model (smoke mode)")
    p.add_argument("--width", type=int, default=None, help="default 768 (tiny: 128)")
    p.add_argument("--height", type=int, default=None, help="default 1024 (tiny: 96)")
    p.add_argument("--steps", type=int, default=50)
    p.add_argument("--strength", type=float, default=0.3)
    p.add_argument("--guidance", type=float, default=7.5)
    p.add_argument("--batch-size", type=int, default=None, help="batch of the best setting (default 8, tiny 2)")
    p.add_argument("--vae-batch-size", type=int, default=2, help="VAE encode/decode chunk of the best setting")
    p.add_argument("--dtype", choices=("bfloat16", "float16"), default="bfloat16", help="dtype of the best setting")
    p.add_argument("--compile", action="store_true", help="torch.compile the UNet in the best setting")
    p.add_argument("--compile-mode", default="default", help="torch.compile mode (e.g. max-autotune-no-cudagraphs)")
    p.add_argument("--runs", type=int, default=None, help="timed calls per setting after a warm-up (2; tiny: 1)")
    p.add_argument("--skip-reference", action="store_true")
    p.add_argument("--skip-fp32", action="store_true")
    args = p.parse_args(argv)

    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("CUDA requested but not available; use --tiny --device cpu for a smoke run")
    width = args.width or (128 if args.tiny else 768)
    height = args.height or (96 if args.tiny else 1024)
    batch = args.batch_size or (2 if args.tiny else 8)
    runs = args.runs or (1 if args.tiny else 2)
    best_dtype = getattr(torch, args.dtype)
    log = lambda *a: print(*a, file=sys.stderr, flush=True)  # noqa: E731
    from diffusers.utils import logging as diffusers_logging

    diffusers_logging.set_verbosity_error()  # e.g. "modules that should be kept in float32: []" on .to(bf16)
    gpu = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    log(f"device {gpu}, {width}x{height}, steps {args.steps}, strength {args.strength}, guidance {args.guidance}")
    if device.type == "cpu":
        log("CPU run: a smoke test of the code paths; its timings say nothing about GPU throughput")

    tmp = Path(tempfile.mkdtemp(prefix="bench-r2r-"))
    write_tokenizer(tmp / "tokenizer")
    vocab, _ = tokenizer_vocab()
    if args.tiny:
        tiny = TinyModelConfig()
        unet_cfg, vae_cfg, text_cfg = unet_config(tiny), vae_config(tiny), None
    else:
        unet_cfg, vae_cfg = SD15_UNET, SD15_VAE
        text_cfg = {**SD15_TEXT, "vocab_size": len(vocab), "bos_token_id": vocab["<|startoftext|>"],
                    "eos_token_id": vocab["<|endoftext|>"], "pad_token_id": vocab["<|endoftext|>"]}
    t0 = time.perf_counter()
    sd = build_pipeline(unet_cfg, vae_cfg, text_cfg, tmp / "tokenizer", seed=0, device=device)
    width_text = sd.text_encoder.config.hidden_size
    emb = torch.randn(1, width_text, generator=torch.Generator().manual_seed(0))
    sd.load_textual_inversion({"<rendered>": emb}, token="<rendered>")  # negative embedding on, as in the paper
    log(f"built random SD-1.5-architecture pipeline in {time.perf_counter() - t0:.1f}s "
        f"(UNet {sum(p.numel() for p in sd.unet.parameters()) / 1e6:.0f}M params)")

    images = [synthetic_image(height, width, s) for s in range(batch)]
    schedule = RIGSchedule.create(args.steps, args.strength)
    k, swap_steps = schedule.k, schedule.tac_steps(0.9)

    # FLOPs: one UNet row, VAE encode and decode of one image.
    lat = torch.randn(1, 4, height // 8, width // 8, device=device)
    text = torch.randn(1, 77, width_text, device=device)
    unet_flops = count_flops(lambda: sd.unet(lat, 281, encoder_hidden_states=text))
    enc_flops = count_flops(lambda: sd.vae.encode(torch.zeros(1, 3, height, width, device=device)))
    dec_flops = count_flops(lambda: sd.vae.decode(lat))
    ours_rows = k + sum(3 if i < swap_steps else 2 for i in range(k))  # inversion 1 row, then [u, s, t] / [u, t]
    ref_rows = 2 * k + 4 * k
    flops_ours = ours_rows * unet_flops + enc_flops + dec_flops
    flops_ref = ref_rows * unet_flops + enc_flops + 2 * dec_flops
    rate = matmul_tflops(device, torch.bfloat16)
    log(f"UNet {unet_flops / 1e12:.3f} TFLOP/eval; VAE enc {enc_flops / 1e12:.2f}, dec {dec_flops / 1e12:.2f} TFLOP; "
        f"per image: ours {ours_rows} rows = {flops_ours / 1e12:.1f} TFLOP, reference {ref_rows} rows = "
        f"{flops_ref / 1e12:.1f} TFLOP; bf16 matmul {rate:.3g} TFLOP/s")

    kw = {"num_inference_steps": args.steps, "strength": args.strength, "guidance_scale": args.guidance,
          "output_type": "pt"}
    results: dict[str, dict] = {}

    def record(name: str, seconds_per_call: float, images_per_call: int, flops: float, **extra) -> None:
        ips = images_per_call / seconds_per_call
        results[name] = {"images_per_s": round(ips, 4), "s_per_image": round(1 / ips, 4),
                         "utilisation": round(flops * ips / (rate * 1e12), 4), **extra}
        log(f"{name:>18}: {1 / ips:8.3f} s/image  {ips:8.3f} images/s  util {results[name]['utilisation']:.1%}")

    if not args.skip_reference:
        ref = load_reference_module()
        ref_pipe = ref.reference_pipe_from_components(sd.vae, sd.text_encoder, sd.tokenizer, sd.unet)
        ref_fn = lambda: ref.reference_rig(ref_pipe, images[0], negative_prompt="<rendered>",  # noqa: E731
                                           strength=args.strength, steps=args.steps, guidance=args.guidance,
                                           return_source=True)
        record("reference_fp32_b1", timed(ref_fn, device, 1, runs), 1, flops_ref, batch=1, dtype="float32")

    fp32 = R2RPipeline(vae=sd.vae, text_encoder=sd.text_encoder, tokenizer=sd.tokenizer, unet=sd.unet)
    fp32.negative_token = "<rendered>"
    fp32.set_progress_bar_config(disable=True)
    fp32.tac.record = False
    exact = None
    if not args.skip_fp32:
        record("ours_fp32_b1", timed(lambda: fp32(images[0], **kw), device, 1, runs), 1, flops_ours,
               batch=1, dtype="float32")
        exact = fp32(images[0], **kw).images

    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    best = R2RPipeline(
        vae=copy.deepcopy(sd.vae).to(best_dtype), text_encoder=copy.deepcopy(sd.text_encoder).to(best_dtype),
        tokenizer=sd.tokenizer, unet=copy.deepcopy(sd.unet).to(best_dtype),
    )
    best.negative_token = "<rendered>"
    best.set_progress_bar_config(disable=True)
    best.tac.record = False
    best.unet.to(memory_format=torch.channels_last)
    best.vae.to(memory_format=torch.channels_last)
    if args.compile:
        best.unet.compile(mode=args.compile_mode)
    best_fn = lambda: best(images, vae_batch_size=args.vae_batch_size, **kw)  # noqa: E731
    record("ours_best", timed(best_fn, device, 1, runs), batch, flops_ours, batch=batch, dtype=args.dtype,
           channels_last=True, compile=args.compile and args.compile_mode)
    if exact is not None:
        got = best(images[:1], **kw).images
        diff = (got - exact).abs()
        results["ours_best"]["vs_exact_mean_abs"] = float(diff.mean())
        results["ours_best"]["vs_exact_max_abs"] = float(diff.max())
        log(f"best vs exact mode: mean {diff.mean():.2e}, max {diff.max():.2e} per pixel in [0, 1]")

    summary = {
        "benchmark": "bench_translate", "device": gpu, "tiny": args.tiny, "width": width, "height": height,
        "steps": args.steps, "strength": args.strength, "guidance": args.guidance, "torch": torch.__version__,
        "unet_tflop_per_eval": round(unet_flops / 1e12, 4), "vae_encode_tflop": round(enc_flops / 1e12, 4),
        "vae_decode_tflop": round(dec_flops / 1e12, 4),
        "unet_rows_per_image": {"ours": ours_rows, "reference": ref_rows},
        "tflop_per_image": {"ours": round(flops_ours / 1e12, 3), "reference": round(flops_ref / 1e12, 3)},
        "bf16_matmul_tflops": float(f"{rate:.4g}"), "results": results,
    }
    if "reference_fp32_b1" in results:
        base = results["reference_fp32_b1"]["images_per_s"]
        summary["speedup_vs_reference"] = {n: round(r["images_per_s"] / base, 2) for n, r in results.items()}
    print(json.dumps(summary))
    return summary


if __name__ == "__main__":
    main()
