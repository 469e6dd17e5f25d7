"""`r2r evaluate`: the paper's protocol for any method's outputs: KID to real photos, LPIPS and SSIM to the source;
beside it FID, and KID / FD (and optionally precision and recall) in the DINOv2 and CLIP feature spaces.

One JSON per method (`--out`): overall and per-category means and stds, the number of images, the exact protocol
(every setting and each weight file's sha256, or "random"), and every translated or real image that could not be
used, by name. The top-level KID fields are the paper's (Inception); `spaces` holds every chosen feature space's
numbers (`spaces.inception.fd` is FID), overall and per category, each category with its n and spreads and marked
`trusted: false` below `--min-category-n`. `r2r evaluate-table` (table.py) puts several such files side by side.
Pairing and decoding are inputs.py; the real set's features, computed once and cached, reference.py; the feature
spaces' networks spaces.py; the metrics r2r.metrics; the commands r2r/commands/evaluate.py. Expected failures are
one-line errors (r2r.cli).
"""

from __future__ import annotations

import contextlib
import os
import platform
import time
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path

from synfashion.cliutil import (
    comma_text,
    comma_tuple,
    comma_tuple_or_none,
    option,
    reuse,
)

from .reference import DECODE_PROTOCOL, RealFeatures
from .results import FORMAT
from .spaces import SPACES, WHAT, parse_features

RANDOM_WARNING = ("RANDOM WEIGHTS: at least one metric network has random weights; these numbers test the plumbing "
                  "only and are not comparable with anything")


@dataclass(frozen=True)
class MetricSettings:
    """What translated images are scored against and how: the real photos, the metric networks' weights, the KID
    settings, where and in what batches. `r2r evaluate` (EvalJob) and `r2r ablate` (every variant alike, so the rows
    are comparable) take the same settings."""

    real: str | None = option("--real", default=None,
                              help="real photos: image folder, built folder or Hub dataset id (or --real-stats)")
    real_split: str | None = option("--real-split", default=None,
                                    help="split of a built folder / Hub dataset of real photos (default: all)")
    real_stats: tuple[str, ...] | None = option(
        "--real-stats", default=None, parse=comma_tuple_or_none, metavar="FILE[,FILE]",
        help="instead of --real: statistics files written by `r2r evaluate-stats`, one per feature space "
             "(comma-separated); a file for another network, weights or protocol is refused")
    features: tuple[str, ...] = option(
        "--features", default=("inception",), parse=lambda text: parse_features(comma_tuple(text)), show=comma_text,
        help=f"feature spaces, comma-separated, from {','.join(SPACES)}: KID and FD in each (inception, the paper's "
             "KID and FID, is always scored; dinov2 = FD_DINOv2, ViT-B/14; clip = CLIP-FID, ViT-B/32)")
    inception_weights: str | None = option(
        "--inception-weights", default=None,
        help="pt_inception-2015-12-05-6726825d.pth (default: torch hub cache, else download)")
    dinov2_weights: str | None = option(
        "--dinov2-weights", default=None,
        help="DINOv2 ViT-B/14: a Hub snapshot folder (config.json + model.safetensors) or a .safetensors file "
             "(default: the Hugging Face cache of facebook/dinov2-base, else download)")
    clip_weights: str | None = option(
        "--clip-weights", default=None,
        help="CLIP ViT-B/32: a Hub snapshot folder or a .safetensors file (default: the Hugging Face cache of "
             "openai/clip-vit-base-patch32, else download)")
    alexnet_weights: str | None = option("--alexnet-weights", default=None,
                                         help="torchvision's alexnet-owt-7be5be79.pth (default: hub cache/download)")
    lpips_heads: str | None = option("--lpips-heads", default=None,
                                     help="lpips' v0.1 alex.pth (default: hub cache / download)")
    random_weights: bool = option("--random-weights", default=False,
                                  help="random weights for every metric network whose file is not given, DINOv2 "
                                       "and CLIP included (tests, demos: the numbers are meaningless, and the JSON "
                                       "says so)")
    weights_seed: int = option("--weights-seed", default=0, type=int, help="seed of --random-weights")
    allow_download: bool = option("--no-download", default=True, help="never download weights")
    kid_subsets: int = option("--kid-subsets", default=100, type=int,
                              help="KID subsets (the mean and std are over them)")
    kid_subset_size: int = option("--kid-subset-size", default=1000, type=int,
                                  help="images per KID subset (all images when fewer)")
    kid_seed: int = option("--kid-seed", default=2020, type=int, help="seed of the KID subset sampling")
    fd_resamples: int = option("--fd-resamples", default=100, type=int,
                               help="bootstrap resamples of both sets behind each FD's spread (fd_std; at least 2)")
    precision_recall: bool = option("--precision-recall", default=False,
                                    help="also improved precision and recall (Kynkaanniemi et al. 2019, k = 3) in "
                                         "each feature space")
    min_category_n: int = option("--min-category-n", default=10, type=int,
                                 help="a category with fewer translated images is marked trusted: false (its numbers "
                                      "are kept, never averaged into anything)")
    stats_cache: Path | None = option("--stats-cache", default=None, type=Path, metavar="DIR",
                                      help="folder of cached real-set features (default: $R2R_CACHE/stats, else "
                                           "$XDG_CACHE_HOME/r2r/stats, else ~/.cache/r2r/stats)")
    use_stats_cache: bool = option("--no-stats-cache", default=True,
                                   help="neither read nor write cached real-set features")
    device: str = option("--device", default="auto", help="auto (cuda when available), cpu, cuda or cuda:N")
    batch_size: int = option("--batch-size", default=16, type=int, help="images per metric batch")

    def identity(self) -> dict:
        """What the numbers depend on (not where or how fast they are computed)."""
        return {k: v for k, v in asdict(self).items()
                if k not in ("allow_download", "device", "batch_size", "stats_cache", "use_stats_cache")}

    def check(self) -> None:
        """Settings that cannot work together, as one-line errors before any work."""
        if (self.real is None) == (not self.real_stats):
            raise ValueError("give the real photos as --real (a folder, built folder or Hub id) or as --real-stats "
                             "(files from r2r evaluate-stats), exactly one of them")
        if self.real_stats and self.real_split is not None:
            raise ValueError("--real-split selects from --real; a --real-stats file already holds one set")
        parse_features(self.features)
        if self.fd_resamples < 2:
            raise ValueError(f"--fd-resamples must be at least 2 (a spread needs two resamples), got "
                             f"{self.fd_resamples}")
        if self.min_category_n < 1 or self.kid_subsets < 1 or self.kid_subset_size < 2:
            raise ValueError(f"--min-category-n >= 1, --kid-subsets >= 1 and --kid-subset-size >= 2 (got "
                             f"{self.min_category_n}, {self.kid_subsets}, {self.kid_subset_size})")

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
                                       help="also write the features (translated, real) that KID and FD used, every "
                                            "space, as .safetensors")
    source_keys: tuple[str, ...] | None = None  # score only these source rows of the split (a translated subset)


def _stats_features(text: str) -> tuple[str, ...]:
    return parse_features(comma_tuple(text), with_inception=False)


@dataclass(frozen=True, kw_only=True)
class StatsJob:
    """`r2r evaluate-stats`: one real set's features in each chosen space, as shareable statistics files (and in
    the cache, like any evaluate run's)."""

    real: str = option("real", help="real photos: image folder, built folder or Hub dataset id")
    out: Path = option("--out", type=Path,
                       help="statistics file (.safetensors) to write; with several --features a name holding "
                            "{space}, e.g. stats-{space}.safetensors (one file per space)")
    real_split: str | None = reuse(MetricSettings, "real_split")
    features: tuple[str, ...] = reuse(MetricSettings, "features", parse=_stats_features,
                                      help=f"feature spaces, comma-separated, from {','.join(SPACES)}")
    inception_weights: str | None = reuse(MetricSettings, "inception_weights")
    dinov2_weights: str | None = reuse(MetricSettings, "dinov2_weights")
    clip_weights: str | None = reuse(MetricSettings, "clip_weights")
    random_weights: bool = reuse(MetricSettings, "random_weights")
    weights_seed: int = reuse(MetricSettings, "weights_seed")
    allow_download: bool = reuse(MetricSettings, "allow_download")
    stats_cache: Path | None = reuse(MetricSettings, "stats_cache")
    use_stats_cache: bool = reuse(MetricSettings, "use_stats_cache")
    device: str = reuse(MetricSettings, "device")
    batch_size: int = reuse(MetricSettings, "batch_size")
    num_workers: int = reuse(EvalJob, "num_workers")
    overwrite: bool = reuse(EvalJob, "overwrite")
    real_stats: tuple[str, ...] | None = None  # what real_features reads: never set here

    def paths(self) -> dict[str, Path]:
        spaces = parse_features(self.features, with_inception=False)
        text = str(self.out)
        if len(spaces) > 1 and "{space}" not in text:
            raise ValueError(f"--out {text}: several --features ({', '.join(spaces)}) make one file each; put "
                             "{space} in the name, e.g. stats-{space}.safetensors")
        return {space: Path(text.replace("{space}", space)) for space in spaces}


def make_stats(job: StatsJob, *, progress: bool = True) -> list[dict]:
    """Write `job`'s statistics files; one {"space", "path", "n", "network", "from"} per file."""
    from .inputs import open_real
    from .reference import write_stats

    paths = job.paths()
    for path in paths.values():
        if path.exists() and not job.overwrite:
            raise FileExistsError(f"{path} exists; pass --overwrite to replace it")
    if job.batch_size < 1 or job.num_workers < 0:
        raise ValueError(f"--batch-size must be >= 1 and --num-workers >= 0 (got {job.batch_size}, "
                         f"{job.num_workers})")
    real_set = open_real(job.real, job.real_split)
    nets = networks_for(job, lpips=False, spaces=tuple(paths))
    real = real_features(job, nets, progress=progress, real_set=real_set)
    if real.unreadable:  # a shared file must describe exactly the images it names (reference.py)
        names = ", ".join(u["name"] for u in real.unreadable[:5]) + (" ..." if len(real.unreadable) > 5 else "")
        raise ValueError(f"{len(real.unreadable)} real image(s) cannot be read ({names}); fix or remove them: a "
                         "statistics file describes every image of its set")
    out = []
    for space, path in paths.items():
        write_stats(path, space, nets.extractors[space], real, real.hashes)
        out.append({"space": space, "path": path, "n": real.n_of(space), "network": nets.extractors[space].identity
                    .network, "from": real.origins[space]["from"]})
    return out


@dataclass
class PairResults:
    index: list[int] = field(default_factory=list)  # pair index, in evaluation order
    features: dict = field(default_factory=dict)  # space -> list of [k, D] tensors
    lpips: list[float] = field(default_factory=list)
    ssim: list[float] = field(default_factory=list)
    unreadable: list[dict] = field(default_factory=list)
    resized: int = 0


def tune_allocator(*, force: bool = False) -> None:
    """Keep freed memory in the process for reuse instead of handing every large tensor's pages back to the system.

    glibc serves each allocation above 32 MB with fresh mmap'd pages, so every 768x1024 batch's activations
    page-fault anew: 11-12 of ~64 CPU seconds went to system time scoring 8 pairs three times, 1.5 with this.
    Process-wide and never undone, so the evaluate commands call it only when the process is the `r2r` command
    itself (a short-lived one; not a test runner or a program that called `r2r.cli.main`) unless `force`, on
    Linux/glibc, and not where the user set malloc tunables (MALLOC_*, GLIBC_TUNABLES) of their own."""
    import ctypes
    import sys

    main = sys.modules.get("__main__")
    command = getattr(getattr(main, "__spec__", None), "name", None) == "r2r.cli" or \
        os.path.basename(sys.argv[0] if sys.argv else "") == "r2r"
    if not (force or command) or sys.platform != "linux" or "GLIBC_TUNABLES" in os.environ \
            or any(k.startswith("MALLOC_") for k in os.environ):
        return
    try:
        libc = ctypes.CDLL("libc.so.6")
        m_trim_threshold, m_mmap_max = -1, -4
        libc.mallopt(m_mmap_max, 0)  # every block from the heap, so that a freed one can be reused
        libc.mallopt(m_trim_threshold, 2**31 - 1)  # and the heap's free top is kept, not returned
    except (OSError, AttributeError):  # not glibc (musl): its default stays
        return


def _device(name: str):
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


@dataclass
class Networks:
    """The metric networks on their device: one feature extractor per space (spaces.Extractor), LPIPS (None where
    only features are wanted: `r2r evaluate-stats`), and the records of their weights (what the protocol cites)."""

    extractors: dict
    lpips: object | None
    weights: dict
    device: object

    @property
    def inception(self):
        return self.extractors["inception"].module

    def identities(self) -> dict:
        return {space: ex.identity.as_dict() for space, ex in self.extractors.items()}


def networks_for(settings: MetricSettings, *, lpips: bool = True, spaces: tuple[str, ...] | None = None) -> Networks:
    """The networks `settings` name on its device: a feature extractor for each space (`spaces`, default its
    `--features`, Inception always) and LPIPS unless `lpips` is False (`r2r evaluate-stats`)."""
    from ..metrics import (
        ALEXNET,
        INCEPTION,
        LPIPS,
        LPIPS_ALEX_HEADS,
        load_weights,
        random_weights,
    )
    from .spaces import load_extractor

    device = _device(settings.device)
    spaces = parse_features(settings.features) if spaces is None else spaces

    def weights(n: int, spec, given):
        if given is None and settings.random_weights:
            return random_weights(spec, settings.weights_seed + n)
        return load_weights(spec, given, allow_download=settings.allow_download)

    extractors, records, module = {}, {}, None
    if "inception" in spaces:
        extractors["inception"] = load_extractor("inception", settings, device,
                                                 weights(0, INCEPTION, settings.inception_weights))
        records["inception"] = extractors["inception"].record
    if lpips:
        alexnet, heads = weights(1, ALEXNET, settings.alexnet_weights), weights(2, LPIPS_ALEX_HEADS,
                                                                                 settings.lpips_heads)
        module = LPIPS(alexnet=alexnet, heads=heads).to(device)
        records["alexnet"], records["lpips_heads"] = alexnet.record(ALEXNET), heads.record(LPIPS_ALEX_HEADS)
    for space in (s for s in SPACES if s in spaces and s != "inception"):
        extractors[space] = load_extractor(space, settings, device)
        records[space] = extractors[space].record
    return Networks(extractors, module, records, device)


def _groups(items: list[dict], key) -> list[list[dict]]:
    out: dict = defaultdict(list)
    for it in items:
        out[key(it)].append(it)
    return list(out.values())


def _progress(console, enabled: bool):
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    return Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    TimeRemainingColumn(), console=console, disable=not enabled)


def run_pairs(plan, nets: Networks, ssim_config, job: EvalJob, bar) -> PairResults:
    """Every translated image's features in each space, LPIPS and SSIM of every pair, in batches decoded by worker
    processes while the networks run on the previous ones."""
    import torch

    from ..metrics import ssim
    from .inputs import PairImages
    from .reference import decode_loader

    res = PairResults(features={space: [] for space in nets.extractors})
    device = nets.device
    loader = decode_loader(PairImages(plan), job.batch_size, job.num_workers, device)
    task = bar.add_task(f"translated: {', '.join(nets.extractors)}, LPIPS, SSIM", total=len(plan.pairs))
    for batch in loader:
        ok = []
        for it in batch:
            if "error" in it:
                res.unreadable.append({"name": plan.pairs[it["i"]].name, "reason": it["error"]})
            else:
                ok.append(it)
        for group in _groups(ok, lambda it: (tuple(it["translated"].shape), tuple(it["source"].shape))):
            t = torch.stack([it["translated"] for it in group]).to(device, non_blocking=True)
            s = torch.stack([it["source"] for it in group]).to(device, non_blocking=True)
            at_source = [it["translated_at_source"] for it in group]
            res.resized += sum(a is not None for a in at_source)
            ta = t if at_source[0] is None else torch.stack(at_source).to(device, non_blocking=True)
            for space, ex in nets.extractors.items():
                res.features[space].append(ex.module(t).float().cpu())
            res.lpips += nets.lpips(ta, s).double().cpu().tolist()
            res.ssim += ssim(ta, s, ssim_config).cpu().tolist()
            res.index += [it["i"] for it in group]
        bar.advance(task, len(batch))
    return res


def real_features(job: MetricSettings, networks: Networks, *, progress: bool = True, real_set=None) -> RealFeatures:
    """The real set's features in every space of `networks` (reference.py): from --real-stats files, the cache,
    or computed once (decoding in `job.num_workers` processes) and cached; the unreadable images by name."""
    from r2r.progress import stderr_console

    from . import reference

    console = stderr_console()
    return reference.real_features(job, networks.extractors, networks.device, console=console,
                                   progress_bar=lambda: _progress(console, progress), real_set=real_set)


def _mean_std(values: list[float]) -> tuple[float | None, float | None]:
    import numpy as np

    if not values:
        return None, None
    a = np.asarray(values, dtype=np.float64)
    return float(a.mean()), float(a.std())


KID_FIELDS = ("kid", "kid_std", "kid_x1000", "kid_std_x1000", "kid_subset_size")


@contextlib.contextmanager
def _one_thread():
    """The arithmetic on features (KID's subsets, FD and its bootstrap, precision/recall) is many small ops, where a
    second intra-op thread only waits: KID of 388 x 100 images took 1.44 s on two threads and 0.08 s on one, 2,000 x
    1,000 17.5 s and 5.7 s, on the project's shared 2-core machine. The networks keep every thread."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def _space(real, fake, job: MetricSettings) -> tuple[dict, bool, str | None]:
    """(numbers of one feature space, trusted, why not) for a set of translated features against the real ones:
    KID (mean and std over subsets, the subset size used), FD (float64, the "gram" identity: exact) with its
    bootstrap std, precision and recall when asked; r2r.metrics.per_category's rules for n and trust."""
    from ..metrics import CategoryConfig, KIDConfig, precision_recall
    from ..metrics.frechet import FDBootstrap
    from ..metrics.knn_pr import K
    from ..metrics.per_category import category_entry

    config = CategoryConfig(min_n=job.min_category_n, kid=KIDConfig(subsets=job.kid_subsets,
                                                                     subset_size=job.kid_subset_size,
                                                                     seed=job.kid_seed),
                            bootstrap=FDBootstrap(resamples=job.fd_resamples), fd_method=FD_METHOD)
    kid = category_entry(real, fake, "kid", config)
    fd = category_entry(real, fake, "fd", config)
    out = {"n_real": kid["n_real"], "n_fake": kid["n_fake"]}
    if kid["value"] is None:
        out.update({k: None for k in KID_FIELDS},
                   kid_note=f"KID needs at least 2 images per set ({kid['n_fake']} translated, {kid['n_real']} real)")
    else:
        out.update(kid=kid["value"], kid_std=kid["std"], kid_x1000=kid["value"] * 1000,
                   kid_std_x1000=kid["std"] * 1000, kid_subset_size=kid["subset_size"])
    out.update(fd=fd["value"], fd_std=fd["std"])
    if job.precision_recall:
        if min(kid["n_real"], kid["n_fake"]) > K:
            pr = precision_recall(real, fake, K)
            out.update(precision=pr.precision, recall=pr.recall)
        else:
            out.update(precision=None, recall=None, pr_note=f"precision/recall (k={K}) need more than {K} images "
                                                            "per set")
    return out, kid["trusted"], kid["why"]


FD_METHOD = "gram"


def _summary(indices: list[int], pos: dict, res: PairResults, real: dict, fake: dict, job: EvalJob) -> dict:
    import torch

    rows = [pos[i] for i in indices]
    lp_mean, lp_std = _mean_std([res.lpips[r] for r in rows])
    ss_mean, ss_std = _mean_std([res.ssim[r] for r in rows])
    picked = torch.tensor(rows, dtype=torch.long)
    spaces, trusted, why = {}, True, None
    for space in real:
        spaces[space], trusted, why = _space(real[space], fake[space][picked], job)
    out = {"n": len(rows)}
    out.update({k: spaces["inception"][k] for k in KID_FIELDS})  # the paper's KID: Inception space
    if "kid_note" in spaces["inception"]:
        out["kid_note"] = spaces["inception"]["kid_note"]
    out.update({"lpips": lp_mean, "lpips_std": lp_std, "ssim": ss_mean, "ssim_std": ss_std,
                "trusted": trusted, "why": why, "spaces": spaces})
    return out


def protocol(job: EvalJob, networks: Networks, ssim_config, resized: int) -> dict:
    from ..metrics.frechet import BOOTSTRAP_SEED
    from ..metrics.knn_pr import K
    from .inputs import RESIZE_METHOD

    weights = networks.weights
    random = any(w["sha256"] == "random" for w in weights.values())
    spaces = {}
    for space, ex in networks.extractors.items():
        ident = ex.identity
        spaces[space] = {"network": ident.network, "features": WHAT[space], "dim": ident.dim,
                         "preprocessing": ident.protocol, "weights": ex.record,
                         "weights_digest": ident.weights_sha256}
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
        "spaces": spaces,
        "space_kid": "in every space as above (gamma 1/D of that space's dimension D); the top-level kid fields "
                     "are the inception space's",
        "fd": {
            "formula": "||mu_r - mu_t||^2 + Tr(S_r) + Tr(S_t) - 2 Tr(sqrtm(S_r S_t)), covariances with ddof 1 "
                       "(pytorch-fid, torch-fidelity, clean-fid, dgm-eval); FID in the inception space",
            "method": "Tr(sqrtm(S_r S_t)) as the nuclear norm of the centred features' cross product, "
                      "||Xr Xt^T||_* / sqrt((n_r - 1)(n_t - 1)), float64 (r2r.metrics.frechet 'gram': exact, and "
                      "within ~1e-7 relative of pytorch-fid's scipy sqrtm on the same features)",
            "spread": "fd_std: population std (ddof 0) of FD over bootstrap resamples of both sets (with "
                      "replacement, each to its own size)",
            "resamples": job.fd_resamples, "seed": BOOTSTRAP_SEED,
        },
        "precision_recall": {
            "computed": job.precision_recall, "k": K,
            "definition": "Kynkaanniemi et al. 2019: precision = share of translated features inside the real "
                          "manifold (balls to each real point's k-th nearest real neighbour, boundary included), "
                          "recall = share of real features inside the translated manifold; float32 distances",
        },
        "per_category_trust": {
            "min_n": job.min_category_n,
            "rule": "trusted is false (why says so) when min(translated, real) images < min_n; its numbers are "
                    "kept and never averaged into anything; the overall numbers pool all images",
        },
        "reference": {"decode": DECODE_PROTOCOL,
                      "cache_key": "every real image's content hash (manifest sha256, else file sha256), the "
                                   "network, its weights digest, its preprocessing and the decode protocol"},
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
    `real_features`); `real` must come from the same real set and networks as `job` names."""
    import torch
    from r2r.progress import stderr_console

    from ..metrics import SSIMConfig
    from .inputs import open_real, plan_pairs
    from .results import write_result

    for target in (job.out, job.features_out):
        if target is not None and target.exists() and not job.overwrite:
            raise FileExistsError(f"{target} exists; pass --overwrite to replace it")
    if job.batch_size < 1 or job.num_workers < 0:
        raise ValueError(f"--batch-size must be >= 1 and --num-workers >= 0 (got {job.batch_size}, "
                         f"{job.num_workers})")
    job.check()
    console = stderr_console()
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
    # a bad --real fails before any network loads
    real_set = open_real(job.real, job.real_split) if real is None and not job.real_stats else None
    nets = networks or networks_for(job)
    if set(nets.extractors) != set(parse_features(job.features)) or nets.lpips is None:
        raise ValueError(f"the networks given are for {', '.join(nets.extractors)}, the job asks for "
                         f"{', '.join(parse_features(job.features))} and LPIPS")
    if real is not None and ((real.real, real.real_split, real.real_stats) != (job.real, job.real_split,
                                                                               job.real_stats)
                             or real.identities != nets.identities()):
        raise ValueError(f"the precomputed real features were made from {real.description!r} (split "
                         f"{real.real_split}) with {sorted(real.identities)} networks "
                         f"{[i['weights_sha256'][:16] for i in real.identities.values()]}, not from "
                         f"{job.real or job.real_stats!r} (split {job.real_split}) with "
                         f"{[i['weights_sha256'][:16] for i in nets.identities().values()]}")
    if real is None:  # before the pairs: a refused statistics file costs no translated image's work
        real = real_features(job, nets, progress=progress, real_set=real_set)
    ssim_config = SSIMConfig()
    with torch.inference_mode(), _progress(console, progress) as bar:
        res = run_pairs(plan, nets, ssim_config, job, bar)
    for u in res.unreadable + real.unreadable:
        console.print(f"[yellow]unreadable[/] {u['name']}: {u['reason']}", highlight=False)
    if not res.index:
        raise ValueError(f"none of the {len(plan.pairs)} paired images could be read")
    # evaluation order = pair order (sorted by name), whatever order the batches were grouped in
    order = sorted(range(len(res.index)), key=lambda r: res.index[r])
    res.index = [res.index[r] for r in order]
    res.lpips = [res.lpips[r] for r in order]
    res.ssim = [res.ssim[r] for r in order]
    # feature rows were appended in res.index's old order
    fake = {space: torch.cat(rows)[torch.tensor(order)] for space, rows in res.features.items()}
    reals = {space: real.spaces[space] for space in fake}
    pos = {i: r for r, i in enumerate(res.index)}
    by_cat: dict[str, list[int]] = defaultdict(list)
    for i in res.index:
        by_cat[plan.pairs[i].category].append(i)
    method = job.method or job.translated.resolve().name
    with _one_thread():
        overall = _summary(res.index, pos, res, reals, fake, job)
        per_category = {c: _summary(by_cat[c], pos, res, reals, fake, job) for c in sorted(by_cat)}
    out = {
        "format": FORMAT,
        "method": method,
        **overall,
        "n_real": real.n,
        "per_category": per_category,
        "protocol": protocol(job, nets, ssim_config, res.resized),
        "inputs": {
            "translated": str(job.translated), "translated_kind": plan.kind, "source": plan.source,
            "translated_fingerprint": plan.fingerprint, "source_subset": source_subset_record(job.source_keys),
            "split": job.split, "real": real.description, "real_splits": real.splits,
            "pairs_csv": str(job.pairs_csv) if job.pairs_csv else None,
            "from_json": _paths_from_json(job),
            "real_stats": list(job.real_stats) if job.real_stats else None,
            "real_images_sha256": real.images_sha256,
            "real_features": real.origins,
        },
        "problems": {
            "unpaired": plan.unpaired, "unreadable": res.unreadable, "untranslated": plan.untranslated,
            "real_unreadable": real.unreadable, "ignored": plan.ignored,
        },
        "not_selected": len(plan.not_selected),  # left out by the translation's own --categories / --limit
        "images": [
            {"name": plan.pairs[i].name, "source_key": plan.pairs[i].source_key,
             "category": plan.pairs[i].category, "lpips": res.lpips[pos[i]], "ssim": res.ssim[pos[i]]}
            for i in res.index
        ],
        "settings": {k: (str(v) if isinstance(v, Path) else list(v) if isinstance(v, tuple) else v)
                     for k, v in asdict(job).items()}
        | {"source_keys": source_subset_record(job.source_keys)},  # the keys themselves are the pairs (`images`)
        "device": str(nets.device),
        "versions": _versions(),
        "seconds": round(time.perf_counter() - started, 3),
    }
    job.out.parent.mkdir(parents=True, exist_ok=True)
    if job.features_out is not None:
        save_features(job.features_out, fake, reals, [plan.pairs[i].name for i in res.index], out)
    write_result(job.out, out)
    return out


def save_features(path: Path, fake: dict, real: dict, names: list[str], result: dict) -> None:
    """The features KID and FD were computed from (rows in KID's order), for reuse and audits: `translated` and
    `real` are Inception's (the paper's), `<space>_translated` / `<space>_real` each other space's."""
    import json

    from safetensors.torch import save

    from synfashion.fs.atomic import write_bytes_atomic

    meta = {"translated_names": json.dumps(names), "method": result["method"], "real": result["inputs"]["real"],
            "inception_sha256": result["protocol"]["kid"]["weights"]["sha256"],
            "spaces": json.dumps({s: result["protocol"]["spaces"][s]["network"] for s in fake})}
    tensors = {}
    for space in fake:
        prefix = "" if space == "inception" else f"{space}_"
        tensors[f"{prefix}translated"] = fake[space].contiguous()
        tensors[f"{prefix}real"] = real[space].contiguous()
    path.parent.mkdir(parents=True, exist_ok=True)
    write_bytes_atomic(path, save(tensors, metadata=meta), durable=False)


def problem_count(result: dict) -> int:
    p = result["problems"]
    return len(p["unpaired"]) + len(p["unreadable"]) + len(p["untranslated"]) + len(p["real_unreadable"])


__all__ = ["EvalJob", "MetricSettings", "Networks", "RealFeatures", "StatsJob", "evaluate", "make_stats",
           "networks_for", "problem_count", "protocol", "real_features"]
