"""Load: an `R2RPipeline` from an SD-1.5-architecture diffusers folder or Hub id, with optional DKI artifacts. Last of
the four steps (resolve -> check -> identity -> load).


Why: translation runs need the base or positive-DKI model (a finetuned UNet folder or a LoRA) and the negative
(source-domain) textual-inversion embedding, and each ablation swaps one of them. Loading goes through
`StableDiffusionPipeline.from_pretrained`, the same code for real weights and for `r2r tiny-model` folders.
Only safetensors are read: pickled checkpoints (`.bin`, `.pt`) are refused, never `torch.load`-ed; every file is
checked first (`check`), so a pickle, a truncated file or a NaN artifact is one clear error.
"""

from __future__ import annotations

from pathlib import Path

import torch

from ..config import ModelSpec
from ..rig.pipeline import R2RPipeline
from .check import check_weights_folder, read_embedding, resolve_lora, resolve_model
from .errors import ModelFileError, loading
from .resolve import hub_model_commit, looks_like_path


DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


def resolve_dtype(name: str | torch.dtype) -> torch.dtype:
    if isinstance(name, torch.dtype):
        return name
    if name not in DTYPES:
        raise ValueError(f"dtype must be one of {', '.join(DTYPES)}, got {name!r}")
    return DTYPES[name]


def resolve_device(name: str) -> torch.device:
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"device {name!r} requested but CUDA is not available on this machine; use --device cpu")
    return device


def read_embedding_file(path: str | Path, width: int | None = None) -> tuple[str, torch.Tensor]:
    """(token, tensor [V, D]) from a diffusers textual-inversion safetensors file `{token: tensor}` (or a Hub repo id
    holding one), checked: safetensors (never a pickle), complete, floating point, finite, at least one vector,
    `width` wide if given."""
    return read_embedding(path, width)


def load_negative_embedding(pipe: R2RPipeline, path: str | Path, token: str | None = None) -> str:
    """Add the embedding's token to the tokenizer / text encoder; it becomes `pipe.negative_token`. Returns it."""
    width = pipe.text_encoder.get_input_embeddings().weight.shape[-1]
    file_token, tensor = read_embedding_file(path, width)
    token = token or file_token
    if token in pipe.tokenizer.get_vocab():
        raise ValueError(f"{path}: token {token!r} is already in the tokenizer; pass another negative_token")
    # diffusers grows the table to len(tokenizer) + K with transformers' default mean-resizing (a covariance of
    # the whole vocabulary, and a warning) before overwriting the new rows; growing it first makes that a no-op.
    pipe.text_encoder.resize_token_embeddings(len(pipe.tokenizer) + tensor.shape[0], mean_resizing=False)
    pipe.load_textual_inversion({token: tensor}, token=token)
    pipe.negative_token = token
    return token


def dtype_kwargs(dtype: torch.dtype) -> dict:
    """`dtype=` for diffusers versions that renamed it, `torch_dtype=` for older ones."""
    try:
        from diffusers.utils.deprecation_utils import _resolve_dtype  # noqa: F401  (present since the rename)
    except ImportError:
        return {"torch_dtype": dtype}
    return {"dtype": dtype}


def _load_unet(path: str, dtype: torch.dtype):
    from diffusers import UNet2DConditionModel

    p = Path(path).expanduser()
    if not p.exists():
        if looks_like_path(path):
            raise FileNotFoundError(f"UNet folder not found: {path}")
        with loading(f"the UNet {path!r}"):
            return UNet2DConditionModel.from_pretrained(path, use_safetensors=True, **dtype_kwargs(dtype))
    sub = "unet" if (p / "unet" / "config.json").is_file() else None
    if not (p / "config.json").is_file() and sub is None:
        raise FileNotFoundError(f"{p}: not a diffusers UNet folder (no config.json, no unet/config.json)")
    check_weights_folder(p / sub if sub else p, "the UNet folder")
    with loading(f"the UNet folder {p}"):
        return UNet2DConditionModel.from_pretrained(str(p), subfolder=sub, use_safetensors=True,
                                                    **dtype_kwargs(dtype))


def _check_unet_fits(sd, unet: str) -> None:
    """A --unet made for another model fails only inside the first denoising step, naming no file: refuse it here,
    naming the folder and what differs (its latent channels and text width against the model's VAE and encoder)."""
    cfg = sd.unet.config
    wanted = {"in_channels": sd.vae.config.latent_channels, "out_channels": sd.vae.config.latent_channels,
              "cross_attention_dim": sd.text_encoder.config.hidden_size}
    wrong = [f"{k} {getattr(cfg, k, None)}, the model needs {v}" for k, v in wanted.items() if getattr(cfg, k, None) != v]
    if wrong:
        raise ModelFileError(f"--unet {unet}: a UNet for another model ({'; '.join(wrong)}); pass the UNet trained "
                             "from this --model")


def _load_lora(pipe: R2RPipeline, path: str, scale: float) -> None:
    """Fuse a LoRA into the UNet; refuse a file that loads nothing into it (its keys match no UNet layer)."""
    lora = resolve_lora(path)
    with loading(f"the LoRA {lora} (made for another model, or not a diffusers / peft LoRA?)", also=(ValueError,)):
        pipe.load_lora_weights(str(lora.parent), weight_name=lora.name, adapter_name="dki")
    if "dki" not in pipe.get_list_adapters().get("unet", []):
        raise ModelFileError(f"{lora}: no tensor of this LoRA matches a layer of the model's UNet; it was made for "
                             "another model (or is not a diffusers / peft LoRA)")
    pipe.fuse_lora(lora_scale=scale, adapter_names=["dki"])
    pipe.unload_lora_weights()  # keeps the fused weights, drops the adapter layers (speed)


def load_pipeline(spec: ModelSpec) -> R2RPipeline:
    """The R2RPipeline for `spec`, on its device and dtype, with the DKI artifacts loaded.

    Every file is checked before a library reads it (`check`), so a bad one is one clear error.
    """
    from diffusers import StableDiffusionPipeline

    dtype = resolve_dtype(spec.dtype)
    device = resolve_device(spec.device)
    local = resolve_model(spec.model, spec.revision)
    if spec.lora:
        resolve_lora(spec.lora)  # checked before the (large) model is loaded
    if spec.negative_embedding:
        read_embedding_file(spec.negative_embedding)
    extra = {"unet": _load_unet(spec.unet, dtype)} if spec.unet else {}
    revision = spec.revision if local else hub_model_commit(spec.model, spec.revision)  # the recorded commit
    with loading(f"the model {spec.model!r}"):
        sd = StableDiffusionPipeline.from_pretrained(
            str(local) if local else spec.model, revision=revision, use_safetensors=True,
            **dtype_kwargs(dtype), safety_checker=None, requires_safety_checker=False, feature_extractor=None,
            **extra,
        )
    if spec.unet:
        _check_unet_fits(sd, spec.unet)
    pipe = R2RPipeline(vae=sd.vae, text_encoder=sd.text_encoder, tokenizer=sd.tokenizer, unet=sd.unet)
    if spec.lora:
        _load_lora(pipe, spec.lora, spec.lora_scale)
    pipe.to(device)
    if spec.negative_embedding:
        load_negative_embedding(pipe, spec.negative_embedding, spec.negative_token)
    return pipe
