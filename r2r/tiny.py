"""A tiny Stable-Diffusion-1.5-architecture pipeline with random weights, written as a normal diffusers folder.

Why: no weights can be downloaded here (and CI has no GPU), yet the translation code must be exercised through
exactly the loading path real SD-1.5 weights take (`StableDiffusionPipeline.from_pretrained(folder)`). So this
module builds every component from configs (UNet with attention at three resolutions, an 8x-downsampling VAE,
a CLIP text encoder, a CLIP tokenizer whose BPE vocabulary is generated here, a DDIM scheduler config) and saves
them with `save_pretrained` (safetensors). Same seed, same bytes. It must not contain any translation logic.

The component builders take plain config dicts, so the benchmark builds a full-size SD-1.5-architecture
pipeline with the same code (`build_pipeline`).
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from synfashion.cliutil import option
from synfashion.fs.atomic import usual_permissions

BOS, EOS = "<|startoftext|>", "<|endoftext|>"
# A few BPE merges so the tokenizer really merges (and tests see multi-character tokens); everything else falls
# back to the 256 byte-level symbols, so any text is tokenizable.
_MERGE_WORDS = ("the", "of", "photo", "real", "rendered", "garment", "fabric", "texture")


# What `save_tiny_model` writes into its folder (all that --overwrite may remove).
TINY_MODEL_ENTRIES = ("model_index.json", "unet", "vae", "text_encoder", "tokenizer", "scheduler", ".tokenizer-src")


@dataclass(frozen=True)
class TinyModelConfig:
    """Sizes of the tiny model. Defaults: attention at latent sizes /1, /2, /4 (plus the mid block)."""

    seed: int = option("--seed", default=0, type=int, help="seed of the random weights (same seed, same bytes)")
    unet_channels: tuple[int, ...] = (32, 32, 64, 64)
    unet_layers_per_block: int = 2  # as SD-1.5: 2 resnets (+ transformers) per down block, 3 per up block
    unet_heads: int = 4  # diffusers' `attention_head_dim` for SD-1.5 UNets is really the number of heads
    vae_channels: tuple[int, ...] = (16, 32, 32, 32)  # 4 blocks = 3 downsamples = SD's 8x factor
    text_width: int = 32
    text_layers: int = 2
    text_heads: int = 4
    norm_groups: int = 8
    sample_size: int = 64  # pixels; only informative (any size divisible by 8 works)


def byte_to_unicode() -> dict[int, str]:
    """GPT-2 / CLIP byte-level alphabet: each of the 256 bytes as a printable unicode character."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), 256)]
    codes = printable[:]
    extra = 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            codes.append(256 + extra)
            extra += 1
    return {b: chr(c) for b, c in zip(printable, codes)}


def tokenizer_vocab() -> tuple[dict[str, int], list[str]]:
    """A CLIP-style byte-level BPE vocabulary: 256 symbols, 256 end-of-word symbols, merges, then BOS/EOS."""
    symbols = list(byte_to_unicode().values())
    vocab: dict[str, int] = {}
    for s in symbols:
        vocab[s] = len(vocab)
    for s in symbols:
        vocab[s + "</w>"] = len(vocab)
    merges: list[str] = []
    for word in _MERGE_WORDS:  # merge left to right: "p h", "ph o", "pho t", "phot o</w>"
        pieces = list(word[:-1]) + [word[-1] + "</w>"]
        left = pieces[0]
        for right in pieces[1:]:
            merged = left + right
            if merged not in vocab:
                merges.append(f"{left} {right}")
                vocab[merged] = len(vocab)
            left = merged
    vocab[BOS] = len(vocab)
    vocab[EOS] = len(vocab)
    return vocab, merges


def write_tokenizer(folder: str | Path, model_max_length: int = 77) -> Path:
    """Write vocab.json, merges.txt and the configs a CLIPTokenizer loads (the files an SD-1.5 folder ships)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    vocab, merges = tokenizer_vocab()
    (folder / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
    (folder / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n", encoding="utf-8")
    special = {"bos_token": BOS, "eos_token": EOS, "pad_token": EOS, "unk_token": EOS}
    (folder / "special_tokens_map.json").write_text(json.dumps(special, indent=1), encoding="utf-8")
    config = {
        **special, "tokenizer_class": "CLIPTokenizer", "model_max_length": model_max_length,
        "do_lower_case": True, "add_prefix_space": False, "errors": "replace",
    }
    (folder / "tokenizer_config.json").write_text(json.dumps(config, indent=1), encoding="utf-8")
    return folder


def unet_config(cfg: TinyModelConfig) -> dict[str, Any]:
    return {
        "sample_size": cfg.sample_size // 8,
        "in_channels": 4,
        "out_channels": 4,
        "down_block_types": ["CrossAttnDownBlock2D"] * (len(cfg.unet_channels) - 1) + ["DownBlock2D"],
        "up_block_types": ["UpBlock2D"] + ["CrossAttnUpBlock2D"] * (len(cfg.unet_channels) - 1),
        "block_out_channels": list(cfg.unet_channels),
        "layers_per_block": cfg.unet_layers_per_block,
        "attention_head_dim": cfg.unet_heads,
        "cross_attention_dim": cfg.text_width,
        "norm_num_groups": cfg.norm_groups,
    }


def vae_config(cfg: TinyModelConfig) -> dict[str, Any]:
    n = len(cfg.vae_channels)
    return {
        "in_channels": 3,
        "out_channels": 3,
        "down_block_types": ["DownEncoderBlock2D"] * n,
        "up_block_types": ["UpDecoderBlock2D"] * n,
        "block_out_channels": list(cfg.vae_channels),
        "layers_per_block": 1,
        "latent_channels": 4,
        "norm_num_groups": cfg.norm_groups,
        "sample_size": cfg.sample_size,
        "scaling_factor": 0.18215,
    }


def text_config(cfg: TinyModelConfig, vocab_size: int, bos_id: int, eos_id: int) -> dict[str, Any]:
    return {
        "vocab_size": vocab_size,
        "hidden_size": cfg.text_width,
        "intermediate_size": cfg.text_width * 2,
        "projection_dim": cfg.text_width,
        "num_hidden_layers": cfg.text_layers,
        "num_attention_heads": cfg.text_heads,
        "max_position_embeddings": 77,
        "hidden_act": "quick_gelu",
        "bos_token_id": bos_id,
        "eos_token_id": eos_id,
        "pad_token_id": eos_id,
    }


def scheduler_config() -> dict[str, Any]:
    """The scheduler an SD-1.5 folder might ship. RIG ignores it (see r2r/schedule.py); it is here for completeness."""
    return {
        "num_train_timesteps": 1000, "beta_start": 0.00085, "beta_end": 0.012, "beta_schedule": "scaled_linear",
        "clip_sample": False, "set_alpha_to_one": False, "steps_offset": 1,
    }


def build_pipeline(
    unet_cfg: dict[str, Any],
    vae_cfg: dict[str, Any],
    text_cfg: dict[str, Any] | None,
    tokenizer_dir: str | Path,
    seed: int = 0,
    device: str = "cpu",
):
    """A StableDiffusionPipeline from component configs with seeded random weights (no safety checker).

    `text_cfg=None` sizes the text encoder from the tokenizer with the UNet's cross-attention width.
    Building under `torch.device(device)` initialises the weights there (fast on a GPU).
    """
    import torch
    from diffusers import AutoencoderKL, DDIMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    tokenizer = CLIPTokenizer.from_pretrained(str(tokenizer_dir))
    if text_cfg is None:
        width = unet_cfg["cross_attention_dim"]
        text_cfg = text_config(TinyModelConfig(text_width=width), len(tokenizer), tokenizer.bos_token_id,
                               tokenizer.eos_token_id)
    with torch.device(device):
        torch.manual_seed(seed)
        unet = UNet2DConditionModel(**unet_cfg)
        torch.manual_seed(seed + 1)
        vae = AutoencoderKL(**vae_cfg)
        torch.manual_seed(seed + 2)
        text_encoder = CLIPTextModel(CLIPTextConfig(**text_cfg))
    return StableDiffusionPipeline(
        vae=vae.eval(), text_encoder=text_encoder.eval(), tokenizer=tokenizer, unet=unet.eval(),
        scheduler=DDIMScheduler(**scheduler_config()), safety_checker=None, feature_extractor=None,
        requires_safety_checker=False,
    )


def save_tiny_model(out: str | Path, cfg: TinyModelConfig = TinyModelConfig(), overwrite: bool = False) -> Path:
    """Write the tiny pipeline folder `out` (model_index.json, unet/, vae/, text_encoder/, tokenizer/, scheduler/).

    `out` is new, empty or a tiny model this function wrote (marked by `synfashion.fs.ownership.OwnedFolder`, whose
    ledger lists every file it wrote); `overwrite` replaces only those files. Any other folder (a real model
    folder, another command's output, a user's files) is refused whatever the flag."""
    from synfashion.fs.ownership import OwnedFolder

    out = Path(out)
    owned = OwnedFolder(out, "tiny-model")
    if owned.claim():
        if not overwrite:
            raise FileExistsError(f"{out} holds a tiny model already; pass --overwrite to replace it")
        owned.remove_owned()
    fresh = not any(out.iterdir()) if out.is_dir() else True
    owned.begin({"seed": cfg.seed})
    try:
        staging = out / ".tokenizer-src"
        shutil.rmtree(staging, ignore_errors=True)
        write_tokenizer(staging)
        vocab, _ = tokenizer_vocab()
        pipe = build_pipeline(unet_config(cfg), vae_config(cfg), text_config(cfg, len(vocab), vocab[BOS], vocab[EOS]),
                              staging, seed=cfg.seed)
        tokenizer = out / "tokenizer"
        kept = {p.name for p in tokenizer.iterdir()} if tokenizer.is_dir() else set()  # not ours: left alone
        pipe.save_pretrained(out, safe_serialization=True)
        usual_permissions(out)  # safetensors writes 0600 files
        # Keep the tokenizer exactly as an SD-1.5 folder has it: the generated vocab.json / merges.txt.
        for p in tokenizer.iterdir():
            if p.name not in kept and p.is_file():
                p.unlink()
        for p in staging.iterdir():
            os.replace(p, tokenizer / p.name)
        staging.rmdir()
    except BaseException:
        if fresh:
            owned.abandon()
        raise
    owned.record_files(sorted(p.relative_to(out).as_posix() for name in TINY_MODEL_ENTRIES
                              for p in ([out / name] if (out / name).is_file() else (out / name).rglob("*"))
                              if p.is_file()))
    return out


# --- CLI ---------------------------------------------------------------------------------------------------------

def save_random_lora(model: str | Path, folder: str | Path, seed: int = 0) -> Path:
    """A LoRA for `model`'s UNet in diffusers' layout (as train-positive writes it), its up-projections drawn from a
    seeded normal so that loading it changes the outputs; for tests."""
    import torch
    from diffusers import StableDiffusionPipeline, UNet2DConditionModel
    from diffusers.utils import convert_state_dict_to_diffusers
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict

    unet = UNet2DConditionModel.from_pretrained(str(model), subfolder="unet")
    unet.add_adapter(LoraConfig(r=2, lora_alpha=2, target_modules=["to_q", "to_k", "to_v", "to_out.0"]))
    for name, p in unet.named_parameters():
        if "lora_B" in name:
            p.data.normal_(0, 0.2, generator=torch.Generator().manual_seed(seed))
    layers = convert_state_dict_to_diffusers(get_peft_model_state_dict(unet))
    StableDiffusionPipeline.save_lora_weights(str(folder), unet_lora_layers=layers, safe_serialization=True)
    return Path(folder)
