"""Translation benchmark: images/s of RIG at 768x1024, 50 steps, strength 0.3, guidance 7.5 (issues 5 and 15).

Why: speed does not depend on weight values, so a random-weight pipeline with the real SD-1.5 architecture (the
UNet / VAE / CLIP-L configs below, written out, not downloaded) measures what real weights would. Settings:

- `reference_fp32_b1`: the published evaluation pattern (tests/r2r_reference.py: batch 1, float32, CFG in the
  inversion, 4 UNet rows per step, both branches decoded), PyTorch defaults;
- `ours_fp32_b1`: R2RPipeline in exact mode, batch 1, float32;
- `ours_<dtype>_b<N>[_compile]`: R2RPipeline in bfloat16 (or float16), batch N, SDPA, channels_last,
  cudnn.benchmark, optionally torch.compile; its deviation from exact mode is measured on image 0 of the batch
  (`--exact-from` takes exact mode's output saved by an earlier `--save-exact` run).
Each setting gets one warm-up call, then `--runs` interleaved rounds (every setting once per round, so a shared
machine's drift hits all alike); every run is reported, the median is the figure, and speed-ups are per round.
Also: UNet FLOPs per evaluation (torch's FlopCounterMode, math attention), FLOPs per image of each evaluation
pattern, the measured matmul rate (bf16 on a GPU, fp32 on a CPU) and the utilisation of it, `--profile` tables
(torch.profiler), and one final JSON line. Real numbers need CUDA; `--tiny --device cpu` is a smoke mode.

    python benchmarks/bench_translate.py --device cuda [--batch-size 8] [--compile]
    python benchmarks/bench_translate.py --device cpu --width 256 --height 256 --steps 20 --runs 3 --skip-fast
    python benchmarks/bench_translate.py --tiny --device cpu
"""

from __future__ import annotations

import argparse
import copy
import importlib.util
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from r2r.rig.pipeline import R2RPipeline  # noqa: E402
from r2r.rig.schedule import RIGSchedule  # noqa: E402
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


def timed_call(fn, device: torch.device):
    """(seconds, result) of one call."""
    sync(device)
    t0 = time.perf_counter()
    out = fn()
    sync(device)
    return time.perf_counter() - t0, out


def profile_table(fn, device: torch.device, rows: int) -> str:
    """torch.profiler's per-operator table of one call (self time), for finding where a setting spends its time."""
    from torch.profiler import ProfilerActivity, profile

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    with profile(activities=activities) as prof:
        fn()
        sync(device)
    key = "self_cuda_time_total" if device.type == "cuda" else "self_cpu_time_total"
    return prof.key_averages().table(sort_by=key, row_limit=rows)


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--tiny", action="store_true", help="tiny random model (smoke mode)")
    p.add_argument("--width", type=int, default=None, help="default 768 (tiny: 128)")
    p.add_argument("--height", type=int, default=None, help="default 1024 (tiny: 96)")
    p.add_argument("--steps", type=int, default=50)
    p.add_argument("--strength", type=float, default=0.3)
    p.add_argument("--guidance", type=float, default=7.5)
    p.add_argument("--batch-size", type=int, default=None, help="batch of the fast setting (default 8, tiny 2)")
    p.add_argument("--vae-batch-size", type=int, default=2, help="VAE encode/decode chunk of the fast setting")
    p.add_argument("--dtype", choices=("bfloat16", "float16"), default="bfloat16", help="dtype of the fast setting")
    p.add_argument("--compile", action="store_true", help="torch.compile the UNet in the fast setting")
    p.add_argument("--compile-mode", default="default", help="torch.compile mode (e.g. max-autotune-no-cudagraphs)")
    p.add_argument("--compile-backend", default="inductor", help="torch.compile backend ('eager': capture only)")
    p.add_argument("--runs", type=int, default=None,
                   help="timed rounds after one warm-up call of each setting; each round times every setting once, "
                        "in turn (interleaved, so a machine's drift hits all alike); all runs are reported (2; tiny 1)")
    p.add_argument("--skip-reference", action="store_true")
    p.add_argument("--skip-fp32", action="store_true")
    p.add_argument("--skip-fast", action="store_true", help="no bf16/fp16 setting (the CPU per-FLOP comparison)")
    p.add_argument("--onednn-too", action="store_true",
                   help="CPU: also time exact mode with oneDNN convolutions (R2RPipeline.cpu_conv_im2col = False)")
    p.add_argument("--save-exact", help="save exact mode's output of image 0 here (safetensors)")
    p.add_argument("--exact-from", help="deviation against this saved exact output (when --skip-fp32)")
    p.add_argument("--json-out", help="also write the summary here, rewritten after every setting (partial results "
                                      "survive a timeout)")
    p.add_argument("--profile", type=int, default=0, metavar="ROWS",
                   help="after timing, profile one call of each setting with torch.profiler; print ROWS operators")
    args = p.parse_args(argv)

    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("CUDA requested but not available; use --tiny --device cpu for a smoke run")
    width = args.width or (128 if args.tiny else 768)
    height = args.height or (96 if args.tiny else 1024)
    batch = args.batch_size or (2 if args.tiny else 8)
    runs = args.runs or (1 if args.tiny else 2)
    fast_dtype = getattr(torch, args.dtype)
    log = lambda *a: print(*a, file=sys.stderr, flush=True)  # noqa: E731
    from diffusers.utils import logging as diffusers_logging

    diffusers_logging.set_verbosity_error()  # e.g. "modules that should be kept in float32: []" on .to(bf16)
    gpu = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    log(f"device {gpu}, {width}x{height}, steps {args.steps}, strength {args.strength}, guidance {args.guidance}, "
        f"torch threads {torch.get_num_threads()}")

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
    rate_dtype = torch.float32 if device.type == "cpu" else torch.bfloat16
    rate = matmul_tflops(device, rate_dtype)
    log(f"UNet {unet_flops / 1e12:.3f} TFLOP/eval; VAE enc {enc_flops / 1e12:.2f}, dec {dec_flops / 1e12:.2f} TFLOP; "
        f"per image: ours {ours_rows} rows = {flops_ours / 1e12:.1f} TFLOP, reference {ref_rows} rows = "
        f"{flops_ref / 1e12:.1f} TFLOP; {str(rate_dtype).removeprefix('torch.')} matmul {rate:.3g} TFLOP/s")

    kw = {"num_inference_steps": args.steps, "strength": args.strength, "guidance_scale": args.guidance,
          "output_type": "pt"}
    summary = {
        "benchmark": "bench_translate", "device": gpu, "tiny": args.tiny, "width": width, "height": height,
        "steps": args.steps, "strength": args.strength, "guidance": args.guidance, "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(), "runs": runs,
        "unet_tflop_per_eval": round(unet_flops / 1e12, 4), "vae_encode_tflop": round(enc_flops / 1e12, 4),
        "vae_decode_tflop": round(dec_flops / 1e12, 4),
        "unet_rows_per_image": {"ours": ours_rows, "reference": ref_rows},
        "tflop_per_image": {"ours": round(flops_ours / 1e12, 3), "reference": round(flops_ref / 1e12, 3)},
        "matmul_tflops": float(f"{rate:.4g}"), "matmul_dtype": str(rate_dtype).removeprefix("torch."),
        "results": {},
    }

    def save_summary() -> None:
        if args.json_out:
            Path(args.json_out).write_text(json.dumps(summary))

    # settings: name -> (call, images per call, FLOPs per image, facts)
    settings: dict[str, tuple] = {}
    if not args.skip_reference:
        ref = load_reference_module()
        ref_pipe = ref.reference_pipe_from_components(sd.vae, sd.text_encoder, sd.tokenizer, sd.unet)
        ref_fn = lambda: ref.reference_rig(ref_pipe, images[0], negative_prompt="<rendered>",  # noqa: E731
                                           strength=args.strength, steps=args.steps, guidance=args.guidance,
                                           return_source=True)
        settings["reference_fp32_b1"] = (ref_fn, 1, flops_ref, {"batch": 1, "dtype": "float32"})

    fp32 = R2RPipeline(vae=sd.vae, text_encoder=sd.text_encoder, tokenizer=sd.tokenizer, unet=sd.unet)
    fp32.negative_token = "<rendered>"
    fp32.set_progress_bar_config(disable=True)
    fp32.tac.record = False
    if not args.skip_fp32:
        settings["ours_fp32_b1"] = (lambda: fp32(images[0], **kw).images, 1, flops_ours,
                                    {"batch": 1, "dtype": "float32"})
    if args.onednn_too and device.type == "cpu":  # the code before the im2col switch, side by side (issue 15)

        def onednn():
            fp32.cpu_conv_im2col = False
            try:
                return fp32(images[0], **kw).images
            finally:
                fp32.cpu_conv_im2col = True

        settings["ours_fp32_b1_onednn"] = (onednn, 1, flops_ours, {"batch": 1, "dtype": "float32", "conv": "onednn"})

    fast_name = None
    if not args.skip_fast:
        if device.type == "cuda":
            torch.backends.cudnn.benchmark = True
        fast = R2RPipeline(
            vae=copy.deepcopy(sd.vae).to(fast_dtype), text_encoder=copy.deepcopy(sd.text_encoder).to(fast_dtype),
            tokenizer=sd.tokenizer, unet=copy.deepcopy(sd.unet).to(fast_dtype),
        )
        fast.negative_token = "<rendered>"
        fast.set_progress_bar_config(disable=True)
        fast.tac.record = False
        fast.unet.to(memory_format=torch.channels_last)
        fast.vae.to(memory_format=torch.channels_last)
        if args.compile:
            fast.unet.compile(mode=args.compile_mode, backend=args.compile_backend)
        fast_name = f"ours_{args.dtype}_b{batch}" + ("_compile" if args.compile else "")
        settings[fast_name] = (lambda: fast(images, vae_batch_size=args.vae_batch_size, **kw).images, batch,
                               flops_ours, {"batch": batch, "dtype": args.dtype, "attention": "sdpa",
                                            "channels_last": True,
                                            "compile": args.compile and f"{args.compile_backend}/{args.compile_mode}"})

    # One warm-up call per setting (for a compiled setting: its compilation, timed apart), then interleaved rounds.
    times: dict[str, list[float]] = {name: [] for name in settings}
    outputs: dict[str, torch.Tensor] = {}
    for name, (fn, _, _, facts) in settings.items():
        seconds, _ = timed_call(fn, device)
        facts["warmup_s"] = round(seconds, 2)
        summary["results"][name] = {"warmup_s": facts["warmup_s"]}  # so far: a timeout keeps the warm-up time
        save_summary()
        log(f"{name:>22}: warm-up {seconds:.2f}s")
    for r in range(runs):
        for name, (fn, n_img, flops, facts) in settings.items():
            seconds, out = timed_call(fn, device)
            times[name].append(seconds / n_img)
            outputs[name] = out
            spi = statistics.median(times[name])
            summary["results"][name] = {
                "s_per_image": round(spi, 4), "images_per_s": round(1 / spi, 4),
                "runs_s_per_image": [round(x, 4) for x in times[name]],
                "utilisation": round(flops / spi / (rate * 1e12), 4), **facts,
            }
            log(f"{name:>22}: round {r + 1}: {seconds / n_img:8.3f} s/image")
            save_summary()

    exact = None
    if "ours_fp32_b1" in outputs:
        exact = outputs["ours_fp32_b1"][0]
        if args.save_exact:
            from safetensors.torch import save_file

            save_file({"exact": exact.contiguous()}, args.save_exact)
    elif args.exact_from:
        from safetensors.torch import load_file

        exact = load_file(args.exact_from)["exact"]
    if exact is not None and fast_name in outputs:
        diff = (outputs[fast_name][0].float().cpu() - exact.cpu()).abs()  # image 0 of the batch vs exact mode
        summary["results"][fast_name]["vs_exact_mean_abs"] = float(diff.mean())
        summary["results"][fast_name]["vs_exact_max_abs"] = float(diff.max())
        log(f"{fast_name} vs exact mode: mean {diff.mean():.2e}, max {diff.max():.2e} per pixel in [0, 1]")

    if "reference_fp32_b1" in times:
        summary["reference_s_per_image"] = summary["results"]["reference_fp32_b1"]["s_per_image"]
        base = times["reference_fp32_b1"]
        summary["speedup_vs_reference"] = {}
        for name, ts in times.items():
            per_round = [b / t for b, t in zip(base, ts)]  # the same round: the same machine state
            summary["speedup_vs_reference"][name] = {"median": round(statistics.median(per_round), 3),
                                                     "rounds": [round(x, 3) for x in per_round]}
    for name, res in summary["results"].items():
        sp = summary.get("speedup_vs_reference", {}).get(name)
        log(f"{name:>22}: {res['s_per_image']:8.3f} s/image (median of {runs})  util {res['utilisation']:.1%}"
            + (f"  {sp['median']:.2f}x reference (per round {sp['rounds']})" if sp else ""))

    if args.profile:
        for name, (fn, *_rest) in settings.items():
            log(f"--- profile of one call: {name}\n{profile_table(fn, device, args.profile)}")
    save_summary()
    print(json.dumps(summary))
    return summary


if __name__ == "__main__":
    main()
