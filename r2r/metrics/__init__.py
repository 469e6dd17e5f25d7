"""The paper's evaluation metrics in plain torch: KID to real photos, LPIPS and SSIM to the rendered source.

- `InceptionFeatures(weights)`: [N, 3, H, W] (uint8, or float in [0, 1]) -> [N, 2048] FID Inception pool features
- `kid_from_features(real, fake, subsets=100, subset_size=1000, seed=2020) -> (mean, std)` (raw; x1000 is display)
- `LPIPS(alexnet=..., heads=...)(x, y) -> [N]`, x, y float [N, 3, H, W] in [0, 1]
- `ssim(x, y) -> [N]` (Gaussian 11 / 1.5, data range 1, valid region)
- `weights`: the published files (paths, torch hub cache, download), `random_state_dict` for tests

Written by hand because torch-fidelity, lpips, pytorch-fid and torchmetrics' LPIPS/KID backbones import
torchvision, which does not load beside this project's CPU torch; benchmarks/parity_metrics.py measures the
agreement with those packages. This package reads weight files only; images come from `loaders`.
"""

from .inception import FEATURE_DIM, INPUT_SIZE, FIDInceptionV3, InceptionFeatures, tf1_bilinear_resize
from .kid import KIDConfig, KIDResult, kid_from_features, kid_subsets
from .lpips import LPIPS, LPIPSHeads
from .alexnet import AlexNetTrunk
from .ssim import SSIMConfig, ssim
from .weights import (
    ALEXNET,
    INCEPTION,
    LPIPS_ALEX_HEADS,
    SPECS,
    LoadedWeights,
    WeightSpec,
    load_weights,
    random_state_dict,
    random_weights,
    save_state_dict,
)

__all__ = [
    "ALEXNET",
    "AlexNetTrunk",
    "FEATURE_DIM",
    "FIDInceptionV3",
    "INCEPTION",
    "INPUT_SIZE",
    "InceptionFeatures",
    "KIDConfig",
    "KIDResult",
    "LPIPS",
    "LPIPSHeads",
    "LPIPS_ALEX_HEADS",
    "LoadedWeights",
    "SPECS",
    "SSIMConfig",
    "WeightSpec",
    "kid_from_features",
    "kid_subsets",
    "load_weights",
    "random_state_dict",
    "random_weights",
    "save_state_dict",
    "ssim",
    "tf1_bilinear_resize",
]
