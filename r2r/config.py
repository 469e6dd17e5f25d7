"""Typed settings of a translation run: what to load (`ModelSpec`) and how to translate (`RIGParams`).

Why a module of its own: the CLI, the run record (JSON) and the pipeline share these records, and the CLI must be
able to parse arguments without importing torch or diffusers. Each default is written here once, with the
command-line option that sets it (`synfashion.cliutil.option`); `R2RPipeline.__call__`, `RIGSchedule.create` and
`TACConfig` take theirs from these fields. Plain dataclasses, no behaviour beyond validation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

from synfashion.cliutil import comma_text, comma_tuple, option

InversionOrder = Literal["reference", "standard"]
DTypes = Literal["float32", "float16", "bfloat16"]


def _layers(text: str) -> int | None:
    """--tac-layers: an integer, or 'none' (no threshold rule)."""
    return None if text.lower() == "none" else int(text)


@dataclass(frozen=True)
class RIGParams:
    """The translation settings (the keyword arguments of `R2RPipeline.__call__` that change the result)."""

    source_prompt: str = option("--source-prompt", default="", help="prompt of the source (inversion) branch")
    target_prompt: str = option("--target-prompt", default="", help="prompt of the target (generation) branch")
    # None: the loaded negative embedding's token, or "" without one
    negative_prompt: str | None = option(
        "--negative-prompt", default=None,
        help="unconditional prompt (default: the negative embedding's token, or empty)")
    strength: float = option("--strength", default=0.3, type=float,
                             help="fraction of the schedule that is inverted and generated again")
    num_inference_steps: int = option("--steps", default=50, type=int,
                                      help="DDIM steps of the full schedule (strength x steps run)")
    guidance_scale: float = option("--guidance", default=7.5, type=float, help="classifier-free guidance scale")
    tac_ratio: float = option("--tac-ratio", default=0.9, type=float,
                              help="fraction of denoising steps with TAC (gamma)")
    tac_layers: int | None = option(
        "--tac-layers", default=256, type=_layers,
        help="TAC in self-attention layers with >= H*W/N tokens ('none': only --tac-blocks)")
    tac_blocks: tuple[str, ...] = option(
        "--tac-blocks", default=(), parse=comma_tuple, show=comma_text,
        help="comma-separated UNet module-name patterns, e.g. 'up_blocks.3.*'")
    use_tac: bool = option("--no-tac", default=True, help="ablation: plain inversion + CFG generation")
    mask: bool = option("--mask", default=False,
                        help="foreground mask: exactly black/white pixels are background")
    inversion_order: InversionOrder = option(
        "--inversion-order", default="reference", choices=get_args(InversionOrder),
        help="DDIM inversion order: 'reference' as published, 'standard' as textbook (README)")


@dataclass(frozen=True)
class ModelSpec:
    """What to load. `model`: local folder or Hub id of an SD-1.5-architecture diffusers pipeline. DKI artifacts:

    negative_embedding: textual-inversion safetensors `{token: tensor [D] or [V, D]}`; its token (or
        `negative_token`) becomes the default negative prompt.
    lora: LoRA weights (a .safetensors file or a folder with pytorch_lora_weights.safetensors), fused at lora_scale.
    unet: a finetuned UNet folder (diffusers format; a pipeline folder with unet/ also works).
    """

    model: str = option(
        "--model",
        help="diffusers SD-1.5-architecture folder or Hub id, e.g. stable-diffusion-v1-5/stable-diffusion-v1-5")
    negative_embedding: str | None = option(
        "--negative-embedding", default=None,
        help="negative (source-domain) textual inversion: a .safetensors file or a Hub model repo id "
             "(owner/name[@revision], as `r2r push-model` publishes it)")
    negative_token: str | None = option("--negative-token", default=None,
                                        help="token for the negative embedding (default: the file's)")
    lora: str | None = option("--lora", default=None,
                              help="positive-DKI LoRA (.safetensors file, folder, or Hub model repo id "
                                   "owner/name[@revision]), fused into the UNet")
    lora_scale: float = option("--lora-scale", default=1.0, type=float, help="weight of the LoRA when it is fused")
    unet: str | None = option("--unet", default=None, help="positive-DKI finetuned UNet folder (diffusers format)")
    revision: str | None = option("--model-revision", default=None, help="Hub revision of --model (default: main)")
    dtype: str = option("--dtype", default="float32", choices=get_args(DTypes),
                        help="model weights dtype (latent updates stay float32)")
    device: str = option("--device", default="cpu", help="cpu, cuda or cuda:N")

    def inputs(self) -> dict[str, str | None]:
        """What a run reads from disk for this model (names for a refusal; Hub ids are skipped by the check):
        an output folder is never, never holds and never sits in any of them (`synfashion.fs.ownership`)."""
        return {"model": self.model, "LoRA": self.lora, "negative embedding": self.negative_embedding,
                "UNet": self.unet}
