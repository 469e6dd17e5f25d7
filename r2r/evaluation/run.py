"""`r2r evaluate`: the paper's protocol for any method's outputs: KID to real photos, LPIPS and SSIM to the source.

One JSON per method (`--out`): overall and per-category means and stds, the number of images, the exact protocol
(every setting and each weight file's sha256, or "random"), and every translated or real image that could not be
used, by name. `r2r evaluate-table` (table.py) puts several such files side by side. Pairing and decoding
are inputs.py; the metrics are r2r.metrics; the command is r2r/commands/evaluate.py. Expected failures are
one-line errors (r2r.cli).
"""

from __future__ import annotations

import os
import platform
import time
import warnings
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path

from synfashion.cliutil import option

from .results import FORMAT

RANDOM_WARNING = ("RANDOM WEIGHTS: at least one metric network has random weights; these numbers test the plumbing "
                  "only and are not comparable with anything")


@dataclass(frozen=True)
class MetricSettings:
    """What translated images are scored against and how: the real photos, the metric networks' weights, the KID
    settings, where and in what batches. `r2r evaluate` (EvalJob) and `r2r ablate` (every variant alike, so the rows
    are comparable) take the same settings."""

    real: str = option("--real", help="real photos: image folder, built folder or Hub dataset id")
    real_split: str | None = option("--real-split", default=None,
                                    help="split of a built folder / Hub dataset of real photos (default: all)")
    inception_weights: str | None = option(
        "--inception-weights", default=None,
        help="pt_inception-2015-12-05-6726825d.pth (default: torch hub cache, else download)")
    alexnet_weights: str | None = option("--alexnet-weights", default=None,
                                         help="torchvision's alexnet-owt-7be5be79.pth (default: hub cache/download)")
    lpips_heads: str | None = option("--lpips-heads", default=None,
                                     help="lpips' v0.1 alex.pth (default: hub cache / download)")
    random_weights: bool = option("--random-weights", default=False,
                                  help="random weights for every metric network whose file is not given (tests, "
                                       "demos: the numbers are meaningless, and the JSON says so)")
    weights_seed: int = option("--weights-seed", default=0, type=int, help="seed of --random-weights")
    allow_download: bool = option("--no-download", default=True, help="never download weights")
    kid_subsets: int = option("--kid-subsets", default=100, type=int,
                              help="KID subsets (the mean and std are over them)")
    kid_subset_size: int = option("--kid-subset-size", default=1000, type=int,
                                  help="images per KID subset (all images when fewer)")
    kid_seed: int = option("--kid-seed", default=2020, type=int, help="seed of the KID subset sampling")
    device: str = option("--device", default="auto", help="auto (cuda when available), cpu, cuda or cuda:N")
    batch_size: int = option("--batch-size", default=16, type=int, help="images per metric batch")

    def identity(self) -> dict:
        """What the numbers depend on (not where or how fast they are computed)."""
        return {k: v for k, v in asdict(self).items() if k not in ("allow_download", "device", "batch_size")}

    def job(self, translated: Path, out: Path, method: str, split: str, source_keys: tuple[str, ...],
            num_workers: int) -> EvalJob:
        """The `r2r evaluate` job that scores `translated` with these settings (ablate's, one per variant)."""
        return EvalJob(**asdict(self), translated=translated, out=out, split=split, method=method,
                       num_workers=num_workers, overwrite=True,  # ablate decided to (re)write it: see _eval_status
                       source_keys=source_keys)


@dataclass(frozen=True, kw_only=True)
class EvalJob(MetricSettings):
    """One `r2r evaluate` run: the metric settings, and what is scored (`translated`, paired with its source)."""

    translated: Path = option("--translated", type=Path,
                              help="translated dataset folder, or a folder of translated images")
    out: Path = option("--out", type=Path, help="output JSON")
    split: str = option("--split", default="test", help="source (and translated dataset) split")
    source: str | None = option("--source", default=None,
                                help="the rendered source (built SynFashion folder or Hub id); required for a folder "
                                     "of images, overrides a translated dataset's manifest")
    method: str | None = option("--method", default=None,
                                help="name in the table (default: the translated folder's name)")
    pairs_csv: Path | None = option("--pairs", default=None, type=Path,
                                    help="CSV with columns translated,source_key for files whose names do not match "
                                         "their source")
    num_workers: int = option("--num-workers", default=2, type=int, help="decoding worker processes")
    overwrite: bool = option("--overwrite", default=False, help="replace an existing --out file")
    features_out: Path | None = option("--features-out", default=None, type=Path,
                                       help="also write the Inception features (translated, real) that KID used, as "
                                            ".safetensors")
    source_keys: tuple[str, ...] | None = None  # score only these source rows of the split (a translated subset)


@dataclass
class PairResults:
    index: list[int] = field(default_factory=list)  # pair index, in evaluation order
    features: list = field(default_factory=list)  # [k, 2048] tensors
    lpips: list[float] = field(default_factory=list)
    ssim: list[float] = field(default_factory=list)
    unreadable: list[dict] = field(default_factory=list)
    resized: int = 0


def _device(name: str):
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


@dataclass
class Networks:
    """The metric networks on their device, and the records of their weights (what the JSON's protocol cites)."""

    inception: object
    lpips: object
    weights: dict
    device: object


@dataclass
class RealFeatures:
    """The real set's Inception features, computed once and handed to several `evaluate` calls (an ablation scores
    every variant against the same real photos): `evaluate` checks that they were made from the same real set and
    Inception weights as its job asks for."""

    real: str
    real_split: str | None
    description: str
    splits: list[str] | None
    features: object  # float32 [N, 2048]
    unreadable: list[dict]
    inception: dict  # the Inception weight record they were computed with


def networks_for(job: EvalJob) -> Networks:
    device = _device(job.device)
    inception, lpips, weights = load_networks(job, device)
    return Networks(inception, lpips, weights, device)


def load_networks(job: EvalJob, device) -> tuple[object, object, dict]:
    """(InceptionFeatures, LPIPS, weight records) on `device`."""
    from ..metrics import ALEXNET, INCEPTION, LPIPS, LPIPS_ALEX_HEADS, InceptionFeatures, load_weights, random_weights

    records, loaded = {}, {}
    for n, (name, spec, given) in enumerate((("inception", INCEPTION, job.inception_weights),
                                              ("alexnet", ALEXNET, job.alexnet_weights),
                                              ("lpips_heads", LPIPS_ALEX_HEADS, job.lpips_heads))):
        if given is None and job.random_weights:
            w = random_weights(spec, job.weights_seed + n)
        else:
            w = load_weights(spec, given, allow_download=job.allow_download)
        loaded[name] = w
        records[name] = w.record(spec)
    inception = InceptionFeatures(loaded["inception"]).to(device)
    lpips = LPIPS(alexnet=loaded["alexnet"], heads=loaded["lpips_heads"]).to(device)
    return inception, lpips, records


def _groups(items: list[dict], key) -> list[list[dict]]:
    out: dict = defaultdict(list)
    for it in items:
        out[key(it)].append(it)
    return list(out.values())


def _progress(console, enabled: bool):
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    return Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    TimeRemainingColumn(), console=console, disable=not enabled)


def _as_list(batch: list) -> list:
    return batch


def _init_decoder_worker(_: int) -> None:
    from loaders.decode import tune_decoder

    tune_decoder()


def run_pairs(plan, inception, lpips, ssim_config, job: EvalJob, device, bar) -> PairResults:
    """Inception features of every translated image, LPIPS and SSIM of every pair, in batches."""
    import torch

    from .inputs import PairImages
    from ..metrics import ssim

    res = PairResults()
    loader = torch.utils.data.DataLoader(
        PairImages(plan), batch_size=job.batch_size, shuffle=False, num_workers=job.num_workers,
        collate_fn=_as_list, worker_init_fn=_init_decoder_worker if job.num_workers else None,
    )
    task = bar.add_task("translated: Inception, LPIPS, SSIM", total=len(plan.pairs))
    for batch in loader:
        ok = []
        for it in batch:
            if "error" in it:
                res.unreadable.append({"name": plan.pairs[it["i"]].name, "reason": it["error"]})
            else:
                ok.append(it)
        for group in _groups(ok, lambda it: (tuple(it["translated"].shape), tuple(it["source"].shape))):
            t = torch.stack([it["translated"] for it in group]).to(device)
            s = torch.stack([it["source"] for it in group]).to(device)
            at_source = [it["translated_at_source"] for it in group]
            res.resized += sum(a is not None for a in at_source)
            ta = t if at_source[0] is None else torch.stack(at_source).to(device)
            res.features.append(inception(t).cpu())
            res.lpips += lpips(ta, s).double().cpu().tolist()
            res.ssim += ssim(ta, s, ssim_config).cpu().tolist()
            res.index += [it["i"] for it in group]
        bar.advance(task, len(batch))
    return res


def run_real(real_set, inception, job: EvalJob, device, bar) -> tuple[object, list[dict]]:
    """Inception features of every readable real image, and the unreadable ones by name."""
    import torch

    from loaders import LoaderConfig
    from loaders.loader import map_style_loader

    loader = map_style_loader(real_set.dataset, LoaderConfig(batch_size=job.batch_size, num_workers=job.num_workers,
                                                             shuffle=False, on_error="skip"))
    task = bar.add_task("real: Inception", total=len(real_set.dataset))
    feats = []
    seen = 0
    with warnings.catch_warnings():  # the loader warns about skipped images; they are listed in the JSON instead
        warnings.simplefilter("ignore", UserWarning)
        for batch in loader:
            images = batch["image"]
            images = list(images) if isinstance(images, torch.Tensor) else images
            done = 0
            # keep the dataset order inside the batch while grouping same-size images into one forward pass
            start = 0
            while start < len(images):
                end = start + 1
                while end < len(images) and images[end].shape == images[start].shape:
                    end += 1
                feats.append(inception(torch.stack(images[start:end]).to(device)).cpu())
                done += end - start
                start = end
            skipped_now = len(loader.skipped) - seen
            seen = len(loader.skipped)
            bar.advance(task, done + skipped_now)
    unreadable = [{"name": s.source, "key": s.key, "reason": s.reason} for s in loader.skipped]
    return (torch.cat(feats) if feats else torch.zeros(0, 2048)), unreadable


def real_features(job: EvalJob, networks: Networks, *, progress: bool = True, real_set=None) -> RealFeatures:
    """The Inception features of `job.real` (every readable image) and the unreadable ones by name."""
    import torch
    from rich.console import Console

    from .inputs import open_real

    real_set = real_set or open_real(job.real, job.real_split)
    with torch.inference_mode(), _progress(Console(stderr=True), progress) as bar:
        features, unreadable = run_real(real_set, networks.inception, job, networks.device, bar)
    return RealFeatures(job.real, job.real_split, real_set.description, real_set.splits, features, unreadable,
                        networks.weights["inception"])


def _mean_std(values: list[float]) -> tuple[float | None, float | None]:
    import numpy as np

    if not values:
        return None, None
    a = np.asarray(values, dtype=np.float64)
    return float(a.mean()), float(a.std())


def _kid_entry(real, fake, job: EvalJob) -> dict:
    from ..metrics import KIDConfig, kid_subsets

    if fake.shape[0] < 2 or real.shape[0] < 2:
        return {"kid": None, "kid_std": None, "kid_x1000": None, "kid_std_x1000": None, "kid_subset_size": None,
                "kid_note": f"KID needs at least 2 images per set ({fake.shape[0]} translated, {real.shape[0]} real)"}
    r = kid_subsets(real, fake, KIDConfig(subsets=job.kid_subsets, subset_size=job.kid_subset_size,
                                          seed=job.kid_seed))
    return {"kid": r.mean, "kid_std": r.std, "kid_x1000": r.mean * 1000, "kid_std_x1000": r.std * 1000,
            "kid_subset_size": r.subset_size}


def _summary(indices: list[int], pos: dict, res: PairResults, real, fake, job: EvalJob) -> dict:
    rows = [pos[i] for i in indices]
    lp_mean, lp_std = _mean_std([res.lpips[r] for r in rows])
    ss_mean, ss_std = _mean_std([res.ssim[r] for r in rows])
    out = {"n": len(rows)}
    out.update(_kid_entry(real, fake[rows] if rows else fake[:0], job))
    out.update({"lpips": lp_mean, "lpips_std": lp_std, "ssim": ss_mean, "ssim_std": ss_std})
    return out


def protocol(job: EvalJob, weights: dict, ssim_config, resized: int) -> dict:
    from .inputs import RESIZE_METHOD

    random = any(w["sha256"] == "random" for w in weights.values())
    return {
        "random_weights": random,
        **({"warning": RANDOM_WARNING} if random else {}),
        "kid": {
            "features": "FID Inception v3 (TensorFlow 2015-12-05) 2048-d pool features, as torch-fidelity 0.3.0's "
                        "inception-v3-compat and pytorch-fid",
            "resize": "TensorFlow 1.x bilinear (align_corners=False, no antialiasing) from each image's own size "
                      "to 299x299, on 0..255 floats",
            "input": "(x - 128) / 128",
            "kernel": "polynomial (a.b * gamma + coef0) ^ degree", "degree": 3, "gamma": "1/2048", "coef0": 1,
            "estimator": "unbiased MMD^2 (torch-fidelity's default)",
            "subsets": job.kid_subsets, "subset_size": job.kid_subset_size, "seed": job.kid_seed,
            "sampling": "numpy RandomState(seed).choice(n, size, replace=False): translated then real for each "
                        "subset (torch-fidelity with input1 = translated, input2 = real)",
            "small_sets": "a set smaller than subset_size: every subset uses min(subset_size, n_translated, n_real) "
                          "images (kid_subset_size records it; torch-fidelity refuses such sets)",
            "std": "population std (ddof 0) over subsets",
            "arithmetic": "features float32, kernel sums float64 (torch-fidelity sums in float32)",
            "units": "kid and kid_std raw; kid_x1000 and kid_std_x1000 are x1000, the paper's unit",
            "per_category": "the category's translated images against all real images",
            "weights": weights["inception"],
        },
        "lpips": {
            "version": "0.1", "net": "alex",
            "input": "[0, 1] -> [-1, 1] -> lpips ScalingLayer (shift -0.030,-0.088,-0.188; scale 0.458,0.448,0.450)",
            "layers": "relu1..relu5, unit-normalised along channels (eps 1e-10), linear heads, spatial mean, summed",
            "resolution": "the source image's",
            "std": "population std (ddof 0) over images",
            "weights": {"alexnet": weights["alexnet"], "heads": weights["lpips_heads"]},
        },
        "ssim": {
            **ssim_config.as_dict(), "window_kind": "gaussian",
            "channels": "RGB, each channel scored, averaged",
            "region": "valid: window positions inside the image (a 5-pixel border is not scored), as Wang et al.'s "
                      "code and scikit-image; torchmetrics 1.9 also averages the reflect-padded border",
            "covariance": "population (scikit-image use_sample_covariance=False)",
            "resolution": "the source image's",
            "arithmetic": "float32 on images centred at 0.5",
            "std": "population std (ddof 0) over images",
        },
        "translated_resize": {
            "when": "a translated image's size differs from its source's (LPIPS and SSIM only; KID reads each image "
                    "at its own size)",
            "method": RESIZE_METHOD, "count": resized,
        },
        "decode": "loaders.decode_image: EXIF orientation applied, alpha composited on white, 16-bit scaled, CMYK "
                  "converted (torch-fidelity reads files with PIL convert('RGB'), without EXIF orientation)",
        "order": "translated images sorted by name (pairs) and real images in their source's order; KID subsets "
                 "index these orders",
    }


def _versions() -> dict:
    import numpy
    import torch

    from .. import __version__

    return {"r2r": __version__, "torch": torch.__version__, "numpy": numpy.__version__,
            "python": platform.python_version()}


def source_subset_record(keys: tuple[str, ...] | None) -> dict | None:
    import hashlib

    if keys is None:
        return None
    ordered = sorted(set(keys))
    return {"n": len(ordered), "sha256": hashlib.sha256("\n".join(ordered).encode()).hexdigest()}


def _paths_from_json(job: EvalJob) -> dict:
    """The local inputs relative to the JSON's own folder, so `r2r report` / `study-page` find them from anywhere
    while the JSON and the data keep their places relative to each other (the paths above are as given)."""
    base = job.out.resolve().parent
    out = {}
    for key, value in (("translated", job.translated), ("source", job.source), ("pairs_csv", job.pairs_csv)):
        if value is not None and Path(value).exists():
            out[key] = os.path.relpath(Path(value).resolve(), base)
    return out


def evaluate(job: EvalJob, *, progress: bool = True, networks: Networks | None = None,
             real: RealFeatures | None = None) -> dict:
    """Run the protocol and write `job.out` (atomically); returns the JSON object.

    `networks` / `real`: loaded once by a caller that scores several translations (`networks_for`,
    `real_features`); `real` must come from the same real set and Inception weights as `job` names."""
    import torch
    from rich.console import Console

    from .results import write_result

    from .inputs import open_real, plan_pairs
    from ..metrics import SSIMConfig

    for target in (job.out, job.features_out):
        if target is not None and target.exists() and not job.overwrite:
            raise FileExistsError(f"{target} exists; pass --overwrite to replace it")
    if job.batch_size < 1 or job.num_workers < 0:
        raise ValueError(f"--batch-size must be >= 1 and --num-workers >= 0 (got {job.batch_size}, "
                         f"{job.num_workers})")
    console = Console(stderr=True)
    started = time.perf_counter()
    plan = plan_pairs(job.translated, job.source, job.split, job.pairs_csv, subset=job.source_keys)
    for p in plan.unpaired[:20]:
        console.print(f"[yellow]unpaired[/] {p['name']}: {p['reason']}", highlight=False)
    if len(plan.unpaired) > 20:
        console.print(f"[yellow]unpaired[/] ... and {len(plan.unpaired) - 20} more (all listed in {job.out})")
    if plan.untranslated:
        shown = ", ".join(plan.untranslated[:5]) + (" ..." if len(plan.untranslated) > 5 else "")
        console.print(f"[yellow]untranslated[/]: {len(plan.untranslated)} source image(s) of split {job.split!r} have "
                      f"no translated image: {shown}", highlight=False)
    if plan.not_selected:
        console.print(f"{len(plan.not_selected)} source image(s) of split {job.split!r} were not selected for "
                      "translation (--categories / --limit): not counted", highlight=False)
    if not plan.pairs:
        raise ValueError(f"no translated image under {job.translated} could be paired with a source image of split "
                         f"{job.split!r} of {plan.source}")
    real_set = open_real(job.real, job.real_split) if real is None else None  # a bad --real fails before loading
    nets = networks or networks_for(job)
    inception, lpips, weights, device = nets.inception, nets.lpips, nets.weights, nets.device
    if real is not None and (real.real, real.real_split, real.inception) != (job.real, job.real_split,
                                                                          weights["inception"]):
        raise ValueError(f"the precomputed real features were made from {real.real!r} (split {real.real_split}) "
                         f"with Inception weights {real.inception['sha256']}, not from {job.real!r} (split "
                         f"{job.real_split}) with {weights['inception']['sha256']}")
    ssim_config = SSIMConfig()
    with torch.inference_mode(), _progress(console, progress) as bar:
        res = run_pairs(plan, inception, lpips, ssim_config, job, device, bar)
    if real is None:
        real = real_features(job, nets, progress=progress, real_set=real_set)
    real_description, real_splits, real_unreadable, real = real.description, real.splits, real.unreadable, \
        real.features
    for u in res.unreadable + real_unreadable:
        console.print(f"[yellow]unreadable[/] {u['name']}: {u['reason']}", highlight=False)
    if not res.index:
        raise ValueError(f"none of the {len(plan.pairs)} paired images could be read")
    # evaluation order = pair order (sorted by name), whatever order the batches were grouped in
    order = sorted(range(len(res.index)), key=lambda r: res.index[r])
    res.index = [res.index[r] for r in order]
    res.lpips = [res.lpips[r] for r in order]
    res.ssim = [res.ssim[r] for r in order]
    fake = torch.cat(res.features)[torch.tensor(order)]  # feature rows were appended in res.index's old order
    pos = {i: r for r, i in enumerate(res.index)}
    by_cat: dict[str, list[int]] = defaultdict(list)
    for i in res.index:
        by_cat[plan.pairs[i].category].append(i)
    method = job.method or job.translated.resolve().name
    out = {
        "format": FORMAT,
        "method": method,
        **_summary(res.index, pos, res, real, fake, job),
        "n_real": int(real.shape[0]),
        "per_category": {c: _summary(by_cat[c], pos, res, real, fake, job) for c in sorted(by_cat)},
        "protocol": protocol(job, weights, ssim_config, res.resized),
        "inputs": {
            "translated": str(job.translated), "translated_kind": plan.kind, "source": plan.source,
            "translated_fingerprint": plan.fingerprint, "source_subset": source_subset_record(job.source_keys),
            "split": job.split, "real": real_description, "real_splits": real_splits,
            "pairs_csv": str(job.pairs_csv) if job.pairs_csv else None,
            "from_json": _paths_from_json(job),
        },
        "problems": {
            "unpaired": plan.unpaired, "unreadable": res.unreadable, "untranslated": plan.untranslated,
            "real_unreadable": real_unreadable, "ignored": plan.ignored,
        },
        "not_selected": len(plan.not_selected),  # left out by the translation's own --categories / --limit
        "images": [
            {"name": plan.pairs[i].name, "source_key": plan.pairs[i].source_key,
             "category": plan.pairs[i].category, "lpips": res.lpips[pos[i]], "ssim": res.ssim[pos[i]]}
            for i in res.index
        ],
        "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(job).items()}
        | {"source_keys": source_subset_record(job.source_keys)},  # the keys themselves are the pairs (`images`)
        "device": str(device),
        "versions": _versions(),
        "seconds": round(time.perf_counter() - started, 3),
    }
    job.out.parent.mkdir(parents=True, exist_ok=True)
    if job.features_out is not None:
        save_features(job.features_out, fake, real, [plan.pairs[i].name for i in res.index], out)
    write_result(job.out, out)
    return out


def save_features(path: Path, fake, real, names: list[str], result: dict) -> None:
    """The Inception features KID was computed from (rows in KID's order), for reuse and audits."""
    import json

    from safetensors.torch import save

    from synfashion.fs.atomic import write_bytes_atomic

    meta = {"translated_names": json.dumps(names), "method": result["method"], "real": result["inputs"]["real"],
            "inception_sha256": result["protocol"]["kid"]["weights"]["sha256"]}
    path.parent.mkdir(parents=True, exist_ok=True)
    write_bytes_atomic(path, save({"translated": fake.contiguous(), "real": real.contiguous()}, metadata=meta),
                       durable=False)


def problem_count(result: dict) -> int:
    p = result["problems"]
    return len(p["unpaired"]) + len(p["unreadable"]) + len(p["untranslated"]) + len(p["real_unreadable"])


__all__ = ["EvalJob", "MetricSettings", "Networks", "RealFeatures", "evaluate", "load_networks", "networks_for",
           "problem_count", "protocol", "real_features"]
