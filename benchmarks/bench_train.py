"""DKI training throughput: samples/s of both trainings vs the diffusers example scripts' per-step pattern (issue 6).

Why: speed does not depend on weight values, so a random-weight pipeline with the real SD-1.5 architecture (UNet,
VAE and CLIP-L text configs written out below, not downloaded; the text encoder's vocabulary is CLIP's 49408 rows)
measures what real weights would. Data: `--images` JPEGs at 768x1024 (SynFashion's size) in an image folder.

- `baseline`: what `textual_inversion.py` / `train_text_to_image_lora.py` do every step: PIL decode + resize + crop
  in 4 DataLoader workers, VAE encode (compute dtype), text-encoder forward, UNet forward/backward, AdamW; for
  textual inversion the whole token table is trained and the old rows restored after each step. Frozen weights in
  the compute dtype, trainable in float32, accelerate's autocast, as the scripts.
- `ours`: r2r.dki's trainers (latents cached once with a float32 VAE, fixed-prompt text states cached for LoRA,
  only K embedding rows trained, channels-last, fused AdamW; `--compile` adds torch.compile).
Steady-state samples/s over `--steps` steps after `--warmup` steps; the one-off latent caching time is reported
separately. Ends with one JSON line. Real numbers need CUDA; `--tiny --device cpu` is a smoke mode.

    python benchmarks/bench_train.py --device cuda [--batch-size 8] [--precision bf16] [--compile]
    python benchmarks/bench_train.py --tiny --device cpu
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from r2r.dki import (  # noqa: E402
    DataConfig, NegativeConfig, NegativeTrainer, PositiveConfig, PositiveTrainer, RunConfig, TrainConfig,
)
from r2r.dki.trainer import Components  # noqa: E402
from r2r.tiny import (  # noqa: E402
    BOS, EOS, TinyModelConfig, build_pipeline, text_config, tokenizer_vocab, unet_config, vae_config, write_tokenizer,
)

from r2r.sd15 import SD15_UNET, SD15_VAE  # noqa: E402

SD15_TEXT = {  # CLIP ViT-L/14 text tower, with CLIP's 49408-row token table
    "vocab_size": 49408, "hidden_size": 768, "intermediate_size": 3072, "num_attention_heads": 12,
    "num_hidden_layers": 12, "max_position_embeddings": 77, "hidden_act": "quick_gelu", "projection_dim": 768,
}
PROMPT = "a rendered image of a garment"  # the baseline's TI prompt (template + placeholder) and LoRA caption


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def model_configs(tiny: bool) -> tuple[dict, dict, dict]:
    vocab, _ = tokenizer_vocab()
    if tiny:
        t = TinyModelConfig()
        return unet_config(t), vae_config(t), text_config(t, len(vocab), vocab[BOS], vocab[EOS])
    return SD15_UNET, SD15_VAE, {**SD15_TEXT, "bos_token_id": vocab[BOS], "eos_token_id": vocab[EOS],
                                 "pad_token_id": vocab[EOS]}


def count_flops(unet_cfg: dict, vae_cfg: dict, resolution: int) -> dict:
    """FLOPs per training sample, counted by torch's FlopCounterMode on meta tensors (math attention).

    The UNet's backward is counted with frozen weights and gradients to the text states: what textual inversion
    does, and LoRA up to its small adapter gradients.
    """
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from diffusers.models.attention_processor import AttnProcessor
    from torch.utils.flop_counter import FlopCounterMode

    with torch.device("meta"):
        unet, vae = UNet2DConditionModel(**unet_cfg), AutoencoderKL(**vae_cfg)
        unet.set_attn_processor(AttnProcessor())
        vae.set_attn_processor(AttnProcessor())
        unet.requires_grad_(False)
        lat = resolution // 8
        x = torch.randn(1, 4, lat, lat)
        states = torch.randn(1, 77, unet_cfg["cross_attention_dim"], requires_grad=True)
        with FlopCounterMode(display=False) as fwd:
            with torch.no_grad():
                unet(x, torch.tensor([1]), states)
        with FlopCounterMode(display=False) as step:
            unet(x, torch.tensor([1]), states).sample.sum().backward()
        with FlopCounterMode(display=False) as enc:
            with torch.no_grad():
                vae.encode(torch.randn(1, 3, resolution, resolution))
    out = {"unet_forward": fwd.get_total_flops(), "unet_forward_backward": step.get_total_flops(),
           "vae_encode": enc.get_total_flops()}
    out["per_sample_baseline"] = out["unet_forward_backward"] + out["vae_encode"]
    out["per_sample_ours"] = out["unet_forward_backward"]
    return out


def components(args, tok_dir: Path, device: str) -> Components:
    from diffusers import DDPMScheduler

    pipe = build_pipeline(*model_configs(args.tiny), tok_dir, seed=0, device=device)
    sched = DDPMScheduler(num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear")
    return Components(pipe.tokenizer, pipe.text_encoder, pipe.vae, pipe.unet, sched)


def write_images(folder: Path, n: int, size: tuple[int, int]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    w, h = size
    yy, xx = np.mgrid[0:h, 0:w]
    for i in range(n):
        rng = np.random.default_rng(i)
        base = np.stack([(xx + 7 * i) % 256, (yy // 2 + 3 * i) % 256, ((xx + yy) // 3) % 256], -1).astype(np.float32)
        img = np.clip(base + rng.normal(0, 12, base.shape), 0, 255).astype(np.uint8)
        Image.fromarray(img).save(folder / f"r{i:04d}.jpg", quality=92)
    return folder


# ------------------------------------------------------------------------------------------------ baseline

class ExampleScriptDataset(torch.utils.data.Dataset):
    """As the example scripts: PIL open, RGB, resize shorter side (bicubic), center crop, to [-1, 1], every step."""

    def __init__(self, folder: Path, size: int, input_ids: torch.Tensor):
        self.files, self.size, self.input_ids = sorted(folder.glob("*.jpg")), size, input_ids

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int) -> dict:
        img = Image.open(self.files[i]).convert("RGB")
        s = self.size
        scale = s / min(img.size)
        img = img.resize((max(s, round(img.width * scale)), max(s, round(img.height * scale))), Image.BICUBIC)
        left, top = (img.width - s) // 2, (img.height - s) // 2
        img = img.crop((left, top, left + s, top + s))
        x = torch.from_numpy(np.asarray(img, dtype=np.float32) / 127.5 - 1.0).permute(2, 0, 1)
        return {"pixel_values": x, "input_ids": self.input_ids}


def baseline(method: str, c: Components, args, folder: Path, device: torch.device) -> dict:
    from accelerate import Accelerator
    from diffusers.training_utils import cast_training_params

    acc = Accelerator(mixed_precision=args.precision, cpu=device.type == "cpu")
    wdtype = {"no": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[args.precision]
    tok, te, vae, unet, sched = c.tokenizer, c.text_encoder, c.vae, c.unet, c.noise_scheduler
    vae.requires_grad_(False).to(device, wdtype)
    if method == "negative":
        tok.add_tokens(["<rendered>"])
        new_id = tok.convert_tokens_to_ids("<rendered>")
        if new_id >= te.get_input_embeddings().num_embeddings:
            te.resize_token_embeddings(len(tok), mean_resizing=False)
        unet.requires_grad_(False).to(device, wdtype)
        te.requires_grad_(False)  # the script freezes encoder, final norm and position embedding: all but the table
        te.get_input_embeddings().requires_grad_(True)
        te.to(device)
        params = list(te.get_input_embeddings().parameters())
        trained = te
        prompt = PROMPT.replace("rendered", "<rendered>")
    else:
        from peft import LoraConfig

        unet.requires_grad_(False).to(device, wdtype)
        unet.add_adapter(LoraConfig(r=4, lora_alpha=4, init_lora_weights="gaussian",
                                    target_modules=["to_k", "to_q", "to_v", "to_out.0"]))
        cast_training_params(unet, torch.float32)
        te.requires_grad_(False).to(device, wdtype)
        params = [p for p in unet.parameters() if p.requires_grad]
        trained = unet
        prompt = PROMPT
    ids = tok(prompt, padding="max_length", max_length=tok.model_max_length, truncation=True,
              return_tensors="pt").input_ids[0]
    ds = ExampleScriptDataset(folder, args.resolution, ids)
    dl = torch.utils.data.DataLoader(ds, batch_size=args.batch_size, shuffle=True, num_workers=args.workers,
                                     drop_last=True, persistent_workers=args.workers > 0)
    opt = torch.optim.AdamW(params, lr=1e-4, betas=(0.9, 0.999), weight_decay=1e-2, eps=1e-8)
    trained, opt, dl = acc.prepare(trained, opt, dl)
    if method == "negative":
        orig = acc.unwrap_model(te).get_input_embeddings().weight.data.clone()
        keep = torch.ones(orig.shape[0], dtype=torch.bool, device=orig.device)
        keep[new_id] = False
    alphas = sched.alphas_cumprod

    def step(batch) -> None:
        with acc.accumulate(trained):
            latents = vae.encode(batch["pixel_values"].to(wdtype)).latent_dist.sample().detach()
            latents = latents * vae.config.scaling_factor
            noise = torch.randn_like(latents)
            t = torch.randint(0, sched.config.num_train_timesteps, (latents.shape[0],), device=latents.device).long()
            noisy = sched.add_noise(latents, noise, t)
            if method == "negative":
                states = te(batch["input_ids"])[0].to(dtype=wdtype)
                pred = unet(noisy, t, states).sample
            else:
                states = te(batch["input_ids"], return_dict=False)[0]
                pred = trained(noisy, t, states, return_dict=False)[0]
            loss = torch.nn.functional.mse_loss(pred.float(), noise.float(), reduction="mean")
            acc.backward(loss)
            if acc.sync_gradients and method == "positive":
                acc.clip_grad_norm_(params, 1.0)
            opt.step()
            opt.zero_grad()
            if method == "negative":
                with torch.no_grad():
                    acc.unwrap_model(te).get_input_embeddings().weight[keep] = orig[keep]

    del alphas
    it = iter(_forever(dl))
    for _ in range(args.warmup):
        step(next(it))
    sync(device)
    t0 = time.perf_counter()
    for _ in range(args.steps):
        step(next(it))
    sync(device)
    seconds = time.perf_counter() - t0
    return {"samples_per_s": args.steps * args.batch_size / seconds, "s_per_step": seconds / args.steps}


def _forever(dl):
    while True:
        yield from dl


# ------------------------------------------------------------------------------------------------ ours

def ours(method: str, c: Components, args, folder: Path, device: torch.device, out: Path) -> dict:
    from accelerate import Accelerator

    acc = Accelerator(mixed_precision=args.precision, cpu=device.type == "cpu")
    data = DataConfig(source=str(folder), resolution=args.resolution, num_workers=args.workers)
    train = TrainConfig(steps=args.warmup + args.steps, batch_size=args.batch_size, lr=1e-4,
                        mixed_precision=args.precision, checkpoint_every=0, progress=False, compile=args.compile)
    if method == "negative":
        run = RunConfig(model="random-sd15", out=str(out / method), data=data, train=train,
                        method=NegativeConfig(num_vectors=args.num_vectors))
        trainer = NegativeTrainer(run, components=c, accelerator=acc)
    else:
        run = RunConfig(model="random-sd15", out=str(out / method), data=data, train=train,
                        method=PositiveConfig(lora_rank=4))
        trainer = PositiveTrainer(run, components=c, accelerator=acc)
    t0 = time.perf_counter()
    trainer.setup()
    sync(device)
    setup = time.perf_counter() - t0
    for s in range(args.warmup):
        trainer.optimizer_step(s)
    sync(device)
    t0 = time.perf_counter()
    for s in range(args.warmup, args.warmup + args.steps):
        trainer.optimizer_step(s)
    sync(device)
    seconds = time.perf_counter() - t0
    loss = float(trainer.optimizer_step(args.warmup + args.steps))
    return {"samples_per_s": args.steps * args.batch_size / seconds, "s_per_step": seconds / args.steps,
            "setup_and_cache_s": setup, "cached_images": len(trainer.source), "last_loss": loss}


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--tiny", action="store_true", help="tiny random model at 64x64 (smoke test)")
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--precision", choices=("no", "fp16", "bf16"), default="bf16")
    ap.add_argument("--resolution", type=int)
    ap.add_argument("--images", type=int, default=64, help="training images written to a temp folder")
    ap.add_argument("--workers", type=int, default=4, help="DataLoader workers (both)")
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--num-vectors", type=int, default=1)
    ap.add_argument("--compile", action="store_true", help="torch.compile the UNet in ours")
    ap.add_argument("--only", choices=("negative", "positive"), help="one training only")
    args = ap.parse_args(argv)
    if args.tiny:
        args.resolution = args.resolution or 64
        args.images = min(args.images, 16)
    args.resolution = args.resolution or 512
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("CUDA is not available; use --tiny --device cpu for a smoke run")
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        torch.backends.cudnn.benchmark = True

    record: dict = {
        "benchmark": "dki_train", "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "model": "tiny" if args.tiny else "sd15-architecture-random", "resolution": args.resolution,
        "batch_size": args.batch_size, "precision": args.precision, "images": args.images, "workers": args.workers,
        "warmup_steps": args.warmup, "steps": args.steps, "compile": args.compile, "torch": torch.__version__,
    }
    flops = count_flops(*model_configs(args.tiny)[:2], args.resolution)
    record["tflop"] = {k: v / 1e12 for k, v in flops.items()}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        write_tokenizer(tmp / "tokenizer")
        src = (96, 128) if args.tiny else (768, 1024)
        folder = write_images(tmp / "images", args.images, src)
        for method in ("negative", "positive"):
            if args.only and method != args.only:
                continue
            res = {}
            for name in ("baseline", "ours"):
                c = components(args, tmp / "tokenizer", str(device))
                res[name] = (baseline(method, c, args, folder, device) if name == "baseline"
                             else ours(method, c, args, folder, device, tmp / "out"))
                print(f"{method:8s} {name:8s} {res[name]['samples_per_s']:8.2f} samples/s "
                      f"({res[name]['s_per_step']:.3f} s/step)", flush=True)
                del c
                gc.collect()
                if device.type == "cuda":
                    torch.cuda.empty_cache()
            res["speedup"] = res["ours"]["samples_per_s"] / res["baseline"]["samples_per_s"]
            for name, key in (("baseline", "per_sample_baseline"), ("ours", "per_sample_ours")):
                res[name]["achieved_tflops"] = res[name]["samples_per_s"] * flops[key] / 1e12
            # steps after which the one-off latent cache has paid for itself
            saved = res["baseline"]["s_per_step"] - res["ours"]["s_per_step"]
            res["cache_break_even_steps"] = res["ours"]["setup_and_cache_s"] / saved if saved > 0 else None
            record[method] = res
    print(json.dumps(record))
    return record


if __name__ == "__main__":
    main()
