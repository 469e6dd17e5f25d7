"""Typed settings of a translation run: what to load (`ModelSpec`) and how to translate (`RIGParams`).

Why a module of its own: the CLI, the run record (JSON) and the pipeline share these records, and the CLI must be
able to parse arguments without importing torch or diffusers. Plain dataclasses, no behaviour beyond validation.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

InversionOrder = Literal["reference", "standard"]


@dataclass(frozen=True)
class RIGParams:
    """The translation settings (the keyword arguments of `R2RPipeline.__call__` that change the result)."""

    source_prompt: str = ""
    target_prompt: str = ""
    negative_prompt: str | None = None  # None: the loaded negative embedding's token, or "" without one
    strength: float = 0.3
    num_inference_steps: int = 50
    guidance_scale: float = 7.5
    tac_ratio: float = 0.9
    tac_layers: int | None = 256
    tac_blocks: tuple[str, ...] = field(default_factory=tuple)
    use_tac: bool = True
    mask: bool = False
    inversion_order: InversionOrder = "reference"


@dataclass(frozen=True)
class ModelSpec:
    """What to load. `model`: local folder or Hub id of an SD-1.5-architecture diffusers pipeline. DKI artifacts:

    negative_embedding: textual-inversion safetensors `{token: tensor [D] or [V, D]}`; its token (or
        `negative_token`) becomes the default negative prompt.
    lora: LoRA weights (a .safetensors file or a folder with pytorch_lora_weights.safetensors), fused at lora_scale.
    unet: a finetuned UNet folder (diffusers format; a pipeline folder with unet/ also works).
    """

    model: str
    negative_embedding: str | None = None
    negative_token: str | None = None
    lora: str | None = None
    lora_scale: float = 1.0
    unet: str | None = None
    revision: str | None = None
    dtype: str = "float32"
    device: str = "cpu"
