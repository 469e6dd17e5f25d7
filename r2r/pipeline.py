"""`R2RPipeline`: Realistic Image Generation (RIG) of FashionR2R for a batch of rendered images.

Why: the published code runs one image at a time and does work that cannot change the result. This pipeline
computes the same arithmetic (REFERENCE_RIG.md; "exact mode" = float32 with the defaults) efficiently:

- inversion with an empty source prompt is one UNet evaluation per step (CFG of two identical predictions is the
  prediction itself);
- the generation batch is [target uncond, source cond, target cond]: the source branch's unconditional row only
  ever cost work, and once attention control ends (after int(k * tac_ratio) steps) the source row is dropped too;
- only the target branch is decoded;
- a whole batch of same-size images runs together; latent updates stay float32 whatever the model dtype.

It builds its own DDIM scheduler (r2r/schedule.py), whatever the model folder ships. Inputs: images of any size
divisible by the VAE factor (8). There is no randomness on this path (eta = 0, posterior mean), so `generator` is
accepted for the diffusers calling convention only. Model loading (DKI artifacts) lives in r2r/models.py.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import PIL.Image
import torch
from diffusers import DiffusionPipeline
from diffusers.loaders import StableDiffusionLoraLoaderMixin, TextualInversionLoaderMixin
from diffusers.utils import BaseOutput

from .config import InversionOrder, RIGParams  # noqa: F401  (RIGParams re-exported)
from .inversion import ddim_invert
from .schedule import RIGSchedule, denoise_update, rig_scheduler
from .tac import ForegroundMask, SwapRows, TACConfig, TACController, foreground_from_pixels, install_tac, tac_installed

ImageInput = PIL.Image.Image | np.ndarray | torch.Tensor | Sequence[PIL.Image.Image | np.ndarray | torch.Tensor]


@dataclass
class R2RPipelineOutput(BaseOutput):
    """images: list of PIL images, np.ndarray [N, H, W, 3] or torch.Tensor [N, 3, H, W] in [0, 1] (or latents)."""

    images: list[PIL.Image.Image] | np.ndarray | torch.Tensor


class NonFiniteOutputError(ValueError):
    """Some images of a batch came out non-finite (NaN/inf latents or decoded pixels), which would be saved as
    black images. `indices`: the batch rows at fault; `output`: the whole batch's output, whose other rows are
    good (a caller may keep them)."""

    def __init__(self, indices: list[int], n: int, output: R2RPipelineOutput | None = None):
        self.indices, self.output = list(indices), output
        super().__init__(
            f"non-finite values (NaN/inf) in the output of image(s) {self.indices} of a batch of {n}: the model or "
            "one of its DKI artifacts (LoRA, embedding, UNet) produces NaN, or float16 overflowed (try --dtype "
            "bfloat16 or float32)")


def non_finite_rows(x: torch.Tensor) -> list[int]:
    """Rows (dim 0) of `x` with any NaN or inf."""
    return torch.nonzero(~torch.isfinite(x.flatten(1)).all(dim=1)).flatten().tolist()


def images_to_tensor(images: ImageInput, multiple: int = 8) -> torch.Tensor:
    """Images -> float32 [N, 3, H, W] in [0, 1]. PIL / uint8 arrays (HWC) / float tensors ([3,H,W] or [N,3,H,W]).

    All images of one call must share one size, divisible by `multiple`; errors name the offending size.
    """
    if isinstance(images, (PIL.Image.Image, np.ndarray)) or (isinstance(images, torch.Tensor) and images.ndim == 3):
        images = [images]
    if isinstance(images, torch.Tensor):
        if images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f"image tensor must be [N, 3, H, W], got {tuple(images.shape)}")
        batch = images.detach().to("cpu", torch.float32)
    else:
        items = []
        for i, im in enumerate(images):
            if isinstance(im, PIL.Image.Image):
                im = np.array(im.convert("RGB"))
            if isinstance(im, np.ndarray):
                if im.ndim != 3 or im.shape[2] != 3:
                    raise ValueError(f"image {i}: array must be [H, W, 3], got {im.shape}")
                t = torch.from_numpy(np.ascontiguousarray(im)).permute(2, 0, 1)
                t = t.float() / 255.0 if im.dtype == np.uint8 else t.float()
            elif isinstance(im, torch.Tensor):
                if im.ndim != 3 or im.shape[0] != 3:
                    raise ValueError(f"image {i}: tensor must be [3, H, W], got {tuple(im.shape)}")
                t = im.detach().to("cpu", torch.float32)
            else:
                raise TypeError(f"image {i}: unsupported type {type(im).__name__} (PIL image, array or tensor)")
            items.append(t)
        if not items:
            raise ValueError("no images given")
        sizes = {tuple(t.shape[1:]) for t in items}
        if len(sizes) > 1:
            listed = ", ".join(f"{w}x{h}" for h, w in sorted(sizes))
            raise ValueError(f"all images of one batch must have the same size (width x height); got {listed}")
        batch = torch.stack(items)
    h, w = batch.shape[-2:]
    if h % multiple or w % multiple:
        raise ValueError(
            f"image size {w}x{h} (width x height) is not divisible by {multiple}: the VAE downsamples by {multiple}. "
            f"Crop or resize, e.g. to {w // multiple * multiple}x{h // multiple * multiple}."
        )
    bad = torch.nonzero(~torch.isfinite(batch.flatten(1)).all(dim=1)).flatten().tolist()
    if bad:  # NaN passes the range check below (every comparison with NaN is False)
        raise ValueError(f"image(s) {bad} hold non-finite values (NaN/inf)")
    if batch.min() < 0 or batch.max() > 1:
        raise ValueError("image values must be in [0, 1] (float tensors) or uint8")
    return batch


@dataclass(frozen=True)
class PromptEmbeddings:
    """[N, 77, D] text embeddings per image: source / target / negative prompts and the empty prompt."""

    source: torch.Tensor
    target: torch.Tensor
    negative: torch.Tensor
    empty: torch.Tensor
    source_is_empty: bool


def _per_image(value: str | Sequence[str], n: int, what: str) -> list[str]:
    if isinstance(value, str):
        return [value] * n
    value = list(value)
    if len(value) != n:
        raise ValueError(f"{what}: got {len(value)} prompts for {n} images")
    return value


class R2RPipeline(DiffusionPipeline, TextualInversionLoaderMixin, StableDiffusionLoraLoaderMixin):
    """Rendered-to-real translation (FashionR2R's RIG) with a Stable-Diffusion-1.5-architecture model.

    Build it from a loaded SD pipeline's components, or with `r2r.models.load_pipeline` (which also loads DKI
    artifacts). The `scheduler` argument is accepted so that `from_pretrained` on an SD folder works, but RIG always
    uses its own DDIM configuration (`r2r.schedule.RIG_SCHEDULER_CONFIG`).
    """

    model_cpu_offload_seq = "text_encoder->unet->vae"
    _optional_components = ["scheduler"]

    def __init__(self, vae, text_encoder, tokenizer, unet, scheduler=None):
        super().__init__()
        self.register_modules(vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet,
                              scheduler=rig_scheduler())
        self.vae_scale_factor = 2 ** (len(vae.config.block_out_channels) - 1)
        self.negative_token: str | None = None  # set when a negative (source-domain) embedding is loaded
        self.tac = TACController()
        install_tac(self.unet, self.tac)

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, **kwargs):
        """diffusers' loader on an SD-1.5-architecture folder or Hub id, safetensors only (pickles are refused),
        with the folder checked first (r2r/model_files.py: missing folder, offline and uncached, .bin-only,
        truncated or renamed weights are one clear error). DKI artifacts: `load_lora_weights`, and
        `r2r.models.load_negative_embedding` (or diffusers' `load_textual_inversion` plus `negative_prompt=`)."""
        from .model_files import loading, resolve_model

        name = str(pretrained_model_name_or_path)
        kwargs.setdefault("use_safetensors", True)
        local = resolve_model(name, kwargs.get("revision"))
        with loading(f"the model {name!r}"):
            return super().from_pretrained(str(local) if local else name, **kwargs)

    # --- building blocks ------------------------------------------------------------------------------------

    @torch.no_grad()
    def encode_prompts(self, prompts: Sequence[str]) -> torch.Tensor:
        """CLIP embeddings [len(prompts), 77, D] (textual-inversion tokens expanded), in the UNet's dtype."""
        converted = self.maybe_convert_prompt(list(prompts), self.tokenizer)
        ids = self.tokenizer(
            converted, padding="max_length", max_length=self.tokenizer.model_max_length, truncation=True,
            return_tensors="pt",
        ).input_ids
        emb = self.text_encoder(ids.to(self._execution_device))[0]
        return emb.to(self._execution_device, self.unet.dtype)

    @torch.no_grad()
    def encode_images(self, images01: torch.Tensor, chunk: int | None = None) -> torch.Tensor:
        """[N, 3, H, W] in [0, 1] -> float32 latents (posterior mean x scaling factor)."""
        out = []
        for part in images01.split(chunk or images01.shape[0]):
            x = (2.0 * part - 1.0).to(self._execution_device, self.vae.dtype)
            out.append(self.vae.encode(x).latent_dist.mean.float() * self.vae.config.scaling_factor)
        return torch.cat(out)

    @torch.no_grad()
    def decode_latents(self, latents: torch.Tensor, chunk: int | None = None) -> torch.Tensor:
        """float32 latents -> float32 [N, 3, H, W] in [0, 1] (on the CPU). NaN stays NaN (clamp keeps it)."""
        out = []
        for part in latents.split(chunk or latents.shape[0]):
            x = self.vae.decode((part / self.vae.config.scaling_factor).to(self.vae.dtype)).sample
            out.append((x.float() / 2 + 0.5).clamp(0, 1).cpu())
        return torch.cat(out)

    def _unet(self, latents: torch.Tensor, t: int, text: torch.Tensor) -> torch.Tensor:
        # The timestep goes in as a tensor: a Python int would make torch.compile specialise (recompile) per step.
        timestep = torch.tensor(t, dtype=torch.int64, device=latents.device)
        return self.unet(latents.to(self.unet.dtype), timestep, encoder_hidden_states=text).sample.float()

    def _prompt_embeddings(self, n: int, source, target, negative) -> PromptEmbeddings:
        if negative is None:
            negative = self.negative_token or ""
        prompts = {"source": _per_image(source, n, "source_prompt"), "target": _per_image(target, n, "target_prompt"),
                   "negative": _per_image(negative, n, "negative_prompt"), "empty": [""] * n}
        unique = sorted({p for ps in prompts.values() for p in ps})
        table = dict(zip(unique, self.encode_prompts(unique)))
        return PromptEmbeddings(**{k: torch.stack([table[p] for p in ps]) for k, ps in prompts.items()},
                                source_is_empty=all(p == "" for p in prompts["source"]))

    def _foreground(self, mask: bool | torch.Tensor, x01: torch.Tensor) -> ForegroundMask | None:
        n, _, height, width = x01.shape
        latent_size = (height // self.vae_scale_factor, width // self.vae_scale_factor)
        if isinstance(mask, torch.Tensor):
            fg = mask.to(torch.bool)
            fg = fg[None] if fg.ndim == 2 else fg
            if tuple(fg.shape) != (n, height, width):
                raise ValueError(f"mask must be [N, H, W] = {(n, height, width)}, got {tuple(mask.shape)}")
            return ForegroundMask(fg.to(self._execution_device), latent_size)
        if mask:
            return ForegroundMask(foreground_from_pixels(x01).to(self._execution_device), latent_size)
        return None

    def _invert(self, z0: torch.Tensor, emb: PromptEmbeddings, schedule: RIGSchedule, order: InversionOrder,
                guidance: float, bar) -> list[torch.Tensor]:
        """DDIM inversion; CFG (unconditional = empty prompt) only where it can change the result."""
        cfg = guidance > 1.0 and not emb.source_is_empty
        text_cfg = torch.cat([emb.empty, emb.source]) if cfg else None

        def predict(z: torch.Tensor, t: int) -> torch.Tensor:
            if not cfg:  # eps_u + g (eps_c - eps_u) with eps_c == eps_u is eps_u: one evaluation
                return self._unet(z, t, emb.source)
            eps_u, eps_c = self._unet(torch.cat([z, z]), t, text_cfg).chunk(2)
            return eps_u + guidance * (eps_c - eps_u)

        return ddim_invert(predict, z0, schedule, order, on_step=lambda i, t: bar.update())

    def _generate(self, stored: list[torch.Tensor], emb: PromptEmbeddings, schedule: RIGSchedule, guidance: float,
                  tac_steps: int, foreground: ForegroundMask | None, bar) -> torch.Tensor:
        """Two-branch denoising from stored[-1]; returns the target latents.

        Rows per step: [target uncond, source cond, target cond] while TAC runs, then [target uncond, target cond]
        (no unconditional rows when guidance <= 1). The source row is reset to the stored latent of its level.
        """
        n = stored[0].shape[0]
        cfg = guidance > 1.0
        uncond = [emb.negative] if cfg else []
        text_plain = torch.cat(uncond + [emb.target])
        text_swap = torch.cat(uncond + [emb.source, emb.target])
        rows = SwapRows(source=n if cfg else 0, target=2 * n if cfg else n, count=n)
        z = stored[-1]
        for i, t in enumerate(schedule.timesteps):
            swap = i < tac_steps
            parts = ([z] if cfg else []) + ([stored[-1 - i]] if swap else []) + [z]
            with self.tac.unet_call(step=i, rows=rows if swap else None, mask=foreground):
                eps_all = self._unet(torch.cat(parts), t, text_swap if swap else text_plain)
            eps_c = eps_all[-n:]
            eps = eps_all[:n] + guidance * (eps_c - eps_all[:n]) if cfg else eps_c
            z = denoise_update(z, eps, t, schedule)
            bar.update()
        return z

    # --- translation ----------------------------------------------------------------------------------------

    @torch.no_grad()
    def __call__(
        self,
        images: ImageInput,
        source_prompt: str | Sequence[str] = "",
        target_prompt: str | Sequence[str] = "",
        negative_prompt: str | Sequence[str] | None = None,
        strength: float = 0.3,
        num_inference_steps: int = 50,
        guidance_scale: float = 7.5,
        tac_ratio: float = 0.9,
        tac_layers: int | None = 256,
        tac_blocks: Sequence[str] = (),
        use_tac: bool = True,
        mask: bool | torch.Tensor = False,
        inversion_order: InversionOrder = "reference",
        inversion_guidance_scale: float | None = None,
        generator: torch.Generator | list[torch.Generator] | None = None,
        output_type: str = "pil",
        return_dict: bool = True,
        vae_batch_size: int | None = None,
    ) -> R2RPipelineOutput | tuple:
        """Translate a batch of rendered images.

        Args:
            images: PIL images, uint8 arrays [H, W, 3], or float tensors in [0, 1]; one size, divisible by 8.
            source_prompt / target_prompt: prompts of the source and target branches (per image or shared).
            negative_prompt: unconditional prompt of the generation CFG; None uses the loaded negative embedding's
                token (or "" without one); pass "" for the "no negative embedding" ablation.
            strength: fraction of the `num_inference_steps` schedule that is inverted and re-generated.
            guidance_scale: CFG scale of the generation (and of the inversion unless `inversion_guidance_scale`).
            tac_ratio: fraction of the denoising steps with attention control (gamma).
            tac_layers: self-attention layers with >= H*W/tac_layers tokens are controlled (None: no such rule).
            tac_blocks: module-name patterns of self-attention layers controlled in addition.
            use_tac: False = plain inversion + CFG generation (the "no TAC" ablation).
            mask: True = foreground from the images (exactly black / white pixels are background), or a bool
                tensor [N, H, W] (True = foreground); background-to-background self-attention is blocked in every
                self-attention layer during generation (as published; the inversion is unmasked).
            inversion_order: "reference" (published, default) or "standard"; see r2r/inversion.py.
            generator: accepted for the diffusers convention; RIG draws no random numbers.
            output_type: "pil", "np" ([N, H, W, 3] float), "pt" ([N, 3, H, W] float) or "latent".
            vae_batch_size: encode/decode in chunks of this many images (memory), default all at once.

        Raises NonFiniteOutputError (naming the batch rows, carrying the whole output) when an image's latents
        or decoded pixels are NaN/inf, instead of returning black images.
        """
        x01 = images_to_tensor(images, self.vae_scale_factor)
        n, _, height, width = x01.shape
        if isinstance(generator, list) and len(generator) != n:
            raise ValueError(f"got {len(generator)} generators for {n} images")
        if output_type not in ("pil", "np", "pt", "latent"):
            raise ValueError(f"output_type must be 'pil', 'np', 'pt' or 'latent', got {output_type!r}")
        schedule = RIGSchedule.create(num_inference_steps, strength).to(self._execution_device)
        schedule.inversion_timesteps(inversion_order)  # validates the order before any work
        self.tac.reset(TACConfig(ratio=tac_ratio, layers=tac_layers, blocks=tuple(tac_blocks)), height, width)
        if not tac_installed(self.unet, self.tac):
            install_tac(self.unet, self.tac)
        emb = self._prompt_embeddings(n, source_prompt, target_prompt, negative_prompt)
        foreground = self._foreground(mask, x01)
        g_inv = guidance_scale if inversion_guidance_scale is None else inversion_guidance_scale
        tac_steps = schedule.tac_steps(tac_ratio) if use_tac else 0

        with self.progress_bar(total=2 * schedule.k) as bar:
            z0 = self.encode_images(x01, vae_batch_size)
            stored = self._invert(z0, emb, schedule, inversion_order, g_inv, bar)
            z = self._generate(stored, emb, schedule, guidance_scale, tac_steps, foreground, bar)
        del stored

        bad = set(non_finite_rows(z))  # one check per batch: NaN would otherwise become black pixels
        if output_type == "latent":
            result = z
        else:
            out01 = self.decode_latents(z, vae_batch_size)
            bad |= set(non_finite_rows(out01))
            if output_type == "pt":
                result = out01
            elif output_type == "np":
                result = out01.permute(0, 2, 3, 1).numpy()
            else:
                arr = (out01.nan_to_num(0.0) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
                result = [PIL.Image.fromarray(a, "RGB") for a in arr]
        self.maybe_free_model_hooks()
        if bad:
            raise NonFiniteOutputError(sorted(bad), n, R2RPipelineOutput(images=result))
        return R2RPipelineOutput(images=result) if return_dict else (result,)
