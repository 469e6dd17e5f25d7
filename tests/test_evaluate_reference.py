"""`r2r evaluate` beyond the paper's three numbers, end to end through the CLI: the real set's features computed once
(the statistics cache: hit, miss and invalidation; `r2r evaluate-stats` files and `--real-stats`, with the key
checked), FID from the same features, the DINOv2 and CLIP feature spaces with tiny random weights in their
published layouts, precision/recall, per-category trust marks, and `evaluate-table --space`. CPU, random weights,
tiny images."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from test_evaluate import FAST, _png, _records, write_source

from r2r.cli import main
from r2r.evaluation import reference
from r2r.evaluation.results import ResultError, read_result
from r2r.metrics import frechet_distance

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # see conftest.py

TINY_DINO = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, image_size=28, patch_size=14)
TINY_CLIP = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2, image_size=224,
                 patch_size=32, projection_dim=16)


@pytest.fixture(autouse=True)
def _offline(monkeypatch, tmp_path_factory):
    import datasets

    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path_factory.getbasetemp() / "hf-cache")


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A built source of 4 renders, two methods' outputs for all of them (named by key), 5 readable real photos,
    and tiny DINOv2 / CLIP snapshots written as the Hub has them."""
    from r2r.metrics.clip import CLIP_VIT_B32
    from r2r.metrics.dinov2 import DINOV2_BASE
    from r2r.metrics.hf_vit import random_published_state_dict, save_folder

    root = tmp_path_factory.mktemp("evalref")
    source = write_source(root / "source")
    recs = _records()
    methods = {}
    for name, scale in (("cut", 0.6), ("unsb", 0.8)):
        folder = root / name
        folder.mkdir()
        for i, (rec, _) in enumerate(recs):
            (folder / f"{rec.key}.png").write_bytes(_png(i, scale=scale))
        methods[name] = folder
    real = root / "real"
    real.mkdir()
    for i in range(5):
        (real / f"photo{i}.png").write_bytes(_png(100 + i, size=(36, 44)))
    dino_cfg = DINOV2_BASE.config_cls(**TINY_DINO)
    dino = save_folder(root / "dinov2", dino_cfg, random_published_state_dict(DINOV2_BASE, dino_cfg, seed=0))
    clip_cfg = CLIP_VIT_B32.config_cls(**TINY_CLIP)
    clip = save_folder(root / "clip", clip_cfg, random_published_state_dict(CLIP_VIT_B32, clip_cfg, seed=1))
    return {"root": root, "source": source, "real": real, "dino": dino, "clip": clip, **methods}


@pytest.fixture
def real_decodes(monkeypatch):
    """How many real images were decoded (reference.RealImages items; decoding runs in-process: --num-workers 0)."""
    calls: list[int] = []
    original = reference.RealImages.__getitem__

    def counted(self, i):
        calls.append(i)
        return original(self, i)

    monkeypatch.setattr(reference.RealImages, "__getitem__", counted)
    return calls


def _evaluate(world, method: str, out: Path, *extra: str, real: Path | None = None) -> dict:
    args = ["evaluate", "--translated", str(world[method]), "--source", str(world["source"]), "--out", str(out),
            "--method", method, *FAST, "--num-workers", "0", "--overwrite", *extra]
    if "--real-stats" not in extra:
        args += ["--real", str(real or world["real"])]
    code = main(args)
    assert code == 0, code
    return read_result(out)


def _origin(result: dict, space: str = "inception") -> str:
    return result["inputs"]["real_features"][space]["from"]


@pytest.fixture(scope="module")
def fresh(world, tmp_path_factory):
    """"cut" scored without the cache (its real features computed), its features saved, categories of 2 marked
    against a minimum of 3."""
    from safetensors.torch import load_file

    root = tmp_path_factory.mktemp("fresh")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HF_DATASETS_OFFLINE", "1")
        result = _evaluate(world, "cut", root / "cut.json", "--no-stats-cache", "--min-category-n", "3",
                           "--features-out", str(root / "cut.safetensors"))
    result.pop("_path")
    return {"result": result, "json": root / "cut.json", "features": load_file(str(root / "cut.safetensors"))}


@pytest.fixture(scope="module")
def cached(world, tmp_path_factory):
    """"cut" scored with a statistics cache of its own: the cache then holds the real set's Inception features
    (default weights). A test that starts from such a cache copies it (it writes into it)."""
    root = tmp_path_factory.mktemp("cached")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HF_DATASETS_OFFLINE", "1")
        result = _evaluate(world, "cut", root / "cut.json", "--stats-cache", str(root / "cache"))
    assert _origin(result) == "computed" and len(list((root / "cache").glob("*.safetensors"))) == 1
    return {"result": result, "cache": root / "cache"}


# ------------------------------------------------------------------------------------------------ the cache
def test_second_method_against_the_same_real_set_computes_no_real_feature(world, fresh, tmp_path, real_decodes):
    cache = ["--stats-cache", str(tmp_path / "cache")]
    first = _evaluate(world, "unsb", tmp_path / "unsb.json", *cache)
    assert len(real_decodes) == 5 and _origin(first) == "computed"
    assert len(list((tmp_path / "cache").glob("fid-inception-v3*.safetensors"))) == 1
    real_decodes.clear()
    second = _evaluate(world, "cut", tmp_path / "cut.json", *cache)
    assert real_decodes == [] and _origin(second) == "cache"  # not one real image decoded, no real feature computed
    assert second["n_real"] == 5 and second["inputs"]["real_images_sha256"] == first["inputs"]["real_images_sha256"]
    # the cached features give the numbers a fresh computation gives
    computed = fresh["result"]
    assert "key" not in computed["inputs"]["real_features"]["inception"]
    for key in ("kid", "kid_std", "lpips", "ssim"):
        assert second[key] == computed[key], key
    assert second["spaces"]["inception"]["fd"] == computed["spaces"]["inception"]["fd"]
    assert second["per_category"]["coat"]["why"] == "n=2 < 10"  # the default minimum: 10


def test_the_same_photos_renamed_and_reordered_hit_and_score_alike(world, cached, tmp_path, real_decodes):
    cache = ["--stats-cache", str(tmp_path / "cache"), "--kid-subset-size", "2"]  # subsets of 2: order matters
    shutil.copytree(cached["cache"], tmp_path / "cache")  # the features of world["real"], as named there
    renamed = tmp_path / "renamed"
    renamed.mkdir()
    for n, p in enumerate(sorted(world["real"].iterdir(), reverse=True)):
        shutil.copy(p, renamed / f"img-{n}.png")
    real_decodes.clear()
    hit = _evaluate(world, "cut", tmp_path / "b.json", *cache, real=renamed)
    assert real_decodes == [] and _origin(hit) == "cache"
    fresh = _evaluate(world, "cut", tmp_path / "c.json", "--no-stats-cache", "--kid-subset-size", "2", real=renamed)
    assert hit["kid"] == fresh["kid"] and hit["kid_std"] == fresh["kid_std"]  # rows back in the set's own order


def test_a_changed_image_or_other_weights_are_recomputed(world, cached, tmp_path, real_decodes):
    cache = ["--stats-cache", str(tmp_path / "cache")]
    real = tmp_path / "real"
    shutil.copytree(world["real"], real)
    shutil.copytree(cached["cache"], tmp_path / "cache")  # these photos' features (the same bytes) are cached
    (real / "photo2.png").write_bytes(_png(7, size=(36, 44)))  # one image's bytes change
    real_decodes.clear()
    changed = _evaluate(world, "cut", tmp_path / "b.json", *cache, real=real)
    assert _origin(changed) == "computed" and len(real_decodes) == 5
    real_decodes.clear()
    other = _evaluate(world, "cut", tmp_path / "c.json", *cache, "--weights-seed", "1", real=real)
    assert _origin(other) == "computed" and len(real_decodes) == 5
    assert len(list((tmp_path / "cache").glob("*.safetensors"))) == 3


def test_a_truncated_cache_file_is_recomputed_with_a_one_line_warning(world, cached, tmp_path, real_decodes,
                                                                       capsys):
    from r2r.metrics.stats_cache import read_stats_bytes

    cache = tmp_path / "cache"
    shutil.copytree(cached["cache"], cache)
    first = cached["result"]  # scored with that cache when it was written
    (path,) = cache.glob("*.safetensors")
    path.write_bytes(path.read_bytes()[:-100])
    capsys.readouterr()
    real_decodes.clear()
    again = _evaluate(world, "cut", tmp_path / "b.json", "--stats-cache", str(cache))
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if "statistics cache not used" in line]
    assert len(lines) == 1 and str(path.name) in lines[0] and "Traceback" not in err
    assert _origin(again) == "computed" and len(real_decodes) == 5 and again["kid"] == first["kid"]
    assert read_stats_bytes(path.read_bytes(), str(path)).features.shape == (5, 2048)  # rewritten, whole


def test_a_real_set_with_an_unreadable_image_is_not_cached(world, tmp_path, real_decodes):
    real = tmp_path / "real"
    shutil.copytree(world["real"], real)
    (real / "broken.jpg").write_bytes(b"\xff\xd8\xff not a jpeg")
    cache = ["--stats-cache", str(tmp_path / "cache")]
    args = ["evaluate", "--translated", str(world["cut"]), "--source", str(world["source"]), "--real", str(real),
            *FAST, "--num-workers", "0", *cache]
    assert main([*args, "--out", str(tmp_path / "a.json")]) == 1  # an unreadable real image is a problem, named
    result = read_result(tmp_path / "a.json")
    origin = result["inputs"]["real_features"]["inception"]
    assert origin["from"] == "computed" and "1 unreadable" in origin["not_cached"]
    assert [u["key"] for u in result["problems"]["real_unreadable"]] == ["broken"]
    assert not list((tmp_path / "cache").glob("*.safetensors"))
    real_decodes.clear()
    assert main([*args, "--out", str(tmp_path / "b.json")]) == 1
    assert len(real_decodes) == 6  # computed again: this run's decoder names the unreadable image again


# ------------------------------------------------------------------------------------------------ statistics files
def test_statistics_file_round_trip_and_refusals(world, fresh, tmp_path, capsys):
    stats = tmp_path / "real-inception.safetensors"
    assert main(["evaluate-stats", str(world["real"]), "--out", str(stats), "--random-weights", "--device", "cpu",
                 "--num-workers", "0", "--no-progress", "--no-stats-cache"]) == 0
    assert "5 images" in capsys.readouterr().err
    from_photos = fresh["result"]
    from_file = _evaluate(world, "cut", tmp_path / "file.json", "--real-stats", str(stats))
    assert _origin(from_file) == "file" and from_file["n_real"] == 5
    for key in ("kid", "kid_std", "lpips", "ssim"):
        assert from_file[key] == from_photos[key], key
    assert from_file["spaces"]["inception"]["fd"] == from_photos["spaces"]["inception"]["fd"]
    assert from_file["inputs"]["real_images_sha256"] == from_photos["inputs"]["real_images_sha256"]
    # evaluate-table: the same photos as a folder or as a statistics file are one real set
    assert main(["evaluate-table", str(fresh["json"]), str(tmp_path / "file.json"), "--markdown",
                 str(tmp_path / "t.md")]) == 0
    assert "protocol differs" not in (tmp_path / "t.md").read_text()

    def refused(*extra: str) -> str:
        capsys.readouterr()
        code = main(["evaluate", "--translated", str(world["cut"]), "--source", str(world["source"]), "--out",
                     str(tmp_path / "refused.json"), *FAST, "--num-workers", "0", "--overwrite", *extra])
        assert code == 2 and not (tmp_path / "refused.json").exists()
        return " ".join(capsys.readouterr().err.split())

    # other weights: refused, naming the field and both values
    assert "weights_sha256:" in refused("--real-stats", str(stats), "--weights-seed", "3")
    # another preprocessing protocol (a file written by another version of the resize): refused, naming it
    from r2r.metrics.stats_cache import StatsKey, read_stats_bytes, stats_bytes

    loaded = read_stats_bytes(stats.read_bytes(), str(stats))
    meta = loaded.metadata
    other = tmp_path / "other-protocol.safetensors"
    other.write_bytes(stats_bytes(StatsKey(meta["network"], meta["weights_sha256"], "antialiased-bicubic-299/v1"),
                                  loaded.features))
    err = refused("--real-stats", str(other))
    assert "statistics for another setup, refused" in err and "protocol: 'antialiased-bicubic-299/v1' ->" in err
    # a file for a space this run does not compute, or a space without a file
    dino_stats = tmp_path / "real-dinov2.safetensors"
    assert main(["evaluate-stats", str(world["real"]), "--out", str(dino_stats), "--features", "dinov2",
                 "--dinov2-weights", str(world["dino"]), "--random-weights", "--device", "cpu", "--num-workers", "0",
                 "--no-progress", "--no-stats-cache"]) == 0
    assert "statistics for network 'dinov2-custom" in refused("--real-stats", str(dino_stats))
    assert "no statistics file for dinov2" in refused("--real-stats", str(stats), "--features", "dinov2",
                                                      "--dinov2-weights", str(world["dino"]))
    assert "exactly one of them" in refused("--real-stats", str(stats), "--real", str(world["real"]))
    # several spaces need {space} in --out; an unreadable photo refuses a shared file
    capsys.readouterr()
    assert main(["evaluate-stats", str(world["real"]), "--out", str(tmp_path / "s.safetensors"), "--features",
                 "inception,dinov2", "--random-weights", "--no-progress"]) == 2
    assert "{space}" in capsys.readouterr().err
    broken = tmp_path / "broken-real"
    shutil.copytree(world["real"], broken)
    (broken / "broken.jpg").write_bytes(b"\xff\xd8\xff not a jpeg")
    assert main(["evaluate-stats", str(broken), "--out", str(tmp_path / "b.safetensors"), "--random-weights",
                 "--device", "cpu", "--num-workers", "0", "--no-progress", "--no-stats-cache"]) == 2
    assert "cannot be read" in " ".join(capsys.readouterr().err.split()) and not (tmp_path / "b.safetensors").exists()


# ------------------------------------------------------------------------------------------------ FID and spaces
def reference_fd(real: torch.Tensor, fake: torch.Tensor) -> float:
    """pytorch-fid's formula written out in float64: ||mu1 - mu2||^2 + Tr S1 + Tr S2 - 2 Tr sqrtm(S1 S2)."""
    x, y = real.double(), fake.double()
    c1, c2 = torch.cov(x.T), torch.cov(y.T)
    trace_sqrt = torch.linalg.eigvals(c1 @ c2).real.clamp_min(0).sqrt().sum()
    return float((x.mean(0) - y.mean(0)).square().sum() + c1.trace() + c2.trace() - 2 * trace_sqrt)


def test_fid_in_the_json_is_the_frechet_distance_of_the_saved_features(fresh):
    result, saved = fresh["result"], fresh["features"]
    fid = result["spaces"]["inception"]["fd"]
    # r2r.metrics' FD on the saved features (its parity with pytorch-fid's formula: tests/test_metrics_modern.py;
    # the formula written out again in the small DINOv2 / CLIP spaces below, where a D x D eig is cheap)
    assert fid == frechet_distance(saved["real"], saved["translated"], method="gram") and fid > 0
    assert result["spaces"]["inception"]["fd_std"] > 0 and result["protocol"]["fd"]["resamples"] == 100
    # the top-level KID is the inception space's, unchanged
    assert result["kid"] == result["spaces"]["inception"]["kid"] and result["kid_subset_size"] == 4


def test_dinov2_and_clip_spaces_through_the_cli(world, tmp_path, capsys):
    from safetensors.torch import load_file

    result = _evaluate(world, "cut", tmp_path / "cut.json", "--features", "dinov2,clip", "--dinov2-weights",
                       str(world["dino"]), "--clip-weights", str(world["clip"]), "--precision-recall",
                       "--stats-cache", str(tmp_path / "cache"), "--features-out", str(tmp_path / "f.safetensors"))
    assert set(result["spaces"]) == {"inception", "dinov2", "clip"}
    protocol = result["protocol"]["spaces"]
    assert protocol["dinov2"]["dim"] == 32 and protocol["clip"]["dim"] == 16
    assert protocol["dinov2"]["network"].startswith("dinov2-custom") and "dgm-eval" in protocol["dinov2"][
        "preprocessing"]
    clip_weights = protocol["clip"]["weights"]
    assert clip_weights["origin"] == str(world["clip"]) and len(clip_weights["sha256"]) == 64
    saved = load_file(str(tmp_path / "f.safetensors"))
    for space, dim in (("dinov2", 32), ("clip", 16)):
        numbers = result["spaces"][space]
        assert saved[f"{space}_translated"].shape == (4, dim) and saved[f"{space}_real"].shape == (5, dim)
        assert numbers["fd"] == frechet_distance(saved[f"{space}_real"], saved[f"{space}_translated"], method="gram")
        assert numbers["fd"] == pytest.approx(reference_fd(saved[f"{space}_real"], saved[f"{space}_translated"]),
                                              rel=1e-6, abs=1e-9)
        assert numbers["kid"] is not None and numbers["kid_subset_size"] == 4
        assert 0 <= numbers["precision"] <= 1 and 0 <= numbers["recall"] <= 1
        assert set(result["per_category"]["hoodie"]["spaces"][space]) >= {"kid", "fd", "fd_std", "n_real"}
    assert len(list((tmp_path / "cache").glob("*.safetensors"))) == 3  # one file per space
    # evaluate-table: the default stays the paper's; --space names the space in every header
    capsys.readouterr()
    assert main(["evaluate-table", str(tmp_path / "cut.json"), "--markdown", "-"]) == 0
    paper = capsys.readouterr().out
    assert "| Method | KID×1000 (std) ↓ | LPIPS (std) ↓ | SSIM (std) ↑ | n |" in paper
    assert "also hold dinov2, clip numbers" in " ".join(paper.split())
    assert main(["evaluate-table", str(tmp_path / "cut.json"), "--space", "dinov2", "--markdown", "-", "--csv",
                 str(tmp_path / "t.csv")]) == 0
    shown = capsys.readouterr().out
    assert ("KID×1000 (std) ↓ [dinov2] | FD (std) ↓ [dinov2] | precision ↑ [dinov2] | recall ↑ [dinov2]"
            in shown)
    assert f"{result['spaces']['dinov2']['fd']:.3f}" in shown
    header = (tmp_path / "t.csv").read_text().splitlines()[0].split(",")
    assert {"inception_fd", "dinov2_kid_x1000", "clip_fd_std", "clip_precision"} <= set(header)


def test_per_category_numbers_carry_n_spread_and_trust(fresh, capsys):
    result = fresh["result"]
    assert result["trusted"] is True and result["why"] is None  # 4 images overall
    for category in ("hoodie", "coat"):
        entry = result["per_category"][category]
        inc = entry["spaces"]["inception"]
        assert entry["n"] == 2 and entry["trusted"] is False and entry["why"] == "n=2 < 3"
        assert inc["n_fake"] == 2 and inc["n_real"] == 5 and inc["kid_subset_size"] == 2
        assert inc["kid_std"] is not None and inc["fd"] is not None and inc["fd_std"] is not None
        assert entry["kid"] == inc["kid"]
    assert result["protocol"]["per_category_trust"]["min_n"] == 3
    capsys.readouterr()
    assert main(["evaluate-table", str(fresh["json"]), "--per-category", "--markdown", "-"]) == 0
    shown = " ".join(capsys.readouterr().out.split())
    assert "| cut / coat † |" in shown and "†: fewer images than --min-category-n (3)" in shown


def test_read_result_validates_the_new_fields(fresh, tmp_path):
    good = fresh["result"]
    for change, match in (
        (lambda d: d["spaces"]["inception"].update(fd="12.5"), "spaces.inception: field 'fd' is not a number"),
        (lambda d: d["per_category"]["coat"]["spaces"]["inception"].update(precision=1.5), "not a fraction"),
        (lambda d: d["per_category"]["coat"].update(trusted="yes"), "field 'trusted' must be bool"),
        (lambda d: d["spaces"].update({"bad\nname": {}}), "not a plain name"),
        (lambda d: d["inputs"]["real_features"]["inception"].update({"from": "guess"}), "where the features came"),
        (lambda d: d["protocol"]["spaces"].pop("inception"), "not the ones the protocol describes"),
    ):
        doc = json.loads(json.dumps(good))
        change(doc)
        (tmp_path / "bad.json").write_text(json.dumps(doc))
        with pytest.raises(ResultError, match=match):
            read_result(tmp_path / "bad.json")


def test_the_readme_section_parses():
    """Every command of README's "Evaluating any method" block is accepted by the parser as written."""
    import re
    import shlex

    from r2r.cli import build_parser

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = readme[readme.index("### Evaluating any method"):]
    block = re.search(r"```bash\n(.*?)```", section, re.S).group(1).replace("\\\n", " ")
    commands = [line.split("#")[0] for line in block.splitlines() if line.startswith("r2r ")]
    assert len(commands) == 7
    parser = build_parser()
    for line in commands:
        words = shlex.split(re.sub(r"\[[^\]]*\]", "", line))[1:]  # optional parts in [...] left out
        args = parser.parse_args(words)
        assert args.func is not None, line
