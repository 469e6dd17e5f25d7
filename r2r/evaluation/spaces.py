"""The feature spaces `r2r evaluate` can score in, and how each one's network is loaded for a run.

A space is a name (`--features inception,dinov2,clip`), a feature extractor from r2r.metrics and the record of its
weights that the JSON's protocol cites:
- `inception`: the FID Inception v3 (2048-d), the paper's KID and FID: always scored, the top-level KID fields;
- `dinov2`: DINOv2 ViT-B/14 CLS features (768-d) as dgm-eval's FD_DINOv2 (Stein et al., NeurIPS 2023);
- `clip`: CLIP ViT-B/32 projected image embeddings (512-d) as clean-fid's CLIP-FID.
Weights: an explicit file or folder (`--inception-weights`, `--dinov2-weights`, `--clip-weights`), else the
torch hub / Hugging Face cache, else a download when allowed; `--random-weights` gives every network whose weights
were not named seeded random weights in its published layout (for tests: numbers meaningless, and labelled so).
Each extractor's `identity` (network, weights digest, preprocessing) keys the reference-statistics cache. This
module loads networks; it reads no image and computes no metric.
"""

from __future__ import annotations

from dataclasses import dataclass

SPACES = ("inception", "dinov2", "clip")
DEFAULT_SPACE = "inception"
WHAT = {
    "inception": "FID Inception v3 (TensorFlow 2015-12-05) 2048-d pool features (FID / KID, the paper's)",
    "dinov2": "DINOv2 ViT-B/14 CLS token after the final LayerNorm, 768-d (dgm-eval's FD_DINOv2 representation)",
    "clip": "CLIP ViT-B/32 projected image embedding, 512-d (clean-fid's CLIP-FID representation)",
}
# random-weight seeds: --weights-seed plus this offset (inception 0, alexnet 1 and lpips heads 2 in run.py)
SEED_OFFSET = {"inception": 0, "dinov2": 3, "clip": 4}


def parse_features(names: tuple[str, ...], *, with_inception: bool = True) -> tuple[str, ...]:
    """`--features` -> the spaces in SPACES order; Inception always first unless `with_inception` is False (the
    paper's protocol is always scored by `r2r evaluate`; `r2r evaluate-stats` writes only what it is asked)."""
    unknown = [n for n in names if n not in SPACES]
    if unknown:
        raise ValueError(f"--features: unknown feature space(s) {', '.join(unknown)}; choose from "
                         f"{', '.join(SPACES)}")
    chosen = {*names, *((DEFAULT_SPACE,) if with_inception else ())}
    if not chosen:
        raise ValueError(f"--features: name at least one feature space of {', '.join(SPACES)}")
    return tuple(s for s in SPACES if s in chosen)


@dataclass
class Extractor:
    """One space's network on its device, the record of its weights (the JSON's protocol) and its identity."""

    space: str
    module: object  # images [N, 3, H, W] uint8 -> [N, D] float32
    record: dict
    identity: object  # r2r.metrics.FeatureIdentity

    def identity_dict(self) -> dict:
        return self.identity.as_dict()


def _vit_record(spec, extractor, random_seed: int | None) -> dict:
    if random_seed is not None:
        return {"network": spec.what, "repo_id": spec.repo_id, "sha256": "random", "origin": f"random (seed "
                f"{random_seed})", "published": False}
    return {"network": spec.what, "repo_id": spec.repo_id, "sha256": extractor.sha256, "origin": extractor.origin}


def load_extractor(space: str, settings, device, inception_weights=None) -> Extractor:
    """The extractor of `space` with the weights `settings` (a MetricSettings) name, on `device`.

    `inception_weights`: already loaded `LoadedWeights` for Inception (run.py loads them with the LPIPS files)."""
    from ..metrics import INCEPTION, InceptionFeatures, load_weights, random_weights

    seed = settings.weights_seed + SEED_OFFSET[space]
    if space == "inception":
        w = inception_weights
        if w is None:
            w = (random_weights(INCEPTION, seed) if settings.inception_weights is None and settings.random_weights
                 else load_weights(INCEPTION, settings.inception_weights, allow_download=settings.allow_download))
        module = InceptionFeatures(w).to(device)
        return Extractor(space, module, w.record(INCEPTION), module.identity)
    if space == "dinov2":
        from ..metrics.dinov2 import DINOV2_BASE as spec
        from ..metrics.dinov2 import DINOv2Features as cls
        given = settings.dinov2_weights
    elif space == "clip":
        from ..metrics.clip import CLIP_VIT_B32 as spec
        from ..metrics.clip import CLIPFeatures as cls
        given = settings.clip_weights
    else:
        raise ValueError(f"unknown feature space {space!r}; choose from {', '.join(SPACES)}")
    if given is None and settings.random_weights:
        from ..metrics.hf_vit import random_published_state_dict

        config = spec.config_cls(**spec.published_config)
        module = cls(random_published_state_dict(spec, config, seed), config=config, spec=spec)
        record = _vit_record(spec, module, seed)
    else:
        module = cls(given, spec=spec, allow_download=settings.allow_download)
        record = _vit_record(spec, module, None)
    module = module.to(device)
    record["identity"] = module.identity.network  # "dinov2-vitb14", or a custom architecture's name
    return Extractor(space, module, record, module.identity)


__all__ = ["DEFAULT_SPACE", "SPACES", "WHAT", "Extractor", "load_extractor", "parse_features"]
