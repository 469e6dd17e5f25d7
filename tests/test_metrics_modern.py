"""r2r.metrics beyond the paper's three: Frechet distance against a plain numpy/scipy reference, improved precision and
recall on constructions with known answers, DINOv2 / CLIP extractors built from tiny configs in the published key
layouts (random weights), the reference-statistics cache (hits, misses, damaged files), per-category entries and
the in-memory API. CPU, offline, small tensors."""

from __future__ import annotations

import hashlib
import json
import re
import warnings

import numpy as np
import pytest
import torch
from PIL import Image

from r2r.metrics import (
    CLIP_VIT_B32,
    DINOV2_BASE,
    INCEPTION,
    LPIPS,
    ALEXNET,
    LPIPS_ALEX_HEADS,
    CategoryConfig,
    CLIPFeatures,
    DINOv2Features,
    FDBootstrap,
    FeatureStats,
    InceptionFeatures,
    KIDConfig,
    StatsFileError,
    StatsKey,
    api,
    fd_bootstrap,
    frechet_distance,
    load_or_compute,
    load_stats_file,
    per_category,
    random_state_dict,
    random_weights,
    save_stats_file,
)
from r2r.metrics import frechet as frechet_module
from r2r.metrics import stats_cache
from r2r.metrics.dinov2 import hub_position_embeddings
from r2r.metrics.hf_vit import load_network, random_published_state_dict, save_folder, to_published_names
from r2r.metrics.identity import FeatureIdentity, file_sha256
from r2r.metrics.knn_pr import knn_radii, precision_recall
from r2r.metrics.preprocess import pil_resize

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # see conftest.py


def _feats(n: int, d: int, seed: int, shift: float = 0.0, dtype=torch.float32) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(n, d, generator=g) + shift).to(dtype)


# ------------------------------------------------------------------------------------------------ Frechet distance
def reference_fd(x: np.ndarray, y: np.ndarray) -> float:
    """The published formula written out in float64: np.cov (ddof 1), scipy sqrtm of the product, real part."""
    from scipy import linalg

    x, y = x.astype(np.float64), y.astype(np.float64)
    mu1, mu2 = x.mean(0), y.mean(0)
    s1, s2 = np.cov(x, rowvar=False), np.cov(y, rowvar=False)
    covmean = linalg.sqrtm(s1 @ s2).real
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))


@pytest.mark.parametrize("method", ["scipy", "eigh", "auto"])
def test_fd_matches_a_float64_reference(method):
    pytest.importorskip("scipy")
    x, y = _feats(300, 16, 1), _feats(250, 16, 2, shift=0.3) * 1.2
    ref = reference_fd(x.numpy(), y.numpy())
    assert frechet_distance(x, y, method=method) == pytest.approx(ref, rel=1e-6)
    stats = FeatureStats.from_features(x), FeatureStats.from_features(y)
    assert frechet_distance(*stats, method=method) == pytest.approx(ref, rel=1e-6)
    assert frechet_module._fd_features(x.double(), y.double()) == pytest.approx(ref, rel=1e-6)  # nuclear norm
    np.testing.assert_allclose(stats[0].cov.numpy(), np.cov(x.numpy().astype(np.float64), rowvar=False), rtol=1e-12)


def test_fd_gram_method_is_the_exact_identity_for_features_only():
    pytest.importorskip("scipy")
    x, y = _feats(300, 16, 1), _feats(250, 16, 2, shift=0.3) * 1.2  # more images than dimensions
    assert frechet_distance(x, y, method="gram") == pytest.approx(reference_fd(x.numpy(), y.numpy()), rel=1e-6)
    small_x, small_y = _feats(12, 32, 5), _feats(10, 32, 6, shift=0.2)  # fewer: singular covariances
    assert frechet_distance(small_x, small_y, method="gram") == pytest.approx(
        frechet_distance(small_x, small_y, method="eigh"), rel=1e-6)
    with pytest.raises(ValueError, match="features themselves"):
        frechet_distance(FeatureStats.from_features(x), y, method="gram")
    with pytest.raises(ValueError, match="at least 2"):
        frechet_distance(x[:1], y, method="gram")


def test_fd_of_a_set_with_itself_is_zero_and_grows_with_the_shift():
    x = _feats(200, 8, 3)
    assert abs(frechet_distance(x, x.clone(), method="eigh")) < 1e-8
    values = [frechet_distance(x, _feats(200, 8, 4, shift=s), method="eigh") for s in (0.0, 0.5, 1.0)]
    assert values[0] < values[1] < values[2]
    assert values[2] - values[1] == pytest.approx(8 * (1.0 - 0.25), rel=0.2)  # ~ ||shift||^2 growth


def test_fd_with_fewer_images_than_dimensions_stays_finite_and_methods_agree():
    x, y = _feats(12, 32, 5), _feats(10, 32, 6, shift=0.2)  # both covariances singular
    eigh = frechet_distance(x, y, method="eigh")
    assert np.isfinite(eigh)
    assert frechet_module._fd_features(x.double(), y.double()) == pytest.approx(eigh, rel=1e-6)  # sqrt of round-off


def test_fd_refuses_mismatched_dimensions():
    with pytest.raises(ValueError, match="one dimension"):
        frechet_distance(_feats(5, 4, 0), _feats(5, 3, 0))


def test_fd_bootstrap_is_seeded_and_spreads():
    x, y = _feats(40, 8, 7), _feats(30, 8, 8, shift=0.5)
    std, values = fd_bootstrap(x, y, FDBootstrap(resamples=20, seed=1))
    assert len(values) == 20 and std > 0
    assert fd_bootstrap(x, y, FDBootstrap(resamples=20, seed=1))[0] == std
    assert fd_bootstrap(x, y, FDBootstrap(resamples=20, seed=2))[0] != std


# ------------------------------------------------------------------------------------------------ precision / recall
def test_precision_recall_identical_sets_is_one_and_far_sets_zero():
    x = _feats(50, 6, 9)
    r = precision_recall(x, x.clone())
    assert (r.precision, r.recall) == (1.0, 1.0)
    r = precision_recall(x, x + 1000.0)
    assert (r.precision, r.recall) == (0.0, 0.0)


@pytest.mark.parametrize("block", [3, 2048])  # blocked (the k smallest merged across column blocks) and one block
def test_precision_recall_on_a_line_with_a_computable_answer(block):
    """Real: 0..9 on a line. Fake: 0..4 (on the real points) and 1000..1004 (far). k = 3.
    Real radii: 3rd neighbour at distance 2 inside, 3 at the ends, so every fake point 0..4 is inside and every far
    one outside: precision = 5/10. Fake radii (0..4): 3, 2, 2, 2, 3; real 5, 6, 7 are within 3 of fake 4
    (7 exactly on the boundary, which counts), 8 and 9 are not: recall = 8/10."""
    line = lambda v: torch.tensor(v, dtype=torch.float64)[:, None] * torch.tensor([[1.0, 0.0]], dtype=torch.float64)
    real = line(list(range(10)))
    fake = line([0, 1, 2, 3, 4, 1000, 1001, 1002, 1003, 1004])
    r = precision_recall(real, fake, block=block, dtype=torch.float64)
    assert (r.precision, r.recall, r.k) == (0.5, 0.8, 3)
    np.testing.assert_array_equal(knn_radii(real, 3, block=block).sqrt().numpy(), [3, 2, 2, 2, 2, 2, 2, 2, 2, 3])


def test_precision_recall_counts_a_duplicate_as_a_neighbour_but_not_the_point_itself():
    x = torch.tensor([[0.0], [0.0], [1.0], [5.0]], dtype=torch.float64)
    assert knn_radii(x, 1).tolist() == [0.0, 0.0, 1.0, 16.0]
    with pytest.raises(ValueError, match="more than 3"):
        precision_recall(x[:3], x)


# ------------------------------------------------------------------------------------------------ DINOv2 / CLIP
TINY_DINO = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, image_size=28, patch_size=14)
TINY_CLIP = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2, image_size=224,
                 patch_size=32, projection_dim=16)

# The published files' key names (transformers 4.x layout, as in facebook/dinov2-base and
# openai/clip-vit-base-patch32's model.safetensors), per layer and outside the layers.
DINO_LAYER = {f"norm{i}.{p}" for i in (1, 2) for p in ("weight", "bias")} | {
    f"attention.attention.{q}.{p}" for q in ("query", "key", "value") for p in ("weight", "bias")} | {
    f"attention.output.dense.{p}" for p in ("weight", "bias")} | {
    f"mlp.fc{i}.{p}" for i in (1, 2) for p in ("weight", "bias")} | {"layer_scale1.lambda1", "layer_scale2.lambda1"}
DINO_OTHER = {"embeddings.cls_token", "embeddings.mask_token", "embeddings.position_embeddings",
              "embeddings.patch_embeddings.projection.weight", "embeddings.patch_embeddings.projection.bias",
              "layernorm.weight", "layernorm.bias"}
CLIP_LAYER = {f"self_attn.{q}_proj.{p}" for q in ("q", "k", "v", "out") for p in ("weight", "bias")} | {
    f"layer_norm{i}.{p}" for i in (1, 2) for p in ("weight", "bias")} | {
    f"mlp.fc{i}.{p}" for i in (1, 2) for p in ("weight", "bias")}
CLIP_OTHER = {"vision_model.embeddings.class_embedding", "vision_model.embeddings.patch_embedding.weight",
              "vision_model.embeddings.position_embedding.weight", "vision_model.pre_layrnorm.weight",
              "vision_model.pre_layrnorm.bias", "vision_model.post_layernorm.weight",
              "vision_model.post_layernorm.bias", "visual_projection.weight"}


def _split(keys, layer_prefix: str) -> tuple[set[str], set[str], set[int]]:
    layer, other, indices = set(), set(), set()
    for k in keys:
        m = re.match(rf"{re.escape(layer_prefix)}(\d+)\.(.*)", k)
        if m:
            indices.add(int(m.group(1)))
            layer.add(m.group(2))
        else:
            other.add(k)
    return layer, other, indices


def _meta_published(spec) -> dict[str, tuple]:
    with torch.device("meta"):
        model = spec.model_cls(spec.config_cls(**spec.published_config))
    return {k: tuple(v.shape) for k, v in to_published_names(spec, model.state_dict()).items()}


def test_dinov2_key_layout_is_the_published_one():
    full = _meta_published(DINOV2_BASE)  # the full-size architecture, no memory
    assert _split(full, "encoder.layer.") == (DINO_LAYER, DINO_OTHER, set(range(12)))
    assert full["embeddings.position_embeddings"] == (1, 1370, 768)  # 37 x 37 patches + CLS: trained at 518
    assert full["embeddings.patch_embeddings.projection.weight"] == (768, 3, 14, 14)
    assert full["encoder.layer.11.mlp.fc1.weight"] == (3072, 768)
    tiny = random_published_state_dict(DINOV2_BASE, DINOV2_BASE.config_cls(**TINY_DINO))
    assert _split(tiny, "encoder.layer.") == (DINO_LAYER, DINO_OTHER, {0, 1})


def test_clip_key_layout_is_the_published_one():
    full = _meta_published(CLIP_VIT_B32)
    assert _split(full, "vision_model.encoder.layers.") == (CLIP_LAYER, CLIP_OTHER, set(range(12)))
    assert full["visual_projection.weight"] == (512, 768)
    assert full["vision_model.embeddings.position_embedding.weight"] == (50, 768)
    assert full["vision_model.embeddings.patch_embedding.weight"] == (768, 3, 32, 32)
    tiny = random_published_state_dict(CLIP_VIT_B32, CLIP_VIT_B32.config_cls(**TINY_CLIP))
    assert _split(tiny, "vision_model.encoder.layers.") == (CLIP_LAYER, CLIP_OTHER, {0, 1})


@pytest.fixture(scope="module")
def dino_folder(tmp_path_factory):
    config = DINOV2_BASE.config_cls(**TINY_DINO)
    return save_folder(tmp_path_factory.mktemp("dino") / "snapshot", config,
                       random_published_state_dict(DINOV2_BASE, config, seed=0))


@pytest.fixture(scope="module")
def clip_folder(tmp_path_factory):
    """A CLIPModel-style snapshot: the vision tower plus text weights, logit_scale and position_ids to be ignored."""
    from transformers import CLIPConfig

    vision = CLIP_VIT_B32.config_cls(**TINY_CLIP)
    state = random_published_state_dict(CLIP_VIT_B32, vision, seed=1)
    state.update({"text_model.embeddings.token_embedding.weight": torch.zeros(10, 8), "logit_scale": torch.ones(()),
                  "vision_model.embeddings.position_ids": torch.arange(50)[None]})
    config = CLIPConfig(vision_config=vision.to_dict(), text_config=dict(hidden_size=8, intermediate_size=16,
                                                                         num_hidden_layers=1, num_attention_heads=2))
    return save_folder(tmp_path_factory.mktemp("clip") / "snapshot", config, state)


def _images(n: int, h: int = 1024, w: int = 768, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    base = torch.rand(n, 3, max(2, h // 64), max(2, w // 64), generator=g)
    x = torch.nn.functional.interpolate(base, size=(h, w), mode="bilinear", align_corners=False)
    return (x * 255).round().to(torch.uint8)


@pytest.mark.parametrize("kind", ["dinov2", "clip"])
def test_vit_extractors_shapes_determinism_and_batching(kind, dino_folder, clip_folder):
    net = DINOv2Features(dino_folder) if kind == "dinov2" else CLIPFeatures(clip_folder)
    x = _images(3)  # 768x1024 renders: the preprocessing must bring them to 224
    f = net(x)
    assert f.shape == (3, 32 if kind == "dinov2" else 16) and f.dtype == torch.float32 and torch.isfinite(f).all()
    assert torch.equal(net(x), f)
    torch.testing.assert_close(torch.cat([net(x[i:i + 1]) for i in range(3)]), f, rtol=1e-5, atol=1e-5)
    assert net.preprocess(x).shape == (3, 3, 224, 224)
    assert not torch.allclose(f[0], f[1])
    floats = net(x.float() / 255)  # float in [0, 1] -> rounded to the same bytes
    torch.testing.assert_close(floats, f, rtol=0, atol=0)


def test_dinov2_preprocessing_is_dgm_evals(dino_folder):
    """PIL bicubic to 224x224 (aspect not kept), /255, ImageNet normalisation, written out with PIL here."""
    net = DINOv2Features(dino_folder)
    x = _images(1, seed=3)
    pil = Image.fromarray(x[0].permute(1, 2, 0).numpy()).resize((224, 224), Image.BICUBIC)
    ref = torch.from_numpy(np.asarray(pil).astype(np.float32) / 255).permute(2, 0, 1)
    mean, std = torch.tensor([0.485, 0.456, 0.406]), torch.tensor([0.229, 0.224, 0.225])
    ref = (ref - mean[:, None, None]) / std[:, None, None]
    torch.testing.assert_close(net.preprocess(x)[0], ref, rtol=0, atol=1e-6)
    # the 2x2 trained grid is resampled once to the 16x16 grid of a 224 input, by the hub rule
    assert net.model.embeddings.position_embeddings.shape == (1, 257, 32)


def test_clip_preprocessing_is_clean_fids(clip_folder):
    """PIL bicubic shorter side to 224 (768x1024 -> 224x298), center crop 224 (rows 37..260), CLIP normalisation."""
    net = CLIPFeatures(clip_folder)
    x = _images(1, seed=4)
    pil = Image.fromarray(x[0].permute(1, 2, 0).numpy()).resize((224, 298), Image.BICUBIC).crop((0, 37, 224, 261))
    ref = torch.from_numpy(np.asarray(pil).astype(np.float32) / 255).permute(2, 0, 1)
    mean, std = torch.tensor([0.48145466, 0.4578275, 0.40821073]), torch.tensor([0.26862954, 0.26130258, 0.27577711])
    torch.testing.assert_close(net.preprocess(x)[0], (ref - mean[:, None, None]) / std[:, None, None],
                               rtol=0, atol=1e-6)


def test_hub_position_embedding_rule():
    pos = torch.randn(1, 1 + 37 * 37, 4)
    out = hub_position_embeddings(pos, 16)
    assert out.shape == (1, 257, 4) and torch.equal(out[:, 0], pos[:, 0])
    sized = torch.nn.functional.interpolate(pos[:, 1:].reshape(1, 37, 37, 4).permute(0, 3, 1, 2), size=(16, 16),
                                            mode="bicubic", align_corners=False)
    assert not torch.allclose(out[:, 1:], sized.permute(0, 2, 3, 1).reshape(1, 256, 4))  # transformers' rule differs
    assert hub_position_embeddings(out, 16) is out


def test_vit_identity_and_weight_sources(dino_folder, clip_folder, tmp_path):
    net = DINOv2Features(dino_folder)
    ident = net.identity
    assert ident.weights_sha256 == file_sha256(dino_folder / "model.safetensors")
    assert ident.dim == 32 and "224x224" in ident.protocol and ident.network.startswith("dinov2-")
    assert DINOv2Features(dino_folder, resize="torch").identity.protocol != ident.protocol
    from safetensors.torch import load_file

    state = load_file(str(dino_folder / "model.safetensors"))
    same = DINOv2Features(state, config=DINOV2_BASE.config_cls(**TINY_DINO))
    assert same.identity.weights_sha256.startswith("tensors:")
    x = _images(2, 64, 48)
    assert torch.equal(same(x), net(x))
    clip = CLIPFeatures(clip_folder)
    assert clip.identity.weights_sha256 == file_sha256(clip_folder / "model.safetensors")
    one_file = CLIPFeatures(clip_folder / "model.safetensors", config=CLIP_VIT_B32.config_cls(**TINY_CLIP))
    assert torch.equal(one_file(x), clip(x))


def test_vit_weights_missing_a_key_are_refused_by_name(dino_folder):
    from safetensors.torch import load_file

    state = load_file(str(dino_folder / "model.safetensors"))
    del state["encoder.layer.1.attention.attention.query.weight"]
    with pytest.raises(ValueError, match=r"missing: encoder\.layer\.1\.attention\.(attention\.query|q_proj)\.weight"):
        DINOv2Features(state, config=DINOV2_BASE.config_cls(**TINY_DINO))


def test_vit_weights_from_the_hugging_face_cache_offline(dino_folder, tmp_path, monkeypatch):
    """No weights given: the Hub cache layout (refs/main -> snapshots/<commit>/) is read with local_files_only;
    an empty cache is one clear error naming the repo."""
    import huggingface_hub.constants as hf_constants

    monkeypatch.setattr(hf_constants, "HF_HUB_CACHE", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="facebook/dinov2-base"):
        DINOv2Features(allow_download=False)
    commit = "0" * 39 + "1"
    repo = tmp_path / "models--facebook--dinov2-base"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    snap = repo / "snapshots" / commit
    snap.mkdir(parents=True)
    for name in ("config.json", "model.safetensors"):
        (snap / name).write_bytes((dino_folder / name).read_bytes())
    net = DINOv2Features(allow_download=False)
    assert commit in net.origin and net.identity.weights_sha256 == file_sha256(dino_folder / "model.safetensors")


def test_vit_refuses_pickled_weights(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps(TINY_DINO | {"model_type": "dinov2"}))
    (tmp_path / "pytorch_model.bin").write_bytes(b"not read")
    with pytest.raises(FileNotFoundError, match="pickle"):
        load_network(DINOV2_BASE, tmp_path)


def test_pil_and_torch_resizes_agree_within_a_few_levels():
    x = _images(2, 128, 96, seed=5)
    from r2r.metrics.preprocess import torch_resize

    diff = (pil_resize(x, (56, 56)).float() - torch_resize(x, (56, 56))).abs()
    assert diff.max() <= 2.0 and diff.mean() < 0.6


# ------------------------------------------------------------------------------------------------ statistics cache
IDENT = FeatureIdentity("net-a", "w" * 64, "protocol-a", 4)


def _key(hashes=("h1", "h2", "h3"), ident=IDENT) -> StatsKey:
    return StatsKey.for_images(ident, hashes)


class Counter:
    def __init__(self, n=3, d=4, seed=0):
        self.calls, self.n, self.d, self.seed = 0, n, d, seed

    def __call__(self):
        self.calls += 1
        return _feats(self.n, self.d, self.seed)


def test_cache_hit_miss_and_key_parts(tmp_path):
    compute = Counter()
    f1, hit, note = load_or_compute(_key(), compute, tmp_path)
    assert (hit, note, compute.calls) == (False, None, 1)
    f2, hit, note = load_or_compute(_key(("h3", "h1", "h2")), compute, tmp_path)  # order does not matter
    assert (hit, note, compute.calls) == (True, None, 1) and torch.equal(f1, f2)
    load_or_compute(_key(("h1", "h2", "h4")), compute, tmp_path)  # one image changed
    assert compute.calls == 2
    other_weights = FeatureIdentity("net-a", "v" * 64, "protocol-a", 4)
    load_or_compute(_key(ident=other_weights), compute, tmp_path)
    assert compute.calls == 3
    load_or_compute(_key(ident=FeatureIdentity("net-a", "w" * 64, "protocol-b", 4)), compute, tmp_path)
    assert compute.calls == 4
    assert len(list(tmp_path.glob("*.safetensors"))) == 4 and not list(tmp_path.glob("*.tmp-*"))


@pytest.mark.parametrize("damage", ["truncate", "tamper", "header", "empty"])
def test_cache_never_trusts_a_damaged_file(tmp_path, damage):
    compute = Counter()
    features, _, _ = load_or_compute(_key(), compute, tmp_path)
    path = stats_cache.cache_path(_key(), tmp_path)
    data = bytearray(path.read_bytes())
    if damage == "truncate":
        data = data[: len(data) - 10]
    elif damage == "tamper":
        data[-3] ^= 0xFF  # a byte of the last tensor's data
    elif damage == "header":
        data[:8] = (10 ** 9).to_bytes(8, "little")
    else:
        data = bytearray()
    path.write_bytes(bytes(data))
    with pytest.warns(RuntimeWarning, match="statistics cache not used, recomputing") as record:
        again, hit, note = load_or_compute(_key(), compute, tmp_path)
    assert len(record) == 1 and "\n" not in str(record[0].message)
    assert (hit, compute.calls) == (False, 2) and note and str(path) in note and torch.equal(again, features)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert load_or_compute(_key(), compute, tmp_path)[1]  # rewritten: a clean hit


def test_cache_refuses_nan_and_wrong_counts(tmp_path):
    from safetensors.torch import save

    key = _key()
    bad = torch.tensor([[float("nan")] * 4] * 3)
    with pytest.raises(ValueError, match="NaN"):
        load_or_compute(key, lambda: bad, tmp_path)
    with pytest.raises(ValueError, match="2 feature vectors for 3 image hashes"):
        load_or_compute(key, lambda: _feats(2, 4, 0), tmp_path)
    # a file with a NaN and a matching checksum (written by hand) is still refused
    from r2r.metrics.identity import tensors_sha256

    meta = {"format": stats_cache.FORMAT, **key.fields(), "n": "3", "dim": "4",
            "content_sha256": tensors_sha256({"features": bad})}
    stats_cache.cache_path(key, tmp_path).write_bytes(save({"features": bad}, metadata=meta))
    with pytest.warns(RuntimeWarning, match="NaN"):
        assert not load_or_compute(key, Counter(), tmp_path)[1]


def test_cache_that_cannot_be_written_still_returns_the_features(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("a file where the cache folder should be")
    with pytest.warns(RuntimeWarning, match="not written"):
        features, hit, note = load_or_compute(_key(), Counter(), blocker / "stats")
    assert features.shape == (3, 4) and not hit and "not written" in note


def test_default_cache_dir_follows_r2r_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("R2R_CACHE", str(tmp_path / "c"))
    assert stats_cache.default_cache_dir() == tmp_path / "c" / "stats"
    monkeypatch.delenv("R2R_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "x"))
    assert stats_cache.default_cache_dir() == tmp_path / "x" / "r2r" / "stats"
    monkeypatch.setenv("R2R_CACHE", str(tmp_path / "c"))
    load_or_compute(_key(), Counter())
    assert len(list((tmp_path / "c" / "stats").glob("net-a-*.safetensors"))) == 1


def test_stats_file_for_another_protocol_is_refused_naming_the_difference(tmp_path):
    features = _feats(3, 4, 1)
    path = save_stats_file(tmp_path / "ref.safetensors", _key(), features)
    loaded = load_stats_file(path, StatsKey("net-a", "w" * 64, "protocol-a"))  # any image set
    assert torch.equal(loaded.features, features) and loaded.stats.n == 3
    torch.testing.assert_close(loaded.stats.cov, FeatureStats.from_features(features).cov)
    with pytest.raises(ValueError, match="protocol: 'protocol-a' -> 'protocol-b'"):
        load_stats_file(path, StatsKey("net-a", "w" * 64, "protocol-b"))
    with pytest.raises(StatsFileError, match="network: 'net-a' -> 'net-b'.*weights_sha256"):
        load_stats_file(path, StatsKey("net-b", "v" * 64, "protocol-a"))
    with pytest.raises(ValueError, match="images_sha256"):
        load_stats_file(path, _key(("h1", "h2", "other")))
    moments = save_stats_file(tmp_path / "moments.safetensors", StatsKey("net-a", "w" * 64, "protocol-a"),
                              stats=FeatureStats.from_features(features))  # FD-only file: no features shared
    only = load_stats_file(moments, StatsKey("net-a", "w" * 64, "protocol-a"))
    assert only.features is None and frechet_distance(only.stats, features, method="eigh") == pytest.approx(0, abs=1e-6)


# ------------------------------------------------------------------------------------------------ per category
def test_per_category_marks_small_sets_and_reports_spread():
    real = {"dress": _feats(40, 8, 1), "hat": _feats(3, 8, 2), "coat": _feats(30, 8, 3)}
    fake = {"dress": _feats(35, 8, 4, shift=0.2), "hat": _feats(5, 8, 5), "coat": _feats(1, 8, 6),
            "bag": _feats(4, 8, 7)}
    config = CategoryConfig(kid=KIDConfig(subsets=10, subset_size=20), bootstrap=FDBootstrap(resamples=10))
    kid = per_category(real, fake, "kid", config)
    assert kid["dress"]["trusted"] and kid["dress"]["why"] is None and kid["dress"]["subset_size"] == 20
    assert kid["dress"]["std"] > 0 and kid["dress"]["n"] == 35
    hat = kid["hat"]
    assert (hat["n"], hat["trusted"], hat["why"], hat["subset_size"]) == (3, False, "n=3 < 10", 3)
    assert hat["value"] is not None
    assert kid["coat"]["value"] is None and "too few" in kid["coat"]["why"]
    assert kid["bag"] == {"metric": "kid", "n": 0, "n_real": 0, "n_fake": 4, "value": None, "std": None,
                          "trusted": False, "why": "no real images"}
    fd = per_category(real, fake, "fd", config)
    assert fd["dress"]["std"] > 0 and fd["dress"]["resamples"] == 10 and fd["dress"]["trusted"]
    assert fd == per_category(real, fake, "fd", config)  # the bootstrap is seeded
    assert "mean" not in kid and set(kid) == set(fake)  # no average across categories


# ------------------------------------------------------------------------------------------------ in-memory API
class Pooled(torch.nn.Module):
    """A stand-in feature extractor (48-d pooled colours): the API's plumbing, without 2048-d linear algebra."""

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.adaptive_avg_pool2d(images.float(), 4).flatten(1)


def test_api_features_take_tensors_and_pil_lists():
    net = Pooled()
    x = _images(3, 64, 48, seed=6)
    f = api.features(x, net, batch_size=2)
    assert f.shape == (3, 48)
    pil = [Image.fromarray(t.permute(1, 2, 0).numpy()) for t in x]
    torch.testing.assert_close(api.features(pil, net), f)
    mixed = pil[:2] + [pil[2].resize((40, 50))]  # consecutive sizes batched separately
    assert api.features(mixed, net).shape == (3, 48)
    with pytest.raises(ValueError, match="must be one of"):
        api.features(x, "vgg")
    with pytest.raises(TypeError, match="item 1"):
        api.features([pil[0], "x.png"], net)


def test_api_inception_is_the_cli_protocol():
    inception = InceptionFeatures(random_state_dict(INCEPTION, 0))
    x = _images(1, 64, 48, seed=6)
    f = api.features([Image.fromarray(x[0].permute(1, 2, 0).numpy())], inception)
    assert f.shape == (1, 2048) and torch.equal(f, inception(x))  # TF1 bilinear resize to 299 (inception.py)
    ident = inception.identity
    assert ident.weights_sha256.startswith("tensors:") and ident.dim == 2048 and "TF1 bilinear" in ident.protocol


def test_api_kid_fid_precision_recall_on_images_and_features():
    net = Pooled()
    real, fake = _images(6, 64, 48, seed=7), _images(5, 64, 48, seed=8)
    r = api.kid(real, fake, net, config=KIDConfig(subsets=5, subset_size=10))
    assert r.subset_size == 5 and np.isfinite(r.mean)
    fr, ff = api.features(real, net), api.features(fake, net)
    assert api.kid(fr, ff, config=KIDConfig(subsets=5, subset_size=10)) == r  # features given: no network needed
    assert api.fid(fr, ff, method="eigh") == pytest.approx(api.fid(real, fake, net, method="eigh"))
    assert api.fid(FeatureStats.from_features(fr), ff, method="eigh") == pytest.approx(api.fid(fr, ff, method="eigh"))
    pr = api.precision_recall(fr, fr.clone())
    assert (pr.precision, pr.recall) == (1.0, 1.0)


def test_api_lpips_and_ssim_on_pairs():
    net = LPIPS(alexnet=random_weights(ALEXNET, 1), heads=random_weights(LPIPS_ALEX_HEADS, 2))
    x, y = _images(2, 64, 64, seed=9), _images(2, 64, 64, seed=10)
    d = api.lpips(x, y, network=net, batch_size=1)
    assert d.shape == (2,) and (d > 0).all()
    assert torch.allclose(api.lpips(x, x, network=net), torch.zeros(2), atol=1e-6)
    s = api.ssim(x, y)
    pil = [Image.fromarray(t.permute(1, 2, 0).numpy()) for t in x]
    torch.testing.assert_close(api.ssim(pil, x), torch.ones(2, dtype=torch.float64))
    assert s.shape == (2,) and (s < 1).all()
    with pytest.raises(ValueError, match="same number"):
        api.ssim(x, y[:1])


def test_every_new_module_says_what_it_is_for():
    import importlib

    for name in ("api", "clip", "dinov2", "frechet", "hf_vit", "identity", "knn_pr", "per_category", "preprocess",
                 "stats_cache"):
        doc = importlib.import_module(f"r2r.metrics.{name}").__doc__
        assert doc and re.search(r"must not|never|only|no file I/O|does no", doc, re.I), name


def test_images_digest_is_order_free():
    assert stats_cache.images_digest(["b", "a"]) == hashlib.sha256(b"a\nb\n").hexdigest()
