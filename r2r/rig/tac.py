"""Texture-preserving Attention Control (TAC) as a diffusers attention processor, and the foreground mask.

Why: TAC is the part of RIG that keeps the rendered texture: in the self-attention of the shallow
(high-resolution) UNet layers, during the first `ratio` of the denoising steps, the target branch's conditional row
attends with the source branch's conditional Query and Key (its own Value stays). Doing this as a processor class
installed with `unet.set_attn_processor` (never a patched `forward`) keeps the UNet a normal diffusers model:
LoRA, offloading, `torch.compile` and other processors keep working.

One `TACController` is shared by all processors of a UNet. The pipeline tells it, per UNet call, which rows to swap
(`SwapRows`), the step index and an optional `ForegroundMask`; with nothing set the processors compute plain SDPA
attention, so the UNet behaves exactly as without them. The controller counts `(layer, step)` swaps so tests can
see which layers and steps really swapped. This module does no scheduling and knows no prompts.

Layer selection: a self-attention layer with n tokens is selected when `n * layers >= H * W` (H, W in pixels;
layers=256 selects the two highest-resolution UNet levels with SD's 8x VAE), or when its module name matches one
of `blocks` (fnmatch patterns such as "up_blocks.3.*", or a plain prefix such as "down_blocks.0").
"""

from __future__ import annotations

import contextlib
import fnmatch
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..config import RIGParams


@dataclass(frozen=True)
class TACConfig:
    """Which self-attention layers and steps use the source's Query/Key.

    ratio: fraction gamma of the denoising steps with control (step i < int(k * ratio)).
    layers: token threshold divisor (None: no threshold rule). blocks: module-name patterns selected in addition.
    """

    ratio: float = RIGParams.tac_ratio
    layers: int | None = RIGParams.tac_layers
    blocks: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not 0.0 <= self.ratio <= 1.0:
            raise ValueError(f"TAC ratio must be in [0, 1], got {self.ratio}")
        if self.layers is not None and self.layers < 1:
            raise ValueError(f"TAC layers must be a positive integer (or None), got {self.layers}")

    def selects(self, name: str, tokens: int, height: int, width: int) -> bool:
        if self.layers is not None and tokens * self.layers >= height * width:
            return True
        return any(fnmatch.fnmatchcase(name, p) or name.startswith(p.rstrip(".") + ".") for p in self.blocks)


@dataclass(frozen=True)
class SwapRows:
    """Rows [target, target+count) of the UNet batch take Query/Key from rows [source, source+count)."""

    source: int
    target: int
    count: int


def layer_sizes(latent_height: int, latent_width: int) -> dict[int, tuple[int, int]]:
    """Token count -> (h, w) of every UNet level (stride-2 convs with padding 1 give ceil(h / 2))."""
    sizes: dict[int, tuple[int, int]] = {}
    h, w = latent_height, latent_width
    while True:
        sizes.setdefault(h * w, (h, w))
        if h == 1 and w == 1:
            return sizes
        h, w = (h + 1) // 2, (w + 1) // 2


def foreground_from_pixels(images01: torch.Tensor) -> torch.Tensor:
    """Foreground = not (exactly black or exactly white in all channels). [N, 3, H, W] in [0, 1] -> bool [N, H, W]."""
    background = (images01 == 0).all(dim=1) | (images01 == 1).all(dim=1)
    return ~background


class ForegroundMask:
    """Self-attention restriction from a pixel foreground mask: background-to-background attention is blocked.

    For a layer of n tokens the mask is resized (nearest) from pixel resolution to that layer's (h, w); a query at a
    background position may then attend only to foreground keys, foreground queries attend everywhere. This is the
    published rule (a -1e6 bias on background-background logits) as a boolean SDPA mask; where a layer has no
    foreground at all the -1e6 bias would shift every logit equally, so such an image is left unmasked.
    Memory: one n x n boolean per UNet row at each resolution (about 150 MB per row at 768x1024's top level).
    """

    def __init__(self, foreground: torch.Tensor, latent_size: tuple[int, int]):
        if foreground.ndim != 3 or foreground.dtype != torch.bool:
            raise ValueError(
                f"foreground must be a bool tensor [N, H, W], got {foreground.dtype} {tuple(foreground.shape)}"
            )
        self.foreground = foreground
        self.sizes = layer_sizes(*latent_size)
        self._cache: dict[tuple[int, int], torch.Tensor] = {}

    def at_layer(self, tokens: int) -> torch.Tensor:
        """Foreground at a layer's resolution: bool [N, tokens]."""
        if tokens not in self.sizes:
            raise ValueError(f"no UNet level has {tokens} tokens (levels: {sorted(self.sizes, reverse=True)})")
        h, w = self.sizes[tokens]
        fg = F.interpolate(self.foreground[:, None].float(), size=(h, w), mode="nearest")
        return fg.view(fg.shape[0], h * w) > 0.5

    def allowed(self, tokens: int, rows: int) -> torch.Tensor:
        """bool [rows, 1, tokens, tokens]: True where attention is allowed; row r belongs to image r % N."""
        key = (tokens, rows)
        if key not in self._cache:
            fg = self.at_layer(tokens)
            n_img = fg.shape[0]
            if rows % n_img:
                raise ValueError(f"UNet batch of {rows} rows is not a whole number of groups of {n_img} images")
            allowed = fg[:, :, None] | fg[:, None, :] | ~fg.any(dim=1)[:, None, None]
            self._cache[key] = allowed[:, None].repeat(rows // n_img, 1, 1, 1)
        return self._cache[key]


class TACController:
    """Per-UNet-call instructions shared by all TAC processors, and a record of what they did."""

    def __init__(self, config: TACConfig = TACConfig()):
        self.config = config
        self.height = 0  # pixel size of the images being translated
        self.width = 0
        self.step: int | None = None
        self.rows: SwapRows | None = None
        self.mask: ForegroundMask | None = None
        self.record = True
        self.swaps: Counter[tuple[str, int]] = Counter()  # (layer name, step) -> number of UNet calls that swapped

    def reset(self, config: TACConfig | None = None, height: int = 0, width: int = 0) -> None:
        """Start a new translation: new settings, empty record, nothing active."""
        if config is not None:
            self.config = config
        self.height, self.width = height, width
        self.step, self.rows, self.mask = None, None, None
        self.swaps.clear()

    @contextlib.contextmanager
    def unet_call(
        self, step: int | None = None, rows: SwapRows | None = None, mask: ForegroundMask | None = None
    ) -> Iterator[None]:
        """Scope of one UNet evaluation: swap `rows` (if any) at denoising `step`, apply `mask` (if any)."""
        if rows is not None and (self.height <= 0 or self.width <= 0):
            raise RuntimeError("TACController.reset(config, height, width) must be called before swapping rows")
        self.step, self.rows, self.mask = step, rows, mask
        try:
            yield
        finally:
            self.step, self.rows, self.mask = None, None, None

    def swapped_layers(self) -> set[str]:
        return {name for name, _ in self.swaps}

    def swapped_steps(self) -> set[int]:
        return {step for _, step in self.swaps}


def _swap_rows(x: torch.Tensor, rows: SwapRows) -> torch.Tensor:
    """x with rows [target, target+count) replaced by rows [source, source+count) (a new tensor)."""
    s, t, c = rows.source, rows.target, rows.count
    return torch.cat([x[:t], x[s:s + c], x[t + c:]], dim=0)


class TACAttnProcessor:
    """SDPA attention (as diffusers' AttnProcessor2_0) plus TAC's Query/Key swap and the foreground mask.

    Only self-attention calls (no encoder_hidden_states) are ever changed; cross-attention passes through.
    """

    def __init__(self, controller: TACController, name: str):
        self.controller = controller
        self.name = name

    def __call__(
        self,
        attn,
        hidden_states: torch.Tensor,
        encoder_hidden_states: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        temb: torch.Tensor | None = None,
        *args,
        **kwargs,
    ) -> torch.Tensor:
        ctl = self.controller
        is_self = encoder_hidden_states is None
        residual = hidden_states
        if attn.spatial_norm is not None:
            hidden_states = attn.spatial_norm(hidden_states, temb)
        input_ndim = hidden_states.ndim
        if input_ndim == 4:
            batch_size, channel, height, width = hidden_states.shape
            hidden_states = hidden_states.view(batch_size, channel, height * width).transpose(1, 2)
        batch_size, sequence_length, _ = (
            hidden_states.shape if encoder_hidden_states is None else encoder_hidden_states.shape
        )
        if attention_mask is not None:
            attention_mask = attn.prepare_attention_mask(attention_mask, sequence_length, batch_size)
            attention_mask = attention_mask.view(batch_size, attn.heads, -1, attention_mask.shape[-1])
        if attn.group_norm is not None:
            hidden_states = attn.group_norm(hidden_states.transpose(1, 2)).transpose(1, 2)

        query = attn.to_q(hidden_states)
        if encoder_hidden_states is None:
            encoder_hidden_states = hidden_states
        elif attn.norm_cross:
            encoder_hidden_states = attn.norm_encoder_hidden_states(encoder_hidden_states)
        key = attn.to_k(encoder_hidden_states)
        value = attn.to_v(encoder_hidden_states)
        head_dim = key.shape[-1] // attn.heads
        query = query.view(batch_size, -1, attn.heads, head_dim).transpose(1, 2)
        key = key.view(batch_size, -1, attn.heads, head_dim).transpose(1, 2)
        value = value.view(batch_size, -1, attn.heads, head_dim).transpose(1, 2)
        if attn.norm_q is not None:
            query = attn.norm_q(query)
        if attn.norm_k is not None:
            key = attn.norm_k(key)

        if is_self:
            tokens = query.shape[2]
            if ctl.rows is not None and ctl.config.selects(self.name, tokens, ctl.height, ctl.width):
                query, key = _swap_rows(query, ctl.rows), _swap_rows(key, ctl.rows)
                if ctl.record:
                    ctl.swaps[(self.name, -1 if ctl.step is None else ctl.step)] += 1
            if ctl.mask is not None:
                allowed = ctl.mask.allowed(tokens, batch_size)
                if attention_mask is None:
                    attention_mask = allowed
                else:
                    attention_mask = torch.where(allowed, attention_mask, float("-inf"))

        hidden_states = F.scaled_dot_product_attention(
            query, key, value, attn_mask=attention_mask, dropout_p=0.0, is_causal=False, scale=attn.scale
        )
        hidden_states = hidden_states.transpose(1, 2).reshape(batch_size, -1, attn.heads * head_dim)
        hidden_states = hidden_states.to(query.dtype)
        hidden_states = attn.to_out[0](hidden_states)
        hidden_states = attn.to_out[1](hidden_states)
        if input_ndim == 4:
            hidden_states = hidden_states.transpose(-1, -2).reshape(batch_size, channel, height, width)
        if attn.residual_connection:
            hidden_states = hidden_states + residual
        return hidden_states / attn.rescale_output_factor


def _base_unet(unet):
    return getattr(unet, "_orig_mod", unet)  # the module behind torch.compile


def self_attention_layers(unet) -> list[str]:
    """Module names of the UNet's self-attention layers (attn1), in processor order."""
    return [n.removesuffix(".processor") for n in _base_unet(unet).attn_processors if n.endswith("attn1.processor")]


def install_tac(unet, controller: TACController) -> None:
    """Put a TACAttnProcessor on every attn1 layer; other layers keep their processors."""
    base = _base_unet(unet)
    procs = {}
    for name, proc in base.attn_processors.items():
        module = name.removesuffix(".processor")
        procs[name] = TACAttnProcessor(controller, module) if module.endswith("attn1") else proc
    base.set_attn_processor(procs)


def tac_installed(unet, controller: TACController) -> bool:
    return all(
        isinstance(p, TACAttnProcessor) and p.controller is controller
        for n, p in _base_unet(unet).attn_processors.items() if n.endswith("attn1.processor")
    )
