"""LPIPS v0.1 with the AlexNet trunk: a learned perceptual distance between two images (0 = identical).

The paper measures texture preservation as LPIPS between each translated image and its rendered source. Protocol
of the lpips package (v0.1, net="alex"): inputs in [0, 1] are mapped to [-1, 1], then through its ScalingLayer
((x - shift) / scale with fixed per-channel constants); the five ReLU outputs of both images are unit-normalised
along channels (eps 1e-10), their squared difference is weighted per channel by the linear heads (1x1 convs, no
bias), averaged over space and summed over the five layers.

Hand-written because lpips (and torchmetrics' LPIPS) import torchvision, which does not load here. Parameter names
follow lpips' published heads file (`lin0.model.1.weight`, ... in `weights/v0.1/alex.pth`) and torchvision's
AlexNet (`features.0.weight`, ...); both architectures live in alexnet.py, their files in weights.py.
"""

from __future__ import annotations

import torch
from torch import nn

from .alexnet import AlexNetTrunk, LPIPSHeads
from .weights import ALEXNET, LPIPS_ALEX_HEADS, load_weights

# lpips' ScalingLayer constants (ImageNet statistics expressed for inputs in [-1, 1]).
SHIFT = (-0.030, -0.088, -0.188)
SCALE = (0.458, 0.448, 0.450)
NORM_EPS = 1e-10


class LPIPS(nn.Module):
    """`LPIPS(alexnet=..., heads=...)(x, y) -> [N]` for x, y float [N, 3, H, W] in [0, 1] (or uint8 0..255).

    `alexnet` / `heads`: a path to a file or a state dict in the published layouts (torchvision's AlexNet,
    lpips' v0.1 `alex.pth`); None resolves the published file (explicit path, torch hub cache, or a download
    when allowed; see `r2r.metrics.weights`).
    """

    def __init__(self, alexnet=None, heads=None, *, allow_download: bool = True):
        super().__init__()
        self.trunk = AlexNetTrunk(load_weights(ALEXNET, alexnet, allow_download=allow_download).state_dict)
        self.heads = LPIPSHeads(load_weights(LPIPS_ALEX_HEADS, heads, allow_download=allow_download).state_dict)
        self.register_buffer("shift", torch.tensor(SHIFT).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("scale", torch.tensor(SCALE).view(1, 3, 1, 1), persistent=False)
        self.requires_grad_(False)
        self.eval()

    def _normalise(self, x: torch.Tensor) -> torch.Tensor:
        x = x.float() / 255.0 if x.dtype == torch.uint8 else x.float()
        return ((2 * x - 1) - self.shift) / self.scale

    @torch.inference_mode()
    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if x.shape != y.shape or x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"LPIPS needs two [N, 3, H, W] batches of one shape, got {tuple(x.shape)} and "
                             f"{tuple(y.shape)}")
        n = x.shape[0]
        feats = self.trunk(torch.cat([self._normalise(x), self._normalise(y)]))  # one trunk pass for both
        total = torch.zeros(n, 1, 1, 1, device=x.device)
        for i, f in enumerate(feats):
            f = f / (torch.sqrt(torch.sum(f * f, dim=1, keepdim=True)) + NORM_EPS)
            diff = (f[:n] - f[n:]) ** 2
            total = total + self.heads[i](diff).mean(dim=(2, 3), keepdim=True)
        return total.flatten()
