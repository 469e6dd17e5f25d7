"""DINOv2 features for FD_DINOv2 (Stein et al., NeurIPS 2023): images -> the final CLS token, through `transformers`.

Protocol (dgm-eval, the paper's code, `dgm_eval/models/dinov2.py` and `dataloaders.py`, read for this module):
- the image is read as RGB (PIL), resized to 224x224 with torchvision's `Resize((224, 224), BICUBIC)` on the PIL
  image, i.e. `PIL.Image.resize((224, 224), BICUBIC)` (antialiased bicubic; the aspect ratio is NOT kept: a
  768x1024 render is squeezed, not cropped), then `ToTensor` (/255) and ImageNet `Normalize((0.485, 0.456,
  0.406), (0.229, 0.224, 0.225))` (dgm-eval's default `clean_resize=False`);
- the network is torch hub's `dinov2_vit*14`; its forward is `head(x_norm_clstoken)` with an identity head: the
  CLS token of the last block after the final LayerNorm, not L2-normalised (`get_representations(...,
  normalized=False)`). transformers' `Dinov2Model(...).pooler_output` is the same tensor;
- the hub model resamples its 37x37 position embeddings (trained at 518) to the 16x16 grid of a 224 input by
  bicubic `F.interpolate(scale_factor=(16 + 0.1) / 37, antialias=False)` (its `interpolate_offset` 0.1);
  transformers interpolates to `size=(16, 16)` instead, which samples at slightly different positions. The hub's
  rule is applied here once at load time (`hub_position_embeddings`), so features follow the hub model.
Stein et al. report FD_DINOv2 with ViT-L/14 (dgm-eval's default arch); the default here is ViT-B/14
(`facebook/dinov2-base`, 768-d), and `DINOV2_LARGE` (1024-d) is the paper's. Differences from dgm-eval that remain:
images given as float in [0, 1] are rounded to 8 bits first (as writing them to PNG would); `resize="torch"` swaps
PIL for an antialiased bicubic in torch (another protocol string). DINOv2 in float32 only.

Weights through hf_vit.py (folder, Hugging Face cache, or download when allowed; safetensors only; sha256
recorded). This module must not read images from disk nor compute distances.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .hf_vit import NetworkSpec, ViTFeatures
from .preprocess import IMAGENET_MEAN, IMAGENET_STD, check_images, normalize, resize

INPUT_SIZE = 224
INTERPOLATE_OFFSET = 0.1  # the DINOv2 hub models' `interpolate_offset`
PROTOCOL = ("dgm-eval-dinov2/v1: {resize} bicubic 224x224 (aspect not kept), /255, ImageNet mean/std; "
            "CLS token after the final LayerNorm (unnormalised); position embeddings by the hub rule (offset 0.1)")

_DINOV2_RENAMES = (  # transformers 4.x names (the published files) -> transformers 5 module names
    ("attention.attention.query", "attention.q_proj"),
    ("attention.attention.key", "attention.k_proj"),
    ("attention.attention.value", "attention.v_proj"),
    ("attention.output.dense", "attention.o_proj"),
)
_ARCH = dict(mlp_ratio=4, image_size=518, patch_size=14, layer_norm_eps=1e-6, layerscale_value=1.0,
             hidden_act="gelu", qkv_bias=True, use_swiglu_ffn=False)

DINOV2_BASE = NetworkSpec(
    what="DINOv2 ViT-B/14", repo_id="facebook/dinov2-base", config_class="Dinov2Config", model_class="Dinov2Model",
    published_config=dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, **_ARCH),
    renames=_DINOV2_RENAMES,
)
DINOV2_LARGE = NetworkSpec(
    what="DINOv2 ViT-L/14", repo_id="facebook/dinov2-large", config_class="Dinov2Config", model_class="Dinov2Model",
    published_config=dict(hidden_size=1024, num_hidden_layers=24, num_attention_heads=16, **_ARCH),
    renames=_DINOV2_RENAMES,
)
_NAMES = {(384, 12): "dinov2-vits14", (768, 12): "dinov2-vitb14", (1024, 24): "dinov2-vitl14",
          (1536, 40): "dinov2-vitg14"}


def hub_position_embeddings(pos: torch.Tensor, grid: int, offset: float = INTERPOLATE_OFFSET) -> torch.Tensor:
    """[1, 1 + M*M, D] position embeddings -> [1, 1 + grid*grid, D] as DINOv2's hub `interpolate_pos_encoding`
    does for a square input: bicubic, scale factor (grid + offset) / M, no antialiasing, in float32."""
    n = pos.shape[1] - 1
    m = int(math.isqrt(n))
    if m * m != n:
        raise ValueError(f"position embeddings for {n} patches are not a square grid")
    if m == grid:
        return pos
    dim = pos.shape[-1]
    patch = pos[:, 1:].float().reshape(1, m, m, dim).permute(0, 3, 1, 2)
    scale = (grid + offset) / m
    patch = F.interpolate(patch, scale_factor=(scale, scale), mode="bicubic", antialias=False)
    if tuple(patch.shape[-2:]) != (grid, grid):
        raise ValueError(f"position embedding resampling gave {tuple(patch.shape[-2:])}, expected {(grid, grid)}")
    patch = patch.permute(0, 2, 3, 1).reshape(1, grid * grid, dim)
    return torch.cat([pos[:, :1].float(), patch], dim=1).to(pos.dtype)


class DINOv2Features(ViTFeatures):
    """`DINOv2Features(weights)(images) -> [N, D]` (768 for ViT-B/14): the FD_DINOv2 representation.

    images: [N, 3, H, W] uint8, or float in [0, 1], any size. `weights`: a Hub snapshot folder, a `.safetensors`
    file, a state dict in the published layout (with `config` for a non-published architecture), or None for
    the Hugging Face cache of `spec.repo_id` (downloaded when `allow_download`). `resize`: "pil" (dgm-eval's, byte
    for byte) or "torch" (antialiased bicubic in torch; GPU-friendly; a different protocol).
    """

    PROTOCOL = PROTOCOL

    def __init__(self, weights=None, *, config=None, spec: NetworkSpec = DINOV2_BASE, resize: str = "pil",
                 revision: str | None = None, allow_download: bool = True):
        super().__init__(spec, weights, config=config, resize=resize, revision=revision,
                         allow_download=allow_download)
        cfg = self.model.config
        grid = INPUT_SIZE // cfg.patch_size
        emb = self.model.embeddings
        emb.position_embeddings = nn.Parameter(hub_position_embeddings(emb.position_embeddings.data, grid),
                                               requires_grad=False)
        self.network = _NAMES.get((cfg.hidden_size, cfg.num_hidden_layers),
                                  f"dinov2-custom-{cfg.hidden_size}x{cfg.num_hidden_layers}-p{cfg.patch_size}")
        self.freeze()

    @property
    def dim(self) -> int:
        return int(self.model.config.hidden_size)

    def preprocess(self, images: torch.Tensor) -> torch.Tensor:
        check_images(images)
        x = resize(images, (INPUT_SIZE, INPUT_SIZE), self.resize)
        device = next(self.model.parameters()).device
        return normalize(x.to(device), IMAGENET_MEAN, IMAGENET_STD)

    @torch.inference_mode()
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        out = self.model(pixel_values=self.preprocess(images))
        return out.pooler_output.float()


__all__ = ["DINOV2_BASE", "DINOV2_LARGE", "DINOv2Features", "INPUT_SIZE", "hub_position_embeddings"]
