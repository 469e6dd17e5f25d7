"""The paper's evaluation metrics in plain torch, and the modern ones beside them: KID/FID/FD_DINOv2/CLIP-FID, improved
precision and recall, LPIPS and SSIM.

Building blocks (features in, numbers out):
- `InceptionFeatures(weights)`: [N, 3, H, W] (uint8, or float in [0, 1]) -> [N, 2048] FID Inception pool features
- `DINOv2Features(weights)` -> [N, 768] (dgm-eval's FD_DINOv2 protocol), `CLIPFeatures(weights)` -> [N, 512]
  (clean-fid's CLIP-FID); each extractor's `.identity` (network, weights sha256, protocol) keys cached statistics
- `kid_from_features(real, fake, subsets=100, subset_size=1000, seed=2020) -> (mean, std)` (raw; x1000 is display);
  `kid_subsets` -> `KIDResult` with the subset size used
- `frechet_distance(a, b)` on [N, D] features or `FeatureStats` (pytorch-fid's formula, float64); `fd_bootstrap`
- `precision_recall(real, fake)` -> `PRResult` (Kynkäänniemi et al., k = 3; features, or images via a network)
- `per_category(real, fake, metric="kid"|"fd")`: per category n, value, spread, `trusted` (n >= min_n); no average
- `LPIPS(alexnet=..., heads=...)(x, y) -> [N]`, x, y float [N, 3, H, W] in [0, 1]
- `ssim(x, y) -> [N]` (Gaussian 11 / 1.5, data range 1, valid region)
- `stats_cache`: reference features computed once (`StatsKey`, `load_or_compute`, `save_stats_file`,
  `load_stats_file`), keyed by image content hashes, network, weights sha256 and protocol
- `weights`: the published files (paths, torch hub cache, download), `random_state_dict` for tests; `hf_vit`: the
  same for the `transformers` networks (DINOv2, CLIP)
In-memory use (training loops): `api` (`api.kid`, `api.fid`, `api.precision_recall`, `api.lpips`, `api.ssim`,
`api.features`) takes image tensors or PIL lists and a network name; `features`, `fid` and `precision_recall` are
also exported here (`kid`, `lpips` and `ssim` name the modules / the low-level function here, so use `api.` for them).

Written by hand because torch-fidelity, lpips, pytorch-fid, torchmetrics' LPIPS/KID backbones, timm and open_clip
import torchvision, which does not load beside this project's CPU torch; benchmarks/parity_metrics.py measures the
agreement with those packages. This package reads weight files and statistics files only; images come from
`loaders`.
"""

from . import api
from .alexnet import AlexNetTrunk, LPIPSHeads
from .api import features, fid, precision_recall
from .clip import CLIP_VIT_B32, CLIPFeatures
from .dinov2 import DINOV2_BASE, DINOV2_LARGE, DINOv2Features
from .frechet import FDBootstrap, FeatureStats, fd_bootstrap, frechet_distance
from .identity import FeatureIdentity
from .inception import FEATURE_DIM, INPUT_SIZE, FIDInceptionV3, tf1_bilinear_resize
from .inception_features import InceptionFeatures
from .kid import KIDConfig, KIDResult, kid_from_features, kid_subsets
from .knn_pr import PRResult
from .lpips import LPIPS
from .per_category import CategoryConfig, per_category
from .ssim import SSIMConfig, ssim
from .stats_cache import StatsFileError, StatsKey, load_or_compute, load_stats_file, save_stats_file
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
    "CLIPFeatures",
    "CLIP_VIT_B32",
    "CategoryConfig",
    "DINOV2_BASE",
    "DINOV2_LARGE",
    "DINOv2Features",
    "FDBootstrap",
    "FEATURE_DIM",
    "FIDInceptionV3",
    "FeatureIdentity",
    "FeatureStats",
    "INCEPTION",
    "INPUT_SIZE",
    "InceptionFeatures",
    "KIDConfig",
    "KIDResult",
    "LPIPS",
    "LPIPSHeads",
    "LPIPS_ALEX_HEADS",
    "LoadedWeights",
    "PRResult",
    "SPECS",
    "SSIMConfig",
    "StatsFileError",
    "StatsKey",
    "WeightSpec",
    "api",
    "fd_bootstrap",
    "features",
    "fid",
    "frechet_distance",
    "kid_from_features",
    "kid_subsets",
    "load_or_compute",
    "load_stats_file",
    "load_weights",
    "per_category",
    "precision_recall",
    "random_state_dict",
    "random_weights",
    "save_state_dict",
    "save_stats_file",
    "ssim",
    "tf1_bilinear_resize",
]
