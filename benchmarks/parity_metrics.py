"""Parity of `r2r evaluate` (r2r.metrics) with the reference packages, on the same images and weight files.

References: torch-fidelity 0.3.0 (the paper's KID: `calculate_metrics(input1=translated, input2=real, kid=True)`
end to end, its Inception features, and its `kid_features_to_metric` on our features), lpips 0.1.4 (v0.1 AlexNet)
and, for SSIM, scikit-image and torchmetrics. Those packages import torchvision, which does not load beside the
project's CPU torch, so they run in a throwaway venv:

    python3 -m venv /tmp/parity && /tmp/parity/bin/pip install torch==2.14.1 torchvision==0.29.1 \
        torch-fidelity==0.3.0 lpips torchmetrics scikit-image

Run from the repository root with the project venv:

    PYTHONPATH=$PWD .venv/bin/python benchmarks/parity_metrics.py --work /tmp/parity-work --theirs /tmp/parity/bin/python

Three steps, all through files in --work: (1) `--side ours` (project venv) writes the inputs (a built source
folder, translated PNGs, real PNGs; seeded), random weight files in the published layouts (or the real lpips
heads with --lpips-heads), and runs `r2r evaluate` on them (JSON + its Inception features); (2) `--side theirs`
runs this same file under the throwaway venv's python, importing nothing from this project; (3) `--side compare`
prints the differences and one JSON line. Without --side all three run in order. Targets: KID within 1e-6
relative, LPIPS and SSIM within 1e-5.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

SOURCE, TRANSLATED, REAL = "source", "translated", "real"
SIZE = (304, 320)  # (width, height): larger than 299 both ways, so the TF1 resize shrinks as for 768x1024 renders
CATS = ("hoodie", "coat", "dress", "jeans")


# ------------------------------------------------------------------------------------------------ images (numpy + PIL)
def _image(rng, kind: str):
    """A smooth random garment-like picture: low-frequency colour field plus stripes; 'real' ones are warmer and
    noisier, so KID is clearly above zero."""
    import numpy as np

    w, h = SIZE
    coarse = rng.random((6, 5, 3))
    yy, xx = np.mgrid[0:h, 0:w]
    field = coarse[(yy * 6) // h, (xx * 5) // w]
    stripes = 0.5 + 0.5 * np.sin(xx * rng.uniform(0.05, 0.4) + yy * rng.uniform(0.0, 0.2))[..., None]
    img = 0.6 * field + 0.4 * stripes * rng.random(3)
    if kind == REAL:
        img = img * np.array([1.05, 0.95, 0.85]) + rng.normal(0, 0.04, img.shape)
    return (np.clip(img, 0, 1) * 255).round().astype(np.uint8)


def _translate(src, rng):
    """A 'translation': a mild tone change, blur-free noise and a local patch edit (LPIPS/SSIM well inside (0, 1))."""
    import numpy as np

    out = src.astype(np.float64) * 0.92 + 12 + rng.normal(0, 6, src.shape)
    y, x = rng.integers(0, SIZE[1] - 64), rng.integers(0, SIZE[0] - 64)
    out[y:y + 64, x:x + 64] = out[y:y + 64, x:x + 64][::-1]
    return np.clip(out, 0, 255).round().astype(np.uint8)


def make_inputs(work: Path, n_translated: int, n_real: int, seed: int) -> None:
    import hashlib
    import io

    import numpy as np
    from PIL import Image

    from synfashion.schema import RenderRecord, make_key, renders_features, renders_row
    from synfashion.writers import ParquetShardWriter

    if (work / "inputs.done").is_file():
        return
    rng = np.random.default_rng(seed)
    (work / TRANSLATED).mkdir(parents=True, exist_ok=True)
    (work / REAL).mkdir(parents=True, exist_ok=True)
    rel = "data/renders/test-00000-of-00001.parquet"
    samples = []
    with ParquetShardWriter(work / SOURCE / rel, renders_features()) as writer:
        for i in range(n_translated):
            cat = CATS[i % len(CATS)]
            src = _image(rng, SOURCE)
            buf = io.BytesIO()
            Image.fromarray(src).save(buf, "PNG")
            data = buf.getvalue()
            project, texture, view = f"{cat}-p{i:05d}", "t0", "front"
            rec = RenderRecord(key=make_key(cat, project, texture, view), category=cat, project=project,
                               texture=texture, view=view, source_path=f"{cat}/{project}_{texture}_{view}.png",
                               width=SIZE[0], height=SIZE[1], mode="RGB", format="PNG", orientation=1,
                               sha256=hashlib.sha256(data).hexdigest(), num_bytes=len(data), split="test")
            writer.write(renders_row(rec, data))
            samples.append(rec.metadata())
            Image.fromarray(_translate(src, rng)).save(work / TRANSLATED / f"{rec.key}.png")
            (work / "source_png").mkdir(exist_ok=True)
            (work / "source_png" / f"{rec.key}.png").write_bytes(data)  # the same bytes, for the other venv
    manifest = {"shards": [{"path": rel, "format": "parquet", "config": "renders", "split": "test",
                            "num_samples": n_translated}], "samples": samples}
    (work / SOURCE / "manifest.json").write_text(json.dumps(manifest))
    for i in range(n_real):
        Image.fromarray(_image(rng, REAL)).save(work / REAL / f"photo{i:05d}.png")
    (work / "inputs.done").write_text("ok")


# ------------------------------------------------------------------------------------------------ our side
def side_ours(args) -> None:
    from r2r.cli import main
    from r2r.metrics import ALEXNET, INCEPTION, LPIPS_ALEX_HEADS, random_state_dict, save_state_dict

    work = args.work
    work.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    make_inputs(work, args.n_translated, args.n_real, args.seed)
    weights = {"inception": work / "inception.pth", "alexnet": work / "alexnet.pth",
               "heads": Path(args.lpips_heads) if args.lpips_heads else work / "heads.pth"}
    for n, (name, spec) in enumerate((("inception", INCEPTION), ("alexnet", ALEXNET), ("heads", LPIPS_ALEX_HEADS))):
        if not weights[name].is_file():
            save_state_dict(random_state_dict(spec, seed=args.seed + n), weights[name])
    print(f"inputs and weights ready in {time.perf_counter() - t0:.0f}s; running r2r evaluate", flush=True)
    code = main(["evaluate", "--translated", str(work / TRANSLATED), "--source", str(work / SOURCE),
                 "--real", str(work / REAL), "--out", str(work / "ours.json"), "--features-out",
                 str(work / "ours-features.safetensors"), "--inception-weights", str(weights["inception"]),
                 "--alexnet-weights", str(weights["alexnet"]), "--lpips-heads", str(weights["heads"]),
                 "--device", "cpu", "--batch-size", str(args.batch_size), "--num-workers", str(args.workers),
                 "--kid-subset-size", str(args.kid_subset_size), "--overwrite", "--no-progress"])
    if code != 0:
        raise SystemExit(f"r2r evaluate exited with {code}")
    (work / "weights.json").write_text(json.dumps({k: str(v) for k, v in weights.items()}))


# ------------------------------------------------------------------------------------------------ their side
def read_safetensors(path: Path) -> dict:
    """A minimal safetensors reader (8-byte header size, JSON header, raw little-endian data), so that the
    throwaway venv needs no safetensors package."""
    import numpy as np
    import torch

    raw = path.read_bytes()
    size = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8:8 + size])
    dtypes = {"F32": np.float32, "F64": np.float64}
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        a, b = info["data_offsets"]
        arr = np.frombuffer(raw[8 + size + a:8 + size + b], dtype=dtypes[info["dtype"]]).reshape(info["shape"])
        out[name] = torch.from_numpy(arr.copy())
    return out


def side_theirs(args) -> None:
    """Runs under the throwaway venv: torch-fidelity, lpips, torchmetrics, scikit-image; nothing of this project."""
    import importlib.metadata

    import lpips
    import numpy as np
    import skimage
    import torch
    import torch_fidelity
    import torchmetrics
    from PIL import Image
    from skimage.metrics import structural_similarity
    from torch_fidelity.metric_kid import kid_features_to_metric
    from torchmetrics.functional.image import structural_similarity_index_measure as tm_ssim

    work = args.work
    weights = json.loads((work / "weights.json").read_text())
    torch.set_num_threads(args.threads)
    out: dict = {"versions": {"torch": torch.__version__, "torch-fidelity": torch_fidelity.__version__,
                              "lpips": importlib.metadata.version("lpips"), "torchmetrics": torchmetrics.__version__,
                              "scikit-image": skimage.__version__}}
    t0 = time.perf_counter()
    cache = work / "tf-cache"
    metrics = torch_fidelity.calculate_metrics(
        input1=str(work / TRANSLATED), input2=str(work / REAL), kid=True, cuda=False, verbose=False,
        feature_extractor_weights_path=weights["inception"], cache_root=str(cache),
        input1_cache_name="parity-translated", input2_cache_name="parity-real", batch_size=args.batch_size,
        kid_subset_size=args.kid_subset_size,
    )
    out["fidelity"] = {"kid": metrics["kernel_inception_distance_mean"],
                       "kid_std": metrics["kernel_inception_distance_std"],
                       "seconds": round(time.perf_counter() - t0, 1)}
    feats = {name: torch.load(cache / f"parity-{name}-inception-v3-compat-features-2048.pt", weights_only=True)
             for name in ("translated", "real")}
    torch.save({k: v.contiguous() for k, v in feats.items()}, work / "theirs-features.pt")
    # their KID estimator on OUR features: isolates the math (subsets, kernel, estimator) from the network
    ours = read_safetensors(work / "ours-features.safetensors")
    for dtype in ("float64", "float32"):
        r = kid_features_to_metric(ours["translated"].to(getattr(torch, dtype)), ours["real"].to(getattr(torch, dtype)),
                                   kid_subsets=100, kid_subset_size=args.kid_subset_size, kid_degree=3, kid_gamma=None, kid_coef0=1,
                                   rng_seed=2020, verbose=False)
        out[f"kid_math_{dtype}"] = {"kid": r["kernel_inception_distance_mean"],
                                    "kid_std": r["kernel_inception_distance_std"]}
    # LPIPS v0.1 AlexNet: lpips' own module, its trunk loaded from our AlexNet file, heads from the same file we used
    model = lpips.LPIPS(pretrained=True, net="alex", version="0.1", model_path=weights["heads"], pnet_rand=True,
                        verbose=False).eval()
    trunk = torch.load(weights["alexnet"], map_location="cpu", weights_only=True)
    slices = {0: 1, 3: 2, 6: 3, 8: 4, 10: 5}  # features.N -> net.sliceK.N (lpips' alexnet slices)
    model.net.load_state_dict({f"slice{slices[int(k.split('.')[1])]}.{k.split('.', 1)[1]}": v
                               for k, v in trunk.items() if k.startswith("features.")}, strict=True)
    ours_json = json.loads((work / "ours.json").read_text())
    per_image = []
    for im in ours_json["images"]:
        t = np.asarray(Image.open(work / TRANSLATED / im["name"]).convert("RGB"))
        s = np.asarray(Image.open(work / "source_png" / f"{im['source_key']}.png").convert("RGB"))
        tt = torch.from_numpy(t).permute(2, 0, 1)[None].float() / 255
        st = torch.from_numpy(s).permute(2, 0, 1)[None].float() / 255
        with torch.no_grad():
            lp = float(model(tt, st, normalize=True).flatten()[0])
        sk = structural_similarity(t.astype(np.float64) / 255, s.astype(np.float64) / 255, gaussian_weights=True,
                                   sigma=1.5, use_sample_covariance=False, data_range=1.0, channel_axis=2)
        tm_default = float(tm_ssim(tt, st, data_range=1.0))
        _, full = tm_ssim(tt, st, data_range=1.0, return_full_image=True)
        tm_valid = float(full[..., 5:-5, 5:-5].mean())
        per_image.append({"name": im["name"], "lpips": lp, "ssim_skimage": float(sk), "ssim_torchmetrics": tm_default,
                          "ssim_torchmetrics_valid": tm_valid})
    out["images"] = per_image
    out["seconds"] = round(time.perf_counter() - t0, 1)
    (work / "theirs.json").write_text(json.dumps(out, indent=1))


# ------------------------------------------------------------------------------------------------ comparison
def side_compare(args) -> dict:
    import numpy as np
    import torch
    from safetensors.torch import load_file

    work = args.work
    ours = json.loads((work / "ours.json").read_text())
    theirs = json.loads((work / "theirs.json").read_text())
    f_ours = load_file(work / "ours-features.safetensors")
    f_theirs = torch.load(work / "theirs-features.pt", weights_only=True)

    def rel(a, b):
        return abs(a - b) / max(abs(b), 1e-300)

    feat = {}
    for name in ("translated", "real"):
        a, b = f_ours[name].double(), f_theirs[name].double()
        feat[name] = {"max_abs": float((a - b).abs().max()), "max_rel_to_max": float((a - b).abs().max() / b.abs().max())}
    by_name = {im["name"]: im for im in theirs["images"]}
    lp = np.array([im["lpips"] - by_name[im["name"]]["lpips"] for im in ours["images"]])
    sk = np.array([im["ssim"] - by_name[im["name"]]["ssim_skimage"] for im in ours["images"]])
    tmv = np.array([im["ssim"] - by_name[im["name"]]["ssim_torchmetrics_valid"] for im in ours["images"]])
    tmd = np.array([im["ssim"] - by_name[im["name"]]["ssim_torchmetrics"] for im in ours["images"]])
    tm_vs_sk = np.array([t["ssim_torchmetrics_valid"] - t["ssim_skimage"] for t in theirs["images"]])
    their_f32 = rel(theirs["kid_math_float32"]["kid"], theirs["kid_math_float64"]["kid"])
    lp_mean_theirs = float(np.mean([by_name[im["name"]]["lpips"] for im in ours["images"]]))
    report = {
        "bench": "parity_metrics",
        "n_translated": ours["n"], "n_real": ours["n_real"],
        "kid_ours": ours["kid"], "kid_std_ours": ours["kid_std"],
        "kid_torch_fidelity": theirs["fidelity"]["kid"], "kid_std_torch_fidelity": theirs["fidelity"]["kid_std"],
        "kid_rel_diff_end_to_end": rel(ours["kid"], theirs["fidelity"]["kid"]),
        "kid_std_rel_diff_end_to_end": rel(ours["kid_std"], theirs["fidelity"]["kid_std"]),
        "kid_rel_diff_math_float64": rel(ours["kid"], theirs["kid_math_float64"]["kid"]),
        "kid_std_rel_diff_math_float64": rel(ours["kid_std"], theirs["kid_math_float64"]["kid_std"]),
        "kid_rel_diff_math_vs_their_float32": rel(ours["kid"], theirs["kid_math_float32"]["kid"]),
        "kid_torch_fidelity_own_float32_vs_float64_rel": their_f32,
        "features_max_abs_diff": max(f["max_abs"] for f in feat.values()),
        "features_max_diff_rel_to_max": max(f["max_rel_to_max"] for f in feat.values()),
        "lpips_max_abs_diff": float(np.abs(lp).max()), "lpips_mean_ours": ours["lpips"],
        "lpips_mean_lpips": lp_mean_theirs, "lpips_mean_rel_diff": rel(ours["lpips"], lp_mean_theirs),
        "ssim_max_abs_diff_skimage": float(np.abs(sk).max()),
        "ssim_max_abs_diff_torchmetrics_valid": float(np.abs(tmv).max()),
        "ssim_mean_diff_torchmetrics_default": float(tmd.mean()),
        "ssim_torchmetrics_valid_vs_skimage_max_abs": float(np.abs(tm_vs_sk).max()),
        "targets": {"kid_rel": 1e-6, "lpips_abs": 1e-5, "ssim_abs": 1e-5},
        "versions_theirs": theirs["versions"], "versions_ours": ours["versions"],
    }
    # torch-fidelity sums its kernels in float32; we sum in float64. With identical features, the end-to-end
    # difference is exactly their rounding, measured here as their own float32 result against their float64 one.
    ok = {
        "KID end to end vs torch-fidelity (rel), or equal to its own float32 rounding":
            report["kid_rel_diff_end_to_end"] <= 1e-6
            or (report["features_max_abs_diff"] == 0 and abs(report["kid_rel_diff_end_to_end"] - their_f32)
                <= 1e-6 * max(1.0, their_f32)),
        "KID math vs torch-fidelity float64 (rel)": report["kid_rel_diff_math_float64"] <= 1e-6,
        "LPIPS vs lpips (max abs)": report["lpips_max_abs_diff"] <= 1e-5,
        "SSIM vs scikit-image (max abs)": report["ssim_max_abs_diff_skimage"] <= 1e-5,
        "SSIM vs torchmetrics valid region (max abs), or within its float32 error vs scikit-image":
            report["ssim_max_abs_diff_torchmetrics_valid"]
            <= max(1e-5, 1.1 * report["ssim_torchmetrics_valid_vs_skimage_max_abs"]),
    }
    rows = [
        ("Inception features, max |diff| (rel. to max)", f"{report['features_max_abs_diff']:.3g} "
                                                         f"({report['features_max_diff_rel_to_max']:.3g})"),
        ("KID ours / torch-fidelity (end to end)", f"{ours['kid']:.9g} / {theirs['fidelity']['kid']:.9g}"),
        ("KID end to end, rel diff", f"{report['kid_rel_diff_end_to_end']:.3g}"),
        ("KID std end to end, rel diff", f"{report['kid_std_rel_diff_end_to_end']:.3g}"),
        ("KID math on our features vs theirs float64, rel", f"{report['kid_rel_diff_math_float64']:.3g}"),
        ("KID math vs theirs float32, rel", f"{report['kid_rel_diff_math_vs_their_float32']:.3g}"),
        ("torch-fidelity's own float32 vs float64 KID, rel", f"{their_f32:.3g}"),
        ("LPIPS max |diff| per image", f"{report['lpips_max_abs_diff']:.3g}"),
        ("SSIM max |diff| vs scikit-image", f"{report['ssim_max_abs_diff_skimage']:.3g}"),
        ("SSIM max |diff| vs torchmetrics (valid region)", f"{report['ssim_max_abs_diff_torchmetrics_valid']:.3g}"),
        ("SSIM mean diff vs torchmetrics default (padded)", f"{report['ssim_mean_diff_torchmetrics_default']:.3g}"),
        ("torchmetrics (valid region) vs scikit-image, max", f"{report['ssim_torchmetrics_valid_vs_skimage_max_abs']:.3g}"),
    ]
    width = max(len(r[0]) for r in rows)
    for label, value in rows:
        print(f"{label:<{width}}  {value}")
    for label, passed in ok.items():
        print(f"{'PASS' if passed else 'FAIL'}  {label}")
    report["pass"] = ok
    print(json.dumps(report))
    return report


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--work", type=Path, default=Path("/tmp/parity-work"))
    ap.add_argument("--side", choices=("ours", "theirs", "compare"))
    ap.add_argument("--theirs", default="/tmp/parity/bin/python", help="python of the throwaway venv")
    ap.add_argument("--n-translated", type=int, default=1050)
    ap.add_argument("--n-real", type=int, default=1100)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--lpips-heads", help="use this heads file (e.g. lpips' published v0.1 alex.pth) on both sides")
    ap.add_argument("--kid-subset-size", type=int, default=1000, help="smaller only for a quick trial run")
    ap.add_argument("--batch-size", type=int, default=25)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    if args.side == "ours":
        side_ours(args)
    elif args.side == "theirs":
        side_theirs(args)
    elif args.side == "compare":
        side_compare(args)
    else:
        side_ours(args)
        cmd = [args.theirs, str(Path(__file__).resolve()), "--side", "theirs", "--work", str(args.work),
               "--batch-size", str(args.batch_size), "--threads", str(args.threads), "--kid-subset-size",
               str(args.kid_subset_size)]
        print("theirs:", " ".join(cmd), flush=True)
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # nothing of this project on their path
        subprocess.run(cmd, check=True, cwd="/", env=env)
        side_compare(args)


if __name__ == "__main__":
    main()
