"""Model cards (README.md) of the DKI artifacts: the negative embedding, the positive LoRA, a finetuned pipeline.

Why: an embedding or LoRA without its provenance is unusable for research and risky to share. Each card is rendered
from the run's own figures (steps, loss, data counts), so it cannot drift from what was trained, and validated with
huggingface_hub's `ModelCard` locally (cards/common.py). The license is stated plainly: anything trained on
SynFashion renders is derived from CC BY-NC-ND 4.0 data, and the card says what that means rather than hiding it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from huggingface_hub import ModelCardData

from .common import CITATION, LICENSE, LICENSE_NOTE, validate_model_card

Method = Literal["negative-embedding", "lora", "full"]

_TAGS: dict[str, list[str]] = {
    "negative-embedding": ["textual_inversion", "negative-embedding"],
    "lora": ["lora", "diffusers-training"],
    "full": ["diffusers-training"],
}
_COMMON_TAGS = ["stable-diffusion", "stable-diffusion-diffusers", "text-to-image", "diffusers", "fashionr2r",
                "domain-knowledge-injection"]


@dataclass(frozen=True)
class DKICardInfo:
    """What a DKI model card says. `data` is `ImageSource.card_info()` (description, kind, synfashion, hub_id,
    filters, num_images). `license=None` picks cc-by-nc-nd-4.0 for SynFashion-derived artifacts, else "other"."""

    method: Method
    artifact: str
    base_model: str
    data: dict
    steps: int
    batch_size: int
    learning_rate: float
    resolution: int
    mixed_precision: str
    final_loss: float
    base_model_is_local: bool = False
    seed: int = 0
    eval_loss_before: float | None = None
    eval_loss_after: float | None = None
    loss_curve: str | None = "loss_curve.png"
    token: str | None = None
    num_vectors: int | None = None
    init_token: str | None = None
    lora_rank: int | None = None
    lora_alpha: float | None = None
    ema: bool = False
    prompts: tuple[str, ...] = field(default_factory=tuple)
    license: str | None = None

    @property
    def synfashion(self) -> bool:
        return bool(self.data.get("synfashion"))


def _fmt(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.5f}"


def _title(info: DKICardInfo) -> str:
    if info.method == "negative-embedding":
        return f"Negative-domain embedding `{info.token}` for {info.base_model}"
    if info.method == "lora":
        return f"Positive-domain LoRA for {info.base_model}"
    return f"Positive-domain finetuned {info.base_model}"


def _what(info: DKICardInfo) -> str:
    if info.method == "negative-embedding":
        return (
            f"A textual-inversion embedding of the new token `{info.token}` ({info.num_vectors} vector(s)), learned on "
            "**rendered** images: the negative-domain half of FashionR2R's Domain Knowledge Injection (DKI). In "
            "rendered-to-real translation (RIG) it is the *negative prompt* of classifier-free guidance, which "
            "pushes generation away from the CG look it has absorbed. Only the new token's rows were trained; the "
            "base model is unchanged."
        )
    kind = f"LoRA (rank {info.lora_rank}, alpha {info.lora_alpha:g}) on the UNet's attention projections" \
        if info.method == "lora" else "a full finetuning of the UNet"
    return (
        f"The positive-domain half of FashionR2R's Domain Knowledge Injection (DKI): {kind}, trained on **real** "
        "photos so that the model's prior leans towards realism before rendered-to-real translation (RIG)."
        + (" The exported weights are an exponential moving average (EMA) of the training weights." if info.ema else "")
    )


def _usage(info: DKICardInfo) -> str:
    base = info.base_model
    if info.method == "negative-embedding":
        return f"""```python
from diffusers import StableDiffusionPipeline
pipe = StableDiffusionPipeline.from_pretrained("{base}")
pipe.load_textual_inversion("path/to/this/folder")  # reads {info.artifact}
image = pipe("a photo of a garment", negative_prompt="{info.token}").images[0]
```
With the toolkit: `r2r translate-images --model {base} --negative-embedding path/to/{info.artifact} ...`"""
    if info.method == "lora":
        return f"""```python
from diffusers import StableDiffusionPipeline
pipe = StableDiffusionPipeline.from_pretrained("{base}")
pipe.load_lora_weights("path/to/this/folder")  # reads {info.artifact}
```
With the toolkit: `r2r translate-images --model {base} --lora path/to/this/folder ...`"""
    return """```python
from diffusers import StableDiffusionPipeline
pipe = StableDiffusionPipeline.from_pretrained("path/to/this/folder")
```
With the toolkit: `r2r translate-images --model path/to/this/folder ...` (or `--unet path/to/this/folder`)."""


def _data_section(info: DKICardInfo) -> str:
    d = info.data
    filters = d.get("filters") or {}
    shown = ", ".join(f"{k}={v}" for k, v in filters.items()) or "none"
    lines = [
        f"- Source: {d.get('description', 'unknown')}",
        f"- Filters: {shown}",
        f"- Images: {d.get('num_images', 'unknown')}",
        f"- Resolution: {info.resolution}x{info.resolution} (resized to cover, center or random crop)",
    ]
    if info.prompts:
        lines.append("- Prompts: " + "; ".join(f"`{p}`" for p in info.prompts[:8]))
    return "\n".join(lines)


def _license_section(info: DKICardInfo) -> str:
    if info.synfashion:
        return (
            "**This artifact was trained on SynFashion renders and is derived from CC BY-NC-ND 4.0 data.** "
            "The NonCommercial term applies to it: research use only. Whether trained weights are a "
            "\"derivative\" under the NoDerivatives term is not settled; treat them as one: keep them for your own "
            "research and ask the rights holders (Style3D Research / the FashionR2R authors) before publishing or "
            "sharing them. The base model's own license applies as well.\n\n" + LICENSE_NOTE
        )
    return (
        "Trained on user-provided images (not SynFashion). The licenses of those images and of the base model "
        "govern this artifact; this card's `license` field is a placeholder (`other`) until you set it."
    )


def dki_card_data(info: DKICardInfo) -> ModelCardData:
    license_ = info.license or (LICENSE if info.synfashion else "other")
    hub_id = info.data.get("hub_id")
    extra = {}
    if info.method == "negative-embedding":
        extra["instance_prompt"] = info.token
    return ModelCardData(
        license=license_, base_model=info.base_model, library_name="diffusers", pipeline_tag="text-to-image",
        tags=_TAGS[info.method] + _COMMON_TAGS + (["synfashion"] if info.synfashion else []),
        datasets=[hub_id] if hub_id else None, **extra,
    )


def render_dki_card(info: DKICardInfo) -> str:
    """The card's text (YAML front matter + prose), validated with huggingface_hub's ModelCard."""
    yaml = dki_card_data(info).to_yaml()
    curve = f"\n![loss curve]({info.loss_curve})\n" if info.loss_curve else ""
    local = (f"\n`{info.base_model}` names a local model folder; set `base_model` to its Hub id before publishing.\n"
             if info.base_model_is_local else "")
    evals = ""
    if info.eval_loss_before is not None and info.eval_loss_after is not None:
        evals = (f"- Loss on a fixed batch (same images, noise, timesteps) before / after: "
                 f"{_fmt(info.eval_loss_before)} / {_fmt(info.eval_loss_after)}\n")
    text = f"""---
{yaml}
---

# {_title(info)}

{_what(info)}
{local}
## How to use

{_usage(info)}

## Training data

{_data_section(info)}

## Training

- Method: {info.method}, artifact `{info.artifact}`
- Base model: `{info.base_model}`
- Steps: {info.steps}, global batch {info.batch_size}, learning rate {info.learning_rate:g}, mixed precision \
{info.mixed_precision}, seed {info.seed}
- Final loss (mean of the last steps): {_fmt(info.final_loss)}
{evals}{curve}
## License

{_license_section(info)}

## Citation

```bibtex
{CITATION}
```
"""
    validate_model_card(text)
    return text

