"""r2r.metrics: KID math against a plain numpy version, SSIM against a float64 reference (and scikit-image when
installed), LPIPS and SSIM of identical images, KID of a set with itself and with shifted sets, the TF1 resize,
and weight files in the published key layouts. CPU, random weights, small tensors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from r2r.metrics import (
    ALEXNET,
    INCEPTION,
    LPIPS,
    LPIPS_ALEX_HEADS,
    InceptionFeatures,
    KIDConfig,
    kid_from_features,
    kid_subsets,
    load_weights,
    random_state_dict,
    random_weights,
    save_state_dict,
    ssim,
    tf1_bilinear_resize,
)
from r2r.metrics import kid as kid_module
from r2r.metrics.ssim import SSIMConfig, gaussian_window

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # see conftest.py


# ------------------------------------------------------------------------------------------------ KID
def numpy_kid(real: np.ndarray, fake: np.ndarray, subsets: int, size: int, seed: int) -> tuple[float, float]:
    """The published definition, written out: cubic kernel, unbiased MMD^2, RandomState subsets (fake first)."""
    rng = np.random.RandomState(seed)
    d = real.shape[1]
    values = []
    for _ in range(subsets):
        x = fake[rng.choice(len(fake), size, replace=False)].astype(np.float64)
        y = real[rng.choice(len(real), size, replace=False)].astype(np.float64)
        kxx, kyy, kxy = (((a @ b.T) / d + 1) ** 3 for a, b in ((x, x), (y, y), (x, y)))
        m = size
        mmd = (kxx.sum() - np.trace(kxx) + kyy.sum() - np.trace(kyy)) / (m * (m - 1)) - 2 * kxy.sum() / (m * m)
        values.append(mmd)
    return float(np.mean(values)), float(np.std(values))


def _features(n: int, d: int, seed: int, shift: float = 0.0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, d, generator=g) + shift


@pytest.mark.parametrize("gram_rows", [0, 10_000])  # the per-subset path and the Gram-matrix path
def test_kid_matches_plain_numpy(monkeypatch, gram_rows):
    monkeypatch.setattr(kid_module, "GRAM_MAX_ROWS", gram_rows)
    real, fake = _features(60, 16, 1), _features(45, 16, 2, shift=0.1)
    ours = kid_from_features(real, fake, subsets=7, subset_size=20, seed=2020)
    ref = numpy_kid(real.numpy(), fake.numpy(), 7, 20, 2020)
    np.testing.assert_allclose(ours, ref, rtol=1e-10, atol=1e-14)


def test_kid_of_a_set_with_itself_is_near_zero_and_grows_with_the_shift():
    real = _features(120, 32, 3)
    same = kid_from_features(real, real.clone(), subsets=20, subset_size=50)[0]
    values = [kid_from_features(real, _features(120, 32, 4, shift=s), subsets=20, subset_size=50)[0]
              for s in (0.0, 0.1, 0.3)]
    assert abs(same) < 0.05 * values[-1]
    assert values[0] < values[1] < values[2]


@pytest.mark.filterwarnings("ignore:Metric `Kernel Inception Distance` will save all extracted features")
def test_kid_matches_torchmetrics_when_each_subset_is_the_whole_set():
    """torchmetrics draws its subsets with torch.randperm, torch-fidelity (and ours) with numpy's RandomState: with
    subsets of every image the draws cannot differ, so the kernel and the unbiased MMD must agree."""
    kid_tm = pytest.importorskip("torchmetrics.image.kid")

    class Identity(torch.nn.Module):  # torchmetrics calls its feature module on what update() is given
        def forward(self, x):
            return x

    real, fake = _features(40, 64, seed=3), _features(40, 64, seed=4, shift=0.3)
    metric = kid_tm.KernelInceptionDistance(feature=Identity(), subsets=3, subset_size=40)
    metric.update(real, real=True)
    metric.update(fake, real=False)
    theirs, _ = metric.compute()
    ours, std = kid_from_features(real, fake, subsets=3, subset_size=40)
    assert ours > 0 and std == pytest.approx(0.0, abs=1e-12)
    assert ours == pytest.approx(float(theirs), rel=1e-5)  # float32 sums in torchmetrics, float64 in ours


def test_kid_uses_every_image_when_a_set_is_smaller_than_the_subset_size():
    r = kid_subsets(_features(30, 8, 5), _features(12, 8, 6), KIDConfig(subsets=5, subset_size=1000))
    assert r.subset_size == 12 and len(r.mmds) == 5
    with pytest.raises(ValueError, match="at least 2"):
        kid_from_features(_features(5, 8, 1), _features(1, 8, 2))


# ------------------------------------------------------------------------------------------------ SSIM
def reference_ssim(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Wang et al.'s definition in float64 with a full 11x11 window, 'valid' positions (an independent path)."""
    g = gaussian_window(11, 1.5).numpy()
    w = torch.from_numpy(np.outer(g, g)).expand(x.shape[1], 1, 11, 11)
    a, b = torch.from_numpy(x).double(), torch.from_numpy(y).double()

    def blur(t):
        return F.conv2d(t, w, groups=t.shape[1])

    mx, my = blur(a), blur(b)
    vx, vy, cxy = blur(a * a) - mx * mx, blur(b * b) - my * my, blur(a * b) - mx * my
    c1, c2 = 0.01 ** 2, 0.03 ** 2
    s = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
    return s.flatten(1).mean(1).numpy()


def _image_pairs(n=3, h=40, w=36, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.random((n, 3, h, w))
    y = np.clip(x * 0.8 + 0.1 + rng.normal(0, 0.05, x.shape), 0, 1)
    y[-1] = 0.7  # a flat image: variances near zero, where float32 cancellation would show
    x[-1] = 0.7 + rng.normal(0, 0.002, x[-1].shape)
    return x, y


def test_ssim_matches_the_float64_reference():
    x, y = _image_pairs()
    ours = ssim(torch.from_numpy(x).float(), torch.from_numpy(y).float()).numpy()
    ref = reference_ssim(x.astype(np.float32).astype(np.float64), y.astype(np.float32).astype(np.float64))
    np.testing.assert_allclose(ours, ref, atol=2e-6)
    assert ours[0] < 0.999


def test_ssim_matches_scikit_image():
    metrics = pytest.importorskip("skimage.metrics")
    x, y = _image_pairs(seed=1)
    ours = ssim(torch.from_numpy(x).float(), torch.from_numpy(y).float(), dtype=torch.float64).numpy()
    x32, y32 = x.astype(np.float32).astype(np.float64), y.astype(np.float32).astype(np.float64)
    theirs = [metrics.structural_similarity(a, b, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
                                            data_range=1.0, channel_axis=0) for a, b in zip(x32, y32)]
    np.testing.assert_allclose(ours, theirs, atol=1e-9)


def test_ssim_of_identical_images_is_one_and_uint8_reads_as_0_to_1():
    x = torch.randint(0, 256, (2, 3, 20, 24), dtype=torch.uint8)
    assert torch.equal(ssim(x, x), torch.ones(2, dtype=torch.float64))
    y = torch.randint(0, 256, (2, 3, 20, 24), dtype=torch.uint8)
    torch.testing.assert_close(ssim(x, y), ssim(x.float() / 255, y.float() / 255))
    with pytest.raises(ValueError, match="at least 11x11"):
        ssim(x[..., :10, :10], y[..., :10, :10])
    assert SSIMConfig().as_dict() == {"window": 11, "sigma": 1.5, "k1": 0.01, "k2": 0.03, "data_range": 1.0}


# ------------------------------------------------------------------------------------------------ LPIPS
@pytest.fixture(scope="module")
def lpips_random():
    return LPIPS(alexnet=random_weights(ALEXNET, 1), heads=random_weights(LPIPS_ALEX_HEADS, 2))


def test_lpips_is_zero_for_identical_images_and_grows_with_distortion(lpips_random):
    g = torch.Generator().manual_seed(0)
    x = torch.rand(2, 3, 64, 48, generator=g)
    assert torch.equal(lpips_random(x, x), torch.zeros(2))
    small = lpips_random(x, (x + 0.02 * torch.randn(x.shape, generator=g)).clamp(0, 1))
    large = lpips_random(x, (x + 0.2 * torch.randn(x.shape, generator=g)).clamp(0, 1))
    assert (small > 0).all() and (large > small).all()
    torch.testing.assert_close(lpips_random(x, x.flip(0)), lpips_random(x.flip(0), x))  # symmetric
    u8 = (x * 255).round().to(torch.uint8)
    torch.testing.assert_close(lpips_random(u8, u8.flip(0)), lpips_random(u8.float() / 255, u8.flip(0).float() / 255))


# ------------------------------------------------------------------------------------------------ resize, Inception
def tf1_reference(img: np.ndarray, h: int, w: int) -> np.ndarray:
    """TensorFlow 1.x resize_bilinear (align_corners=False) per its documented rule, in float32 numpy."""
    ih, iw = img.shape[-2:]
    out = np.zeros(img.shape[:-2] + (h, w), dtype=np.float32)
    sy, sx = np.float32(ih / h), np.float32(iw / w)
    for i in range(h):
        fy = np.float32(i) * sy
        y0 = int(fy)
        y1, dy = min(y0 + 1, ih - 1), fy - np.float32(y0)
        for j in range(w):
            fx = np.float32(j) * sx
            x0 = int(fx)
            x1, dx = min(x0 + 1, iw - 1), fx - np.float32(x0)
            top = img[..., y0, x0] + (img[..., y0, x1] - img[..., y0, x0]) * dx
            bot = img[..., y1, x0] + (img[..., y1, x1] - img[..., y1, x0]) * dx
            out[..., i, j] = top + (bot - top) * dy
    return out


def test_tf1_resize_follows_the_tensorflow_rule():
    img = np.random.default_rng(0).integers(0, 256, (1, 3, 13, 9)).astype(np.float32)
    for h, w in ((29, 17), (5, 4), (13, 9)):
        ours = tf1_bilinear_resize(torch.from_numpy(img), (h, w)).numpy()
        np.testing.assert_array_equal(ours, tf1_reference(img, h, w))
    np.testing.assert_array_equal(tf1_bilinear_resize(torch.from_numpy(img), (13, 9)).numpy(), img)


@pytest.fixture(scope="module")
def inception():
    return InceptionFeatures(random_state_dict(INCEPTION, 0))


def test_inception_features_shape_inputs_and_batch_independence(inception):
    x = torch.randint(0, 256, (3, 3, 40, 32), dtype=torch.uint8)
    f = inception(x)
    assert f.shape == (3, 2048) and f.dtype == torch.float32 and torch.isfinite(f).all() and f.std() > 0
    torch.testing.assert_close(inception(x.float() / 255), f, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(inception(x[1:2]), f[1:2], rtol=1e-4, atol=1e-5)
    inception.train()
    assert not inception.training  # a fixed extractor never switches BatchNorm to batch statistics
    with pytest.raises(ValueError, match=r"\[N, 3, H, W\]"):
        inception(x[:, :1])


def test_kid_on_inception_features_grows_with_a_shift(inception):
    g = torch.Generator().manual_seed(1)
    base = torch.rand(16, 3, 24, 24, generator=g)
    feats = inception(torch.cat([base, base[8:] * 0.5]))  # one pass: 8 real, 8 of the same kind, 8 darker
    real, same, darker = feats[:8], feats[8:16], feats[16:]
    near, far = kid_from_features(real, same, subsets=10)[0], kid_from_features(real, darker, subsets=10)[0]
    assert far > 0 and abs(near) < 0.2 * far


# ------------------------------------------------------------------------------------------------ weights
EXPECTED_KEYS = {  # a few keys of each published file, and how many it holds
    INCEPTION: (["Conv2d_1a_3x3.conv.weight", "Mixed_5b.branch5x5_2.bn.running_var",
                 "Mixed_7c.branch3x3dbl_3b.conv.weight", "fc.weight"], 566),  # 94 conv+BN blocks x 6, fc x 2
    ALEXNET: (["features.0.weight", "features.3.bias", "features.10.weight"], 10),
    LPIPS_ALEX_HEADS: (["lin0.model.1.weight", "lin4.model.1.weight"], 5),
}


@pytest.mark.parametrize("spec", [INCEPTION, ALEXNET, LPIPS_ALEX_HEADS], ids=lambda s: s.file_name)
@pytest.mark.parametrize("suffix", [".pth", ".safetensors"])
def test_random_weights_in_the_published_layout_load_strictly_from_a_file(tmp_path, spec, suffix):
    state = random_state_dict(spec, seed=3)
    some, count = EXPECTED_KEYS[spec]
    assert set(some) <= set(state) and len(state) == count
    path = tmp_path / f"w{suffix}"
    digest = save_state_dict(state, path)
    loaded = load_weights(spec, path, allow_download=False)
    assert loaded.sha256 == digest and loaded.record(spec)["published"] is False
    assert all(torch.equal(loaded.state_dict[k], state[k]) for k in state)
    again = random_state_dict(spec, seed=3)
    assert again.keys() == state.keys() and all(torch.equal(again[k], v) for k, v in state.items())  # seeded


def test_random_weights_are_drawn_once_and_handed_out_as_copies():
    from r2r.metrics.identity import tensors_sha256

    first = random_state_dict(INCEPTION, seed=5)
    first["fc.weight"].zero_()  # a caller's copy: the next caller gets the drawn tensors
    again = random_weights(INCEPTION, 5)
    assert not torch.equal(again.state_dict["fc.weight"], first["fc.weight"])
    assert again.tensors_digest == tensors_sha256(again.state_dict)
    features = InceptionFeatures(again)  # the carried digest is the one its identity would compute
    assert features.identity.weights_sha256 == tensors_sha256(features.state_dict())


def test_published_shapes():
    state = random_state_dict(INCEPTION)
    assert state["fc.weight"].shape == (1008, 2048) and state["Conv2d_1a_3x3.conv.weight"].shape == (32, 3, 3, 3)
    assert random_state_dict(ALEXNET)["features.0.weight"].shape == (64, 3, 11, 11)
    assert random_state_dict(LPIPS_ALEX_HEADS)["lin2.model.1.weight"].shape == (1, 384, 1, 1)


def test_alexnet_classifier_is_dropped_and_wrong_layouts_are_refused(tmp_path):
    state = random_state_dict(ALEXNET)
    state["classifier.6.weight"] = torch.zeros(1000, 4096)  # torchvision's file carries the classifier
    save_state_dict(state, tmp_path / "alexnet.pth")
    loaded = load_weights(ALEXNET, tmp_path / "alexnet.pth")
    assert "classifier.6.weight" not in loaded.state_dict
    bad = random_state_dict(INCEPTION)
    bad["Mixed_5b.extra.weight"] = torch.zeros(1)
    del bad["fc.bias"]
    save_state_dict(bad, tmp_path / "bad.pth")
    with pytest.raises(ValueError, match=r"missing: fc\.bias.*unexpected: Mixed_5b\.extra\.weight"):
        load_weights(INCEPTION, tmp_path / "bad.pth")
    heads = random_state_dict(LPIPS_ALEX_HEADS)
    heads["lin0.model.1.weight"] = torch.zeros(1, 65, 1, 1)
    with pytest.raises(ValueError, match="wrong shape: lin0.model.1.weight"):
        load_weights(LPIPS_ALEX_HEADS, heads)


class Evil:
    def __reduce__(self):
        return (print, ("unpickled code ran",))


def test_weight_files_are_never_unpickled_beyond_tensors(tmp_path, capsys):
    path = tmp_path / "evil.pth"
    torch.save({"x": Evil()}, path)
    with pytest.raises(ValueError, match="not a readable weight file"):
        load_weights(LPIPS_ALEX_HEADS, path)
    assert "unpickled code ran" not in capsys.readouterr().out


def test_hub_cache_is_used_and_checked_and_downloads_can_be_turned_off(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    with pytest.raises(FileNotFoundError, match=r"--lpips-heads.*random-weights|downloads are off"):
        load_weights(LPIPS_ALEX_HEADS, None, allow_download=False)
    cached = tmp_path / "hub" / "checkpoints" / LPIPS_ALEX_HEADS.file_name
    save_state_dict(random_state_dict(LPIPS_ALEX_HEADS), cached)  # right name, wrong bytes
    with pytest.raises(ValueError, match="is not that of the published"):
        load_weights(LPIPS_ALEX_HEADS, None, allow_download=False)
    monkeypatch.setattr(type(LPIPS_ALEX_HEADS), "matches", lambda self, digest: True)  # pretend it is published
    assert load_weights(LPIPS_ALEX_HEADS, None, allow_download=False).origin.startswith("hub cache")
