"""Positive-domain DKI: finetune the UNet on real photos, LoRA by default, full finetuning as an option.

Why: FashionR2R's target-domain injection leans the model's prior towards realism before RIG. LoRA (peft, through
diffusers' `unet.add_adapter`) trains a few MB and is saved with `StableDiffusionPipeline.save_lora_weights`, so
`pipe.load_lora_weights(folder)` (and `r2r translate-images --lora`) read it; `full=True` trains every UNet weight
and saves a whole pipeline folder (safetensors) that `from_pretrained` loads. Optional EMA of the trained weights
(diffusers' `EMAModel`), saved instead of the raw weights.

Captions: per image when the source has them (metadata file / sidecars / a caption column), else
`caption_template` (default empty, as the paper). The text encoder is frozen, so each distinct caption is encoded
once and looked up per step (no text-encoder forward in the loop while the captions fit the cache).
"""

from __future__ import annotations

from pathlib import Path

import torch

from synfashion.fs.atomic import usual_permissions

from .data import LatentBatch, LatentCache
from .trainer import Components, Denoiser, DKITrainer, TrainResult, cast_module

LORA_FILE = "pytorch_lora_weights.safetensors"  # diffusers' LORA_WEIGHT_NAME_SAFE
FULL_COMPONENTS = ("unet", "vae", "text_encoder", "tokenizer", "scheduler")  # the folders of a full export
MAX_CACHED_CAPTIONS = 4096


class CaptionEmbeddings:
    """caption -> frozen text-encoder hidden states [L, D], encoded once, kept on the device in the compute dtype."""

    def __init__(self, tokenizer, text_encoder, device: torch.device, dtype: torch.dtype,
                 limit: int = MAX_CACHED_CAPTIONS):
        self.tokenizer, self.text_encoder = tokenizer, text_encoder
        self.device, self.dtype, self.limit = device, dtype, limit
        self.index: dict[str, int] = {}
        self.states: torch.Tensor | None = None

    @torch.no_grad()
    def encode(self, captions: list[str]) -> torch.Tensor:
        tok = self.tokenizer
        ids = tok(captions, padding="max_length", max_length=tok.model_max_length, truncation=True,
                  return_tensors="pt").input_ids.to(self.device)
        return self.text_encoder(ids)[0].to(self.dtype)

    def add(self, captions: list[str], chunk: int = 64) -> None:
        new = [c for c in dict.fromkeys(captions) if c not in self.index]
        if not new or len(self.index) + len(new) > self.limit:
            return
        parts = [self.encode(new[i : i + chunk]) for i in range(0, len(new), chunk)]
        base = len(self.index)
        self.index.update({c: base + i for i, c in enumerate(new)})
        fresh = torch.cat(parts)
        self.states = fresh if self.states is None else torch.cat([self.states, fresh])

    def __call__(self, captions: list[str]) -> torch.Tensor:
        self.add(captions)
        if all(c in self.index for c in captions):
            idx = torch.as_tensor([self.index[c] for c in captions], device=self.device)
            return self.states[idx]
        return self.encode(captions)  # beyond the cache limit: encode this batch (still no gradients)

    @property
    def complete(self) -> bool:
        return self.states is not None


def _base_unet(module: torch.nn.Module) -> torch.nn.Module:
    return getattr(module, "_orig_mod", module)  # torch.compile wrapper


class PositiveTrainer(DKITrainer):
    """`PositiveTrainer(RunConfig(model, out, DataConfig(photos), TrainConfig(...), PositiveConfig(...))).fit()`."""

    method = "positive"
    tensor_files = ("ema",)

    def build(self, c: Components) -> tuple[Denoiser, list[torch.nn.Parameter]]:
        from diffusers.training_utils import EMAModel, cast_training_params

        p = self.run.method
        unet = c.unet
        if p.full:
            unet.requires_grad_(True).train()
            params = list(unet.parameters())
        else:
            from peft import LoraConfig

            cast_module(unet.requires_grad_(False), self.weight_dtype)
            unet.add_adapter(LoraConfig(r=p.lora_rank, lora_alpha=p.lora_alpha or p.lora_rank,
                                        init_lora_weights="gaussian", target_modules=list(p.lora_targets)))
            cast_training_params(unet, torch.float32)  # LoRA weights train in float32 under autocast
            params = [q for q in unet.parameters() if q.requires_grad]
        unet.to(self.device)
        self.ema = None
        if p.ema:
            self.ema = EMAModel(params, decay=p.ema_decay)
            self.ema.to(device=self.device)
        c.text_encoder.requires_grad_(False).to(self.device)
        self.captions = CaptionEmbeddings(c.tokenizer, c.text_encoder, self.device, self.weight_dtype)
        return Denoiser(unet), params

    def after_data(self, batches) -> None:
        self.state_of_caption = None  # LatentCache caption id -> row of self.captions.states
        if isinstance(batches, LatentCache):
            self.captions.add(batches.unique_captions)
            if all(c in self.captions.index for c in batches.unique_captions):
                self.state_of_caption = torch.as_tensor(
                    [self.captions.index[c] for c in batches.unique_captions], device=self.device)
                self.components.text_encoder.to("cpu")  # every caption is encoded: free the device
                self.captions.text_encoder = None

    def conditioning(self, batch: LatentBatch, generator: torch.Generator) -> dict:
        if self.state_of_caption is not None and batch.caption_ids is not None:
            return {"encoder_hidden_states": self.captions.states[self.state_of_caption[batch.caption_ids]]}
        return {"encoder_hidden_states": self.captions(batch.captions)}

    def after_optimizer_step(self) -> None:
        if self.ema is not None:
            self.ema.step(self.params)

    def extra_state(self):
        if self.ema is None:
            return {}, {}
        return ({"ema_step": self.ema.optimization_step},
                {"ema": {str(i): t for i, t in enumerate(self.ema.shadow_params)}})

    def load_extra_state(self, scalars: dict, tensors: dict) -> None:
        if self.ema is not None and "ema" in tensors:
            shadow = tensors["ema"]
            self.ema.shadow_params = [shadow[str(i)].to(self.device) for i in range(len(self.ema.shadow_params))]
            self.ema.optimization_step = int(scalars.get("ema_step", 0))

    def trained_unet(self) -> torch.nn.Module:
        return _base_unet(self.accelerator.unwrap_model(self.model).unet)

    def artifact_names(self) -> list[str]:
        if self.run.method.full:  # what StableDiffusionPipeline.save_pretrained writes
            return ["model_index.json", *(f"{c}/" for c in FULL_COMPONENTS)]
        return [LORA_FILE]

    def export_bytes(self) -> int:
        if not self.run.method.full:
            return super().export_bytes()
        c = self.components
        return sum(p.numel() * 4 for m in (c.unet, c.vae, c.text_encoder) for p in m.parameters()) + 2**20

    def export(self) -> list[Path]:
        if self.ema is not None:  # export the averaged weights, keep the raw ones for a later resume
            self.ema.store(self.params)
            self.ema.copy_to(self.params)
        try:
            return self._export_full() if self.run.method.full else self._export_lora()
        finally:
            if self.ema is not None:
                self.ema.restore(self.params)

    def _export_lora(self) -> list[Path]:
        from diffusers import StableDiffusionPipeline
        from diffusers.utils import convert_state_dict_to_diffusers
        from peft.utils import get_peft_model_state_dict

        unet = self.trained_unet()
        state = convert_state_dict_to_diffusers(get_peft_model_state_dict(unet))
        state = {k: v.detach().float().cpu().contiguous() for k, v in state.items()}
        from synfashion.fs.atomic import atomic_path

        with atomic_path(self.out / LORA_FILE) as tmp:  # diffusers writes the file in place
            StableDiffusionPipeline.save_lora_weights(
                save_directory=str(self.out), weight_name=tmp.name, unet_lora_layers=state, safe_serialization=True,
                unet_lora_adapter_metadata=unet.peft_config["default"].to_dict(),
            )
        return [self.out / LORA_FILE]

    def _export_full(self) -> list[Path]:
        import copy

        from diffusers import StableDiffusionPipeline

        unet = cast_module(copy.deepcopy(self.trained_unet()).to("cpu"), torch.float32).eval()
        pipe = StableDiffusionPipeline.from_pretrained(
            self.run.model, revision=self.run.revision, unet=unet, safety_checker=None, feature_extractor=None,
            requires_safety_checker=False, use_safetensors=True,
        )
        pipe.save_pretrained(str(self.out), safe_serialization=True)
        for component in FULL_COMPONENTS:
            usual_permissions(self.out / component)  # safetensors writes 0600 files
        return [self.out / "model_index.json", *(self.out / c for c in FULL_COMPONENTS)]

    def card(self, result: TrainResult) -> Path | None:
        from cards.model_card import DKICardInfo

        p = self.run.method
        info = DKICardInfo(
            method="full" if p.full else "lora", artifact="unet/" if p.full else LORA_FILE,
            **self.card_fields(result), lora_rank=None if p.full else p.lora_rank,
            lora_alpha=None if p.full else (p.lora_alpha or p.lora_rank), ema=p.ema,
            prompts=(self.run.data.caption_template,) if self.run.data.caption_template else (),
        )
        return self.write_card(info)
