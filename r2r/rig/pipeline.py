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
accepted for the diffusers calling convention only. Model loading (DKI artifacts) lives in r2r/models/.

It follows diffusers' image-to-image calling conventions where they fit: `image` (alias `images`), `check_inputs`,
`callback_on_step_end` with `callback_on_step_end_tensor_inputs`, `VaeImageProcessor` for the [0, 1] <-> [-1, 1]
mapping and the output types, `num_images_per_prompt` (1 only: RIG is deterministic, so more would be copies).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import PIL.Image
import torch
from diffusers import DiffusionPipeline
from diffusers.callbacks import MultiPipelineCallbacks, PipelineCallback
from diffusers.image_processor import VaeImageProcessor
from diffusers.loaders import StableDiffusionLoraLoaderMixin, TextualInversionLoaderMixin
from diffusers.utils import BaseOutput, replace_example_docstring

from ..config import InversionOrder, RIGParams
from .cpu_conv import cpu_conv_im2col
from .inversion import ddim_invert
from .schedule import RIGSchedule, denoise_update, rig_scheduler
from .tac import ForegroundMask, SwapRows, TACConfig, TACController, foreground_from_pixels, install_tac, tac_installed

ImageInput = PIL.Image.Image | np.ndarray | torch.Tensor | Sequence[PIL.Image.Image | np.ndarray | torch.Tensor]
OUTPUT_TYPES = ("pil", "np", "pt", "latent")

EXAMPLE_DOC_STRING = """
    Examples:
        ```py
        >>> from PIL import Image
        >>> from r2r import R2RPipeline
        >>> from r2r.models import load_negative_embedding

        >>> pipe = R2RPipeline.from_pretrained("stable-diffusion-v1-5/stable-diffusion-v1-5").to("cuda")
        >>> pipe.load_lora_weights("pos/")  # positive DKI (r2r train-positive), optional
        >>> load_negative_embedding(pipe, "neg/learned_embeds.safetensors")  # its token becomes the negative prompt
        >>> render = Image.open("render.png").convert("RGB")  # any size divisible by 8, e.g. 768x1024
        >>> real = pipe(image=render, strength=0.3, num_inference_steps=50, guidance_scale=7.5).images[0]
        >>> real.save("real.png")
        ```
"""


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


class _StepCount:
    """diffusers' progress bar, also reporting each step to `R2RPipeline.step_progress`."""

    def __init__(self, bar, total: int, report: Callable[[int, int], None] | None):
        self.bar, self.total, self.report, self.done = bar, total, report, 0

    def update(self, n: int = 1) -> None:
        self.bar.update(n)
        self.done += n
        if self.report is not None:
            self.report(self.done, self.total)


class R2RPipeline(DiffusionPipeline, TextualInversionLoaderMixin, StableDiffusionLoraLoaderMixin):
    """Rendered-to-real translation (FashionR2R's RIG) with a Stable-Diffusion-1.5-architecture model.

    Build it from a loaded SD pipeline's components, or with `r2r.models.load_pipeline` (which also loads DKI
    artifacts). The `scheduler` argument is accepted so that `from_pretrained` on an SD folder works, but RIG always
    uses its own DDIM configuration (`r2r.rig.schedule.RIG_SCHEDULER_CONFIG`).
    """

    model_cpu_offload_seq = "text_encoder->unet->vae"
    _optional_components = ["scheduler"]
    # what `callback_on_step_end` may ask for: the target latents and noise prediction of the step (float32), and
    # the target / negative prompt embeddings; returning "latents" or an embedding replaces it for the next steps
    _callback_tensor_inputs = ["latents", "noise_pred", "prompt_embeds", "negative_prompt_embeds"]

    def __init__(self, vae, text_encoder, tokenizer, unet, scheduler=None):
        super().__init__()
        self.register_modules(vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet,
                              scheduler=rig_scheduler())
        self.vae_scale_factor = 2 ** (len(vae.config.block_out_channels) - 1)
        # [0, 1] <-> [-1, 1] and the output types, as diffusers' pipelines do. Never resizes: a silent resample
        # would change the texture RIG exists to keep, so a size that is not a multiple of 8 is an error instead.
        self.image_processor = VaeImageProcessor(vae_scale_factor=self.vae_scale_factor, do_resize=False)
        self.negative_token: str | None = None  # set when a negative (source-domain) embedding is loaded
        self.tac = TACController()
        # float32 on a CPU: the UNet's convolutions run as im2col + one BLAS product (r2r/cpu_conv.py)
        self.cpu_conv_im2col = True
        self._guidance_scale, self._num_timesteps, self._interrupt = RIGParams.guidance_scale, 0, False
        # called after every inversion and denoising step with (steps done, steps of the call): a caller's own
        # progress display (a CPU call takes minutes; the r2r commands show its steps, not only finished images)
        self.step_progress: Callable[[int, int], None] | None = None
        install_tac(self.unet, self.tac)

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, **kwargs):
        """diffusers' loader on an SD-1.5-architecture folder or Hub id, safetensors only (pickles are refused),
        with the folder checked first (r2r/models/check.py: missing folder, offline and uncached, .bin-only,
        truncated or renamed weights are one clear error). DKI artifacts: `load_lora_weights`, and
        `r2r.models.load_negative_embedding` (or diffusers' `load_textual_inversion` plus `negative_prompt=`)."""
        from ..models import loading, resolve_model

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
            x = self.image_processor.normalize(part).to(self._execution_device, self.vae.dtype)
            out.append(self.vae.encode(x).latent_dist.mean.float() * self.vae.config.scaling_factor)
        return torch.cat(out)

    @torch.no_grad()
    def decode_latents(self, latents: torch.Tensor, chunk: int | None = None) -> torch.Tensor:
        """float32 latents -> float32 [N, 3, H, W] in [0, 1] (on the CPU). NaN stays NaN (clamp keeps it)."""
        out = []
        for part in latents.split(chunk or latents.shape[0]):
            x = self.vae.decode((part / self.vae.config.scaling_factor).to(self.vae.dtype)).sample
            out.append(self.image_processor.postprocess(x.float(), "pt").cpu())  # (x / 2 + 0.5).clamp(0, 1)
        return torch.cat(out)

    def _unet(self, latents: torch.Tensor, t: int, text: torch.Tensor) -> torch.Tensor:
        # The timestep goes in as a tensor: a Python int would make torch.compile specialise (recompile) per step.
        timestep = torch.tensor(t, dtype=torch.int64, device=latents.device)
        im2col = self.cpu_conv_im2col and latents.device.type == "cpu" and self.unet.dtype == torch.float32
        with cpu_conv_im2col(im2col):
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
                  tac_steps: int, foreground: ForegroundMask | None, bar, callback=None,
                  callback_inputs: Sequence[str] = ()) -> torch.Tensor:
        """Two-branch denoising from stored[-1]; returns the target latents.

        Rows per step: [target uncond, source cond, target cond] while TAC runs, then [target uncond, target cond]
        (no unconditional rows when guidance <= 1). The source row is reset to the stored latent of its level.
        `callback(self, i, t, {name: tensor})` runs after each step (diffusers' callback_on_step_end).
        """
        n = stored[0].shape[0]
        cfg = guidance > 1.0
        target, negative = emb.target, emb.negative

        def texts() -> tuple[torch.Tensor, torch.Tensor]:
            uncond = [negative] if cfg else []
            return torch.cat(uncond + [target]), torch.cat(uncond + [emb.source, target])

        text_plain, text_swap = texts()
        rows = SwapRows(source=n if cfg else 0, target=2 * n if cfg else n, count=n)
        z = stored[-1]
        for i, t in enumerate(schedule.timesteps):
            if self._interrupt:
                break
            swap = i < tac_steps
            parts = ([z] if cfg else []) + ([stored[-1 - i]] if swap else []) + [z]
            with self.tac.unet_call(step=i, rows=rows if swap else None, mask=foreground):
                eps_all = self._unet(torch.cat(parts), t, text_swap if swap else text_plain)
            eps_c = eps_all[-n:]
            eps = eps_all[:n] + guidance * (eps_c - eps_all[:n]) if cfg else eps_c
            z = denoise_update(z, eps, t, schedule)
            if callback is not None:
                given = {"latents": z, "noise_pred": eps, "prompt_embeds": target, "negative_prompt_embeds": negative}
                returned = callback(self, i, t, {k: given[k] for k in callback_inputs}) or {}
                z = returned.pop("latents", z)
                if "prompt_embeds" in returned or "negative_prompt_embeds" in returned:
                    target = returned.pop("prompt_embeds", target)
                    negative = returned.pop("negative_prompt_embeds", negative)
                    text_plain, text_swap = texts()
            bar.update()
        return z

    # --- translation ----------------------------------------------------------------------------------------

    @property
    def guidance_scale(self) -> float:
        return self._guidance_scale

    @property
    def num_timesteps(self) -> int:
        """Denoising steps of the current call (k = int(num_inference_steps * strength))."""
        return self._num_timesteps

    @property
    def interrupt(self) -> bool:
        """Set `pipe._interrupt = True` from a callback to stop denoising after the current step."""
        return self._interrupt

    def check_inputs(
        self,
        image,
        strength: float,
        num_inference_steps: int,
        guidance_scale: float,
        tac_ratio: float,
        tac_layers: int | None,
        inversion_order: str,
        output_type: str,
        num_images_per_prompt: int,
        vae_batch_size: int | None,
        callback_on_step_end_tensor_inputs: Sequence[str] | None,
    ) -> None:
        """Every argument error before any work (diffusers' convention); image sizes are checked when converted."""
        if image is None:
            raise ValueError("`image` is required: PIL images, uint8 arrays [H, W, 3] or float tensors in [0, 1]")
        if not isinstance(num_inference_steps, int) or num_inference_steps < 1:
            raise ValueError(f"num_inference_steps must be a positive integer, got {num_inference_steps!r}")
        if not 0.0 < strength <= 1.0:
            raise ValueError(f"strength must be in (0, 1], got {strength}")
        if int(num_inference_steps * strength) < 1:
            raise ValueError(
                f"strength {strength} with {num_inference_steps} steps leaves no step to run "
                f"(int({num_inference_steps} * {strength}) = 0); raise the strength or the steps")
        if not np.isfinite(guidance_scale):
            raise ValueError(f"guidance_scale must be a finite number, got {guidance_scale}")
        if not 0.0 <= tac_ratio <= 1.0:
            raise ValueError(f"tac_ratio must be in [0, 1], got {tac_ratio}")
        if tac_layers is not None and tac_layers < 1:
            raise ValueError(f"tac_layers must be a positive integer (or None), got {tac_layers}")
        if inversion_order not in ("reference", "standard"):
            raise ValueError(f"inversion_order must be 'reference' or 'standard', got {inversion_order!r}")
        if output_type not in OUTPUT_TYPES:
            raise ValueError(f"output_type must be 'pil', 'np', 'pt' or 'latent', got {output_type!r}")
        if num_images_per_prompt != 1:
            raise ValueError(
                f"num_images_per_prompt must be 1, got {num_images_per_prompt}: RIG draws no random numbers (DDIM "
                "inversion and eta = 0), so more images per input would be identical copies")
        if vae_batch_size is not None and vae_batch_size < 1:
            raise ValueError(f"vae_batch_size must be a positive integer (or None), got {vae_batch_size}")
        unknown = [k for k in callback_on_step_end_tensor_inputs or () if k not in self._callback_tensor_inputs]
        if unknown:
            raise ValueError(f"callback_on_step_end_tensor_inputs has to be in {self._callback_tensor_inputs}, "
                             f"but found {unknown}")

    @torch.no_grad()
    @replace_example_docstring(EXAMPLE_DOC_STRING)
    def __call__(
        self,
        image: ImageInput | None = None,
        source_prompt: str | Sequence[str] = RIGParams.source_prompt,  # every default of RIGParams, r2r/config.py
        target_prompt: str | Sequence[str] = RIGParams.target_prompt,
        negative_prompt: str | Sequence[str] | None = RIGParams.negative_prompt,
        strength: float = RIGParams.strength,
        num_inference_steps: int = RIGParams.num_inference_steps,
        guidance_scale: float = RIGParams.guidance_scale,
        tac_ratio: float = RIGParams.tac_ratio,
        tac_layers: int | None = RIGParams.tac_layers,
        tac_blocks: Sequence[str] = RIGParams.tac_blocks,
        use_tac: bool = RIGParams.use_tac,
        mask: bool | torch.Tensor = RIGParams.mask,
        inversion_order: InversionOrder = RIGParams.inversion_order,
        inversion_guidance_scale: float | None = None,
        generator: torch.Generator | list[torch.Generator] | None = None,
        output_type: str = "pil",
        return_dict: bool = True,
        vae_batch_size: int | None = None,
        num_images_per_prompt: int = 1,
        callback_on_step_end: Callable | PipelineCallback | MultiPipelineCallbacks | None = None,
        callback_on_step_end_tensor_inputs: Sequence[str] = ("latents",),
        *,
        images: ImageInput | None = None,
    ) -> R2RPipelineOutput | tuple:
        """Translate a batch of rendered images.

        Args:
            image: PIL images, uint8 arrays [H, W, 3], or float tensors in [0, 1]; one size, divisible by 8.
                (`images=` is accepted as an alias.)
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
            generator: unused: RIG draws no random numbers (DDIM inversion, eta = 0, the VAE posterior mean), so
                the output is the same with any generator or none. Accepted (a list must have one per image) so
                that code written for diffusers' pipelines runs unchanged.
            output_type: "pil", "np" ([N, H, W, 3] float), "pt" ([N, 3, H, W] float) or "latent".
            return_dict: False returns a tuple `(images,)`.
            vae_batch_size: encode/decode in chunks of this many images (memory), default all at once.
            num_images_per_prompt: must be 1: without randomness more images per input would be copies.
            callback_on_step_end: `fn(pipe, step, timestep, tensors) -> dict`, called after each denoising step
                (not during the inversion) with the tensors named in `callback_on_step_end_tensor_inputs` (of
                `_callback_tensor_inputs`); returned "latents" / "prompt_embeds" / "negative_prompt_embeds"
                replace those for the next steps. `pipe._interrupt = True` stops the denoising early. diffusers'
                `PipelineCallback` objects work too, but the built-in ones assume Stable Diffusion's batch layout.
            callback_on_step_end_tensor_inputs: names of the tensors passed to the callback.

        Examples:

        Returns:
            `R2RPipelineOutput` (or a tuple). Raises NonFiniteOutputError (naming the batch rows, carrying the whole
            output) when an image's latents or decoded pixels are NaN/inf, instead of returning black images.
        """
        if images is not None:
            if image is not None:
                raise ValueError("pass the input as `image` or as `images` (its alias), not both")
            image = images
        if isinstance(callback_on_step_end, (PipelineCallback, MultiPipelineCallbacks)):
            callback_on_step_end_tensor_inputs = callback_on_step_end.tensor_inputs
        self.check_inputs(image, strength, num_inference_steps, guidance_scale, tac_ratio, tac_layers,
                          inversion_order, output_type, num_images_per_prompt, vae_batch_size,
                          callback_on_step_end_tensor_inputs)
        x01 = images_to_tensor(image, self.vae_scale_factor)
        n, _, height, width = x01.shape
        if isinstance(generator, list) and len(generator) != n:
            raise ValueError(f"got {len(generator)} generators for {n} images")
        schedule = RIGSchedule.create(num_inference_steps, strength).to(self._execution_device)
        self.tac.reset(TACConfig(ratio=tac_ratio, layers=tac_layers, blocks=tuple(tac_blocks)), height, width)
        if not tac_installed(self.unet, self.tac):
            install_tac(self.unet, self.tac)
        emb = self._prompt_embeddings(n, source_prompt, target_prompt, negative_prompt)
        foreground = self._foreground(mask, x01)
        g_inv = guidance_scale if inversion_guidance_scale is None else inversion_guidance_scale
        tac_steps = schedule.tac_steps(tac_ratio) if use_tac else 0
        self._guidance_scale, self._num_timesteps, self._interrupt = guidance_scale, schedule.k, False

        with self.progress_bar(total=2 * schedule.k) as tqdm_bar:
            bar = _StepCount(tqdm_bar, 2 * schedule.k, self.step_progress)
            z0 = self.encode_images(x01, vae_batch_size)
            stored = self._invert(z0, emb, schedule, inversion_order, g_inv, bar)
            z = self._generate(stored, emb, schedule, guidance_scale, tac_steps, foreground, bar,
                               callback_on_step_end, tuple(callback_on_step_end_tensor_inputs or ()))
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
                result = self.image_processor.pt_to_numpy(out01)
            else:  # NaN rows (reported below) become black rather than undefined bytes
                result = self.image_processor.numpy_to_pil(self.image_processor.pt_to_numpy(out01.nan_to_num(0.0)))
        self.maybe_free_model_hooks()
        if bad:
            raise NonFiniteOutputError(sorted(bad), n, R2RPipelineOutput(images=result))
        return R2RPipelineOutput(images=result) if return_dict else (result,)
