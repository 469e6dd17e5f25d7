"""SSIM (Wang et al. 2004) between two image batches, averaged over the valid region: one value per image pair.

Protocol: Gaussian window 11x11, sigma 1.5, K1 0.01, K2 0.03, data range 1 (images in [0, 1]), population
(co)variances, computed per RGB channel and averaged over channels and over every window position that lies
wholly inside the image (the 5-pixel border where the window would leave the image is not scored). That is
Wang et al.'s MATLAB code (filter2 'valid') and scikit-image's `structural_similarity(gaussian_weights=True,
sigma=1.5, use_sample_covariance=False, data_range=1)`.

Why not torchmetrics' SSIM (used where it fits, and in the benchmark): torchmetrics 1.9 reflect-pads the image and
averages over the padded border too, so its value differs from the reference definition; its full SSIM map,
cropped by 5 pixels, equals this one (benchmarks/parity_metrics.py measures both). Written here as a separable filter
(22 taps instead of 121) on each channel centred on its mean, which keeps float32 within ~1e-6
of a float64 computation: the variance terms E[x^2] - E[x]^2 cancel less when x is near 0.

Speed: the filter is memory-bound (about 127 passes over an image-sized map per pair), so on a CPU each image is
scored in stripes of `STRIPE_ROWS` output rows (plus the window's 10-row halo) whose maps stay in the cache
between passes, on one intra-op thread (the stripes' ops are small: two threads only wait for each other, and on a
shared machine far worse): 0.09 s per 768x1024 pair on this project's 2-core machine against 0.30-0.46 s for the
whole batch at once, and bit-identical to it (every output pixel is the same sequence of float operations; the map
is assembled before its mean). On a GPU the whole batch is one pass.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch


@dataclass(frozen=True)
class SSIMConfig:
    window: int = 11
    sigma: float = 1.5
    k1: float = 0.01
    k2: float = 0.03
    data_range: float = 1.0

    def as_dict(self) -> dict:
        return asdict(self)


def gaussian_window(size: int, sigma: float, dtype=torch.float64, device=None) -> torch.Tensor:
    """The normalised 1-D Gaussian, exp(-d^2 / (2 sigma^2)) for d = -(size//2)..size//2, as fspecial builds it."""
    d = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-(d * d) / (2 * sigma * sigma))
    return (g / g.sum()).to(dtype=dtype, device=device)


def _blur_valid(x: torch.Tensor, taps: list[float]) -> torch.Tensor:
    """Separable Gaussian filter of [..., H, W] at 'valid' positions only, as 2 x len(taps) scaled in-place adds of
    shifted views: memory-bound, and on CPU 3-4x faster than torch's depthwise convolution for these shapes."""
    k = len(taps)
    w = x.shape[-1] - k + 1
    rows = x[..., 0:w] * taps[0]
    for i in range(1, k):
        rows.add_(x[..., i:i + w], alpha=taps[i])
    h = rows.shape[-2] - k + 1
    out = rows[..., 0:h, :] * taps[0]
    for i in range(1, k):
        out.add_(rows[..., i:i + h, :], alpha=taps[i])
    return out


STRIPE_ROWS = 128  # CPU: output rows per stripe (measured best between 96 and 256 at 768x1024)


def _ssim_map(a: torch.Tensor, b: torch.Tensor, mean_a: torch.Tensor, mean_b: torch.Tensor, taps: list[float],
              c1: float, c2: float) -> torch.Tensor:
    """The SSIM map at the valid positions of centred images a, b (means added back for the luminance term)."""
    mu_a, mu_b = _blur_valid(a, taps), _blur_valid(b, taps)
    e_aa, e_bb, e_ab = _blur_valid(a * a, taps), _blur_valid(b * b, taps), _blur_valid(a * b, taps)
    var_a = e_aa - mu_a * mu_a
    var_b = e_bb - mu_b * mu_b
    cov = e_ab - mu_a * mu_b
    mu_x, mu_y = mu_a + mean_a, mu_b + mean_b
    return ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x * mu_x + mu_y * mu_y + c1) * (var_a + var_b + c2))


def ssim(x: torch.Tensor, y: torch.Tensor, config: SSIMConfig = SSIMConfig(), *,
         dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """SSIM of each pair: x, y [N, C, H, W], float in [0, data_range] or uint8 (read as 0..255 -> [0, 1]).

    Returns [N] (float64). H and W must be at least the window size.
    """
    if x.shape != y.shape or x.ndim != 4:
        raise ValueError(f"SSIM needs two [N, C, H, W] batches of one shape, got {tuple(x.shape)} and {tuple(y.shape)}")
    if min(x.shape[-2:]) < config.window:
        raise ValueError(f"SSIM needs images of at least {config.window}x{config.window} pixels, got "
                         f"{x.shape[-1]}x{x.shape[-2]}")
    data_range = config.data_range

    def prepare(t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        t = t.to(dtype) * (data_range / 255.0) if t.dtype == torch.uint8 else t.to(dtype)
        mean = t.mean(dim=(2, 3), keepdim=True)
        return t - mean, mean

    # Each channel is centred on its own mean: (co)variances are shift-invariant, the means are shifted back, and
    # E[a^2] - E[a]^2 then cancels far less in float32 (flat regions are where SSIM is most sensitive to it).
    (a, mean_a), (b, mean_b) = prepare(x), prepare(y)
    taps = gaussian_window(config.window, config.sigma).tolist()
    c1 = (config.k1 * data_range) ** 2
    c2 = (config.k2 * data_range) ** 2
    if a.device.type != "cpu":
        s = _ssim_map(a, b, mean_a, mean_b, taps, c1, c2)
    else:  # stripes of one image that stay in the cache, one thread (module docstring); the whole map's floats
        k = config.window
        rows = a.shape[-2] - k + 1
        s = torch.empty((*a.shape[:2], rows, a.shape[-1] - k + 1), dtype=a.dtype)
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            for n in range(a.shape[0]):
                for r0 in range(0, rows, STRIPE_ROWS):
                    r1 = min(r0 + STRIPE_ROWS, rows)
                    s[n:n + 1, :, r0:r1] = _ssim_map(a[n:n + 1, :, r0:r1 + k - 1], b[n:n + 1, :, r0:r1 + k - 1],
                                                     mean_a[n:n + 1], mean_b[n:n + 1], taps, c1, c2)
        finally:
            torch.set_num_threads(threads)
    return s.flatten(1).to(torch.float64).mean(dim=1)


__all__ = ["SSIMConfig", "gaussian_window", "ssim"]
