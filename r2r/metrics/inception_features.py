"""The FID Inception with its published weights: `InceptionFeatures(weights)(images) -> [N, 2048]`.

Apart from inception.py (the architecture alone) so that weights.py can build the untrained architecture for its
layout checks while this module loads the weights through it: imports go one way (inception <- weights <- here).
"""

from __future__ import annotations

import torch

from .identity import FeatureIdentity, tensors_sha256
from .inception import FEATURE_DIM, NETWORK, PROTOCOL, FIDInceptionV3
from .weights import INCEPTION, RANDOM, load_weights


class InceptionFeatures(FIDInceptionV3):
    """`InceptionFeatures(weights)(images) -> [N, 2048]`: the FID Inception with its weights.

    `weights`: a path, a state dict (the published layout) or `LoadedWeights`; None resolves the published file
    (torch hub cache, else a download when `allow_download`; see `r2r.metrics.weights`).
    """

    def __init__(self, weights=None, *, allow_download: bool = True):
        loaded = load_weights(INCEPTION, weights, allow_download=allow_download)
        with torch.device("meta"):  # no default initialisation (~0.7 s on 2 cores): every tensor is loaded below
            super().__init__()
        self.load_state_dict(loaded.state_dict, strict=True, assign=True)
        for module in self.modules():  # buffers a file may lack (num_batches_tracked, before torch 0.4.1)
            for name, buf in module.named_buffers(recurse=False):
                if buf is not None and buf.is_meta:
                    module.register_buffer(name, torch.zeros(buf.shape, dtype=buf.dtype))
        # channels-last convolutions: 1.35x faster on this project's 2-core CPU at batch 4-8 (0.089 against 0.120 s
        # per 768x1024 image), features within 1e-6 relative of the NCHW ones (summation order only)
        self.to(memory_format=torch.channels_last)
        self.sha256 = loaded.sha256
        self._tensors_digest = loaded.tensors_digest  # known for seeded random weights: not hashed again

    network = NETWORK
    protocol = PROTOCOL
    dim = FEATURE_DIM

    @property
    def identity(self):
        """`FeatureIdentity` for cache keys; seeded random weights are identified by their tensors' digest."""
        digest = self.sha256
        if digest == RANDOM:
            digest = self._tensors_digest or tensors_sha256(self.state_dict())
        return FeatureIdentity(NETWORK, digest, PROTOCOL, FEATURE_DIM)
