"""Float32 CPU convolutions without oneDNN's per-call weight re-layout, for the UNet calls of RIG on a CPU.

Why: on a CPU, PyTorch's default convolution (oneDNN) re-lays out the weights of every convolution on every call.
That cost is per call, not per image: the SD UNet's low-resolution levels (1280 channels on a few dozen pixels) are
mostly weights and little arithmetic, so at 256x256 a batch-1 UNet call cost 2.8-3.3 CPU s per row with oneDNN
against 2.0-2.4 with PyTorch's other CPU convolution (thnn: im2col + gemm, used when `torch.backends.mkldnn` is off),
whose cost per row hardly depends on the batch (benchmarks/bench_translate_unet.py; docs/PERFORMANCE.md). RIG's exact
mode calls the UNet with 1 to 3 rows, where the re-layout hurts most. thnn was the faster at every batch measured
(1 to 4) with 1 and with 2 threads; a hand-written unfold + one BLAS product per image (spread over every thread)
was tried too, and was slower than thnn in every case, so PyTorch's own path is used.

The arithmetic is float32 convolution with another summation order (~2e-6 from oneDNN on the UNet's output), so
exact mode stays exact (tests/test_r2r_exact.py). The switch is process-wide while inside: convolutions on other
threads at that moment take thnn too (same results up to rounding).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch


@contextlib.contextmanager
def cpu_conv_im2col(on: bool = True) -> Iterator[None]:
    """Inside (when `on`): CPU convolutions take thnn's im2col + gemm (oneDNN off); restored on the way out."""
    if not on:
        yield
        return
    before = torch.backends.mkldnn.set_flags(False, None, None, None)[0]
    try:
        yield
    finally:
        torch.backends.mkldnn.set_flags(before, None, None, None)
