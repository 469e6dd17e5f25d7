"""CLIP ViT-B/32 image features for CLIP-FID / CLIP-KID (clean-fid's `clip_vit_b_32`), through `transformers`.

Protocol (clean-fid, `cleanfid/clip_features.py` and `fid.py`, read for this module):
- `img_preprocess_clip`: the RGB uint8 image goes through PIL: torchvision `Resize(224, BICUBIC)` (the SHORTER
  side to 224, the longer to `int(224 * long / short)`, PIL's antialiased bicubic) then `CenterCrop(224)`
  (offsets `int(round((H - 224) / 2))`): a 768x1024 render becomes 224x298 and loses 37 rows top and bottom;
  the result is kept as uint8;
- `CLIP_fx`: x / 255, CLIP's `Normalize((0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258,
  0.27577711))`, then OpenAI CLIP's `model.encode_image`: the CLS token after `ln_post`, times the projection
  `proj`: the 512-d projected embedding, not L2-normalised. transformers' `CLIPVisionModelWithProjection(...)
  .image_embeds` (`visual_projection(post_layernorm(CLS))`) is the same tensor from the same weights
  (`openai/clip-vit-base-patch32` is the conversion of OpenAI's ViT-B/32).
Differences that remain: OpenAI's `clip.load` keeps fp16 weights on a GPU, so clean-fid's CLIP features on CUDA
are half precision; here they are float32 everywhere. Float images in [0, 1] are rounded to 8 bits first;
`resize="torch"` replaces PIL with an antialiased bicubic in torch (another protocol string).

Weights through hf_vit.py (only the vision tower and `visual_projection` are read from the CLIPModel checkpoint).
This module must not read images from disk nor compute distances.
"""

from __future__ import annotations

import torch

from .hf_vit import NetworkSpec, ViTFeatures
from .preprocess import CLIP_MEAN, CLIP_STD, center_crop, check_images, normalize, resize, short_side_size

INPUT_SIZE = 224
PROTOCOL = ("clean-fid-clip/v1: {resize} bicubic shorter side 224, center crop 224, /255, CLIP mean/std; "
            "projected image embedding (unnormalised), float32")

CLIP_VIT_B32 = NetworkSpec(
    what="CLIP ViT-B/32 image encoder", repo_id="openai/clip-vit-base-patch32",
    config_class="CLIPVisionConfig", model_class="CLIPVisionModelWithProjection",
    published_config=dict(hidden_size=768, intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12,
                          image_size=224, patch_size=32, projection_dim=512, hidden_act="quick_gelu",
                          layer_norm_eps=1e-5),
    keep_prefixes=("vision_model.", "visual_projection."),
    ignore_suffixes=("position_ids",),
)


class CLIPFeatures(ViTFeatures):
    """`CLIPFeatures(weights)(images) -> [N, 512]`: clean-fid's CLIP-FID representation.

    images: [N, 3, H, W] uint8, or float in [0, 1], any size (at least 224 after the short-side resize, always).
    `weights`: a Hub snapshot folder of the CLIPModel (or a vision-only one), a `.safetensors` file, a state dict
    in the published layout (with `config` for another architecture), or None for the Hugging Face cache of
    `openai/clip-vit-base-patch32` (downloaded when `allow_download`). `resize`: "pil" (clean-fid's) or "torch".
    """

    PROTOCOL = PROTOCOL

    def __init__(self, weights=None, *, config=None, spec: NetworkSpec = CLIP_VIT_B32, resize: str = "pil",
                 revision: str | None = None, allow_download: bool = True):
        super().__init__(spec, weights, config=config, resize=resize, revision=revision,
                         allow_download=allow_download)
        cfg = self.model.config
        if cfg.image_size != INPUT_SIZE:
            raise ValueError(f"{self.origin}: CLIP image_size {cfg.image_size}; this protocol feeds {INPUT_SIZE}")
        published = (768, 32, 12, 512)
        shape = (cfg.hidden_size, cfg.patch_size, cfg.num_hidden_layers, cfg.projection_dim)
        self.network = "clip-vit-b32" if shape == published else "clip-custom-{}x{}-p{}-proj{}".format(
            cfg.hidden_size, cfg.num_hidden_layers, cfg.patch_size, cfg.projection_dim)
        self.freeze()

    @property
    def dim(self) -> int:
        return int(self.model.config.projection_dim)

    def preprocess(self, images: torch.Tensor) -> torch.Tensor:
        check_images(images)
        x = resize(images, short_side_size(images.shape[-2], images.shape[-1], INPUT_SIZE), self.resize)
        x = center_crop(x, INPUT_SIZE)
        device = next(self.model.parameters()).device
        return normalize(x.to(device), CLIP_MEAN, CLIP_STD)

    @torch.inference_mode()
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.model(pixel_values=self.preprocess(images)).image_embeds.float()


__all__ = ["CLIPFeatures", "CLIP_VIT_B32", "INPUT_SIZE"]
