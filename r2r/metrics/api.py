"""The metrics as plain functions on in-memory images, for a training loop or a notebook.

    from r2r.metrics import api
    api.kid(real_images, fake_images)                  # KIDResult(mean, std, subset_size, ...) on Inception
    api.fid(real_images, fake_images, network="dinov2")  # FD_DINOv2
    api.precision_recall(real_feats, fake_feats)       # features ([N, D]) work wherever images do
    api.lpips(x, y), api.ssim(x, y)                    # [N] per pair
    api.features(images, network="clip")               # [N, 512]

Images: a tensor [N, 3, H, W] (uint8, or float in [0, 1]) or a list of PIL images (any sizes: consecutive images
of one size are batched). The protocols are the CLI's (`r2r evaluate`): Inception with the TF1 bilinear resize to
299 (inception.py), DINOv2 as dgm-eval, CLIP as clean-fid (dinov2.py, clip.py). `network` is a name ("inception",
"dinov2" = ViT-B/14, "dinov2-large" = ViT-L/14 as in Stein et al., "clip") resolved once per process from the
published weights (hub caches; downloads when `allow_download`), or an extractor you built (e.g. with random
weights: `InceptionFeatures(random_state_dict(INCEPTION))`). Reference features that should be computed once belong
in stats_cache.py. This module holds no metric maths of its own; it must not write files.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from .frechet import FeatureStats, frechet_distance
from .kid import KIDConfig, KIDResult, kid_subsets
from .knn_pr import K, PRResult
from .knn_pr import precision_recall as _precision_recall
from .ssim import SSIMConfig
from .ssim import ssim as _ssim

NETWORKS = ("inception", "dinov2", "dinov2-large", "clip")
BATCH_SIZE = 16


@functools.lru_cache(maxsize=8)
def load_network(name: str = "inception", weights: str | None = None, *, allow_download: bool = True,
                 resize: str = "pil") -> nn.Module:
    """The feature extractor `name` with its published weights (or `weights`, a path), built once per process.

    `resize` applies to dinov2 and clip ("pil": the reference tools' bytes; "torch": antialiased, GPU-friendly)."""
    if name == "inception":
        from .inception_features import InceptionFeatures

        return InceptionFeatures(weights, allow_download=allow_download)
    if name in ("dinov2", "dinov2-large"):
        from .dinov2 import DINOV2_BASE, DINOV2_LARGE, DINOv2Features

        spec = DINOV2_LARGE if name == "dinov2-large" else DINOV2_BASE
        return DINOv2Features(weights, spec=spec, resize=resize, allow_download=allow_download)
    if name == "clip":
        from .clip import CLIPFeatures

        return CLIPFeatures(weights, resize=resize, allow_download=allow_download)
    raise ValueError(f"network must be one of {NETWORKS} or an extractor module, got {name!r}")


@functools.lru_cache(maxsize=2)
def load_lpips(allow_download: bool = True) -> nn.Module:
    from .lpips import LPIPS

    return LPIPS(allow_download=allow_download)


def _extractor(network: str | nn.Module) -> nn.Module:
    return load_network(network) if isinstance(network, str) else network


def _device(module: nn.Module) -> torch.device:
    p = next(module.parameters(), None)
    return p.device if p is not None else torch.device("cpu")


def as_batches(images, batch_size: int = BATCH_SIZE):
    """Yield [n, 3, H, W] tensors of at most `batch_size` images from a tensor or a list of PIL images."""
    if isinstance(images, torch.Tensor):
        if images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f"expected images [N, 3, H, W], got {tuple(images.shape)}")
        for i in range(0, images.shape[0], batch_size):
            yield images[i:i + batch_size]
        return
    if not isinstance(images, Sequence):
        raise TypeError(f"expected a tensor [N, 3, H, W] or a list of PIL images, got {type(images).__name__}")
    run: list[torch.Tensor] = []
    for i, img in enumerate(images):
        if not hasattr(img, "convert"):
            raise TypeError(f"item {i}: expected a PIL image, got {type(img).__name__}")
        t = torch.from_numpy(np.asarray(img.convert("RGB")).copy()).permute(2, 0, 1)
        if run and (t.shape != run[0].shape or len(run) == batch_size):
            yield torch.stack(run)
            run = []
        run.append(t)
    if run:
        yield torch.stack(run)


def features(images, network: str | nn.Module = "inception", *, batch_size: int = BATCH_SIZE) -> torch.Tensor:
    """[N, D] float32 features (on the CPU) of images (tensor or PIL list) in the network's feature space."""
    net = _extractor(network)
    device = _device(net)
    out = [net(batch.to(device)).float().cpu() for batch in as_batches(images, batch_size)]
    if not out:
        raise ValueError("no images")
    return torch.cat(out)


def _features_or_images(x, network, batch_size: int) -> torch.Tensor:
    if isinstance(x, torch.Tensor) and x.ndim == 2:
        return x
    return features(x, network, batch_size=batch_size)


def kid(real, fake, network: str | nn.Module = "inception", *, config: KIDConfig = KIDConfig(),
        batch_size: int = BATCH_SIZE) -> KIDResult:
    """KID (torch-fidelity 0.3.0's protocol, kid.py) of fake against real: images, or [N, D] features.

    `result.subset_size` is the subset size used: min(config.subset_size, n_real, n_fake)."""
    return kid_subsets(_features_or_images(real, network, batch_size), _features_or_images(fake, network, batch_size),
                       config)


def fid(real, fake, network: str | nn.Module = "inception", *, method: str = "auto",
        batch_size: int = BATCH_SIZE) -> float:
    """Frechet distance (frechet.py) of fake against real: images, [N, D] features, or `FeatureStats`."""
    def side(x):
        return x if isinstance(x, FeatureStats) else _features_or_images(x, network, batch_size)

    return frechet_distance(side(real), side(fake), method=method)


def precision_recall(real, fake, network: str | nn.Module = "inception", *, k: int = K,
                     batch_size: int = BATCH_SIZE) -> PRResult:
    """Improved precision and recall (knn_pr.py, k = 3) of fake against real: images or [N, D] features."""
    return _precision_recall(_features_or_images(real, network, batch_size),
                             _features_or_images(fake, network, batch_size), k)


def _pairs(x, y, batch_size: int):
    xs, ys = list(as_batches(x, batch_size)), list(as_batches(y, batch_size))
    if [t.shape for t in xs] != [t.shape for t in ys]:
        raise ValueError("x and y must hold the same number of images, pairwise of one size")
    return zip(xs, ys)


def lpips(x, y, *, network: nn.Module | None = None, batch_size: int = 8) -> torch.Tensor:
    """[N] LPIPS v0.1 (AlexNet) between paired images (lpips.py); `network`: an `LPIPS` you built."""
    net = network if network is not None else load_lpips()
    device = _device(net)
    return torch.cat([net(a.to(device), b.to(device)).float().cpu() for a, b in _pairs(x, y, batch_size)])


def ssim(x, y, *, config: SSIMConfig = SSIMConfig(), batch_size: int = 8) -> torch.Tensor:
    """[N] SSIM (Gaussian 11 / 1.5, valid region; ssim.py) between paired images (tensors or PIL lists)."""
    return torch.cat([_ssim(a, b, config) for a, b in _pairs(x, y, batch_size)])


__all__ = ["NETWORKS", "as_batches", "features", "fid", "kid", "load_lpips", "load_network", "lpips",
           "precision_recall", "ssim"]
