"""AlexNet's convolutional trunk (torchvision's `alexnet().features`), returning the five ReLU outputs LPIPS uses.

Hand-written in plain torch because torchvision does not load beside the CPU torch this project installs. The
parameter names are torchvision's (`features.0.weight`, `features.3.weight`, ...), so the published ImageNet file
(`alexnet-owt-7be5be79.pth`) loads; its classifier is not part of the trunk and is dropped by the loader
(weights.py). This module does no file I/O.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

# torchvision's features Sequential: (index, in, out, kernel, stride, padding) of each conv; a ReLU follows each
# conv, and max pools (3, stride 2) sit at indices 2, 5 and 12.
CONVS: tuple[tuple[int, int, int, int, int, int], ...] = (
    (0, 3, 64, 11, 4, 2),
    (3, 64, 192, 5, 1, 2),
    (6, 192, 384, 3, 1, 1),
    (8, 384, 256, 3, 1, 1),
    (10, 256, 256, 3, 1, 1),
)
CHANNELS: tuple[int, ...] = tuple(c[2] for c in CONVS)  # channels of relu1..relu5: 64, 192, 384, 256, 256


class AlexNetTrunk(nn.Module):
    """x (already normalised) -> [relu1, relu2, relu3, relu4, relu5], the slices lpips' `alexnet` returns."""

    def __init__(self, weights: dict[str, torch.Tensor] | None = None):
        super().__init__()
        layers: list[nn.Module] = []
        for index, c_in, c_out, k, s, p in CONVS:
            while len(layers) < index:
                layers.append(nn.Identity())  # ReLU / pool slots keep torchvision's indices
            layers.append(nn.Conv2d(c_in, c_out, k, stride=s, padding=p))
        self.features = nn.Sequential(*layers)
        if weights is not None:
            self.load_state_dict(weights, strict=True)
        self.requires_grad_(False)
        self.eval()

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        f = self.features
        relu1 = F.relu(f[0](x))
        relu2 = F.relu(f[3](F.max_pool2d(relu1, 3, stride=2)))
        relu3 = F.relu(f[6](F.max_pool2d(relu2, 3, stride=2)))
        relu4 = F.relu(f[8](relu3))
        relu5 = F.relu(f[10](relu4))
        return [relu1, relu2, relu3, relu4, relu5]


class LinearHead(nn.Module):
    """One layer's channel weights; `model.1` because lpips' head is Sequential(Dropout, Conv2d)."""

    def __init__(self, channels: int):
        super().__init__()
        self.model = nn.Sequential(nn.Identity(), nn.Conv2d(channels, 1, 1, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class LPIPSHeads(nn.Module):
    def __init__(self, weights: dict[str, torch.Tensor] | None = None):
        super().__init__()
        for i, c in enumerate(CHANNELS):
            self.add_module(f"lin{i}", LinearHead(c))
        if weights is not None:
            self.load_state_dict(weights, strict=True)

    def __getitem__(self, i: int) -> LinearHead:
        return getattr(self, f"lin{i}")
