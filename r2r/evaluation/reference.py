"""The real (reference) set's features in each feature space, computed once and reused: the statistics cache and
shareable statistics files (`r2r evaluate-stats`, `--real-stats`).

The real set is the same for every method, every ablation variant and every rerun, and its features dominated an
evaluation (388 real photos took 7 minutes beside 25 s for 8 translated ones). So they are stored
(r2r.metrics.stats_cache) under a key of:
- every real image's content hash: the sha256 its manifest records (a built folder, a SynFashion-style Hub
  dataset), else the sha256 of its bytes (an image folder's files, another Hub dataset's image bytes);
- the network, its weights' digest and its preprocessing protocol (each extractor's `identity`), plus the decoding
  protocol (`DECODE_PROTOCOL`: how bytes become pixels before any network).
Names and order are not part of the key: the same photos renamed or in another order hit. Cache files hold the
features in the order of the sorted content hashes, and are put back into the real set's own order on reading, so
KID's subsets draw exactly what a fresh computation would give them. A file that fails validation (truncated,
tampered, another key) is recomputed with a one-line warning; the cache folder is `--stats-cache`, else
`$R2R_CACHE/stats`, else `$XDG_CACHE_HOME/r2r/stats`, else `~/.cache/r2r/stats`; `--no-stats-cache` skips it.

Only fully readable real sets are cached. A set with an unreadable image is recomputed on every run (the run
says so): the JSON names every unreadable image with this run's reason, and a cached record of failures could go
stale when the decoder changes (a Pillow upgrade that reads the file) while its bytes, and so the key, do not; and
the cache's invariant stays simple, one feature row per hashed image. `r2r evaluate-stats` refuses such a set for
the same reason: a shared file must describe exactly the images it names.

A statistics file (`r2r evaluate-stats REAL --out FILE`) holds one space's features in the real set's own order
(so `--real-stats FILE` gives the numbers `--real REAL` gives), with the key's network, weights, protocol, image
digest and count in its metadata; `--real-stats` refuses a file made with another network, weights or protocol,
naming each difference. Decoding runs in DataLoader worker processes while the networks run. This module writes
only cache and statistics files.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

DECODE_PROTOCOL = ("decode: loaders.decode_image/v1 (EXIF orientation applied, alpha composited on white, 16-bit "
                   "scaled, CMYK converted), each image at its own size")


@dataclass
class RealFeatures:
    """The real set's features per space (rows in the real set's order), where they came from, and the images that
    could not be read. `evaluate` checks that they were made for the real set and the networks its job names."""

    real: str | None
    real_split: str | None
    real_stats: tuple[str, ...] | None
    description: str
    splits: list[str] | None
    spaces: dict  # space -> float32 [N, D]
    unreadable: list[dict]
    identities: dict  # space -> FeatureIdentity dict they were computed with
    images_sha256: str | None = None  # digest of the readable images' content hashes (None: unknown)
    origins: dict = field(default_factory=dict)  # space -> {"from": "computed" | "cache" | "file", ...}
    hashes: list[str] | None = field(default=None, repr=False)  # every image's content hash, the set's order

    @property
    def features(self):
        """The Inception features (the paper's KID)."""
        return self.spaces["inception"]

    @property
    def n(self) -> int:
        return int(next(iter(self.spaces.values())).shape[0])

    def n_of(self, space: str) -> int:
        return int(self.spaces[space].shape[0])


# ------------------------------------------------------------------------------------------------ content hashes
def _sha256_file(path: Path, root: Path) -> str:
    """The hash of a user's image file, read as every reader of user images reads (`loaders.files.read_file`: never a
    FIFO, a device or a link out of `root`, the size bounded), so hashing can neither hang nor read forever."""
    from loaders.files import read_file

    return hashlib.sha256(read_file(path, root=root)).hexdigest()


def content_hashes(dataset) -> list[str] | None:
    """One content hash per item of a real dataset (as `inputs.open_real` opens it), in its order; None when some
    item's cannot be known without decoding (then the set is not cached)."""
    import torch.utils.data

    from loaders.folder import HFImageDataset, ImageFolderDataset

    if isinstance(dataset, torch.utils.data.ConcatDataset):
        out: list[str] = []
        for part in dataset.datasets:
            hashes = content_hashes(part)
            if hashes is None:
                return None
            out += hashes
        return out
    if isinstance(dataset, ImageFolderDataset):
        from loaders.files import ImageFileError

        try:
            return [_sha256_file(dataset.root / rel, dataset.root) for rel in dataset.files]
        except (ImageFileError, OSError):
            return None  # an unreadable file: the run names it; such a set is not cached anyway
    if hasattr(dataset, "column_values"):  # loaders.hf.SynFashionDataset: the manifest's sha256 of each row
        values = dataset.column_values(("sha256",)).get("sha256")
        if values is None or len(values) != len(dataset) or not all(isinstance(v, str) and v for v in values):
            return None
        return list(values)
    if isinstance(dataset, HFImageDataset):
        out = []
        for image in dataset.ds.select_columns([dataset.image_column])[dataset.image_column]:
            data = image.get("bytes") if isinstance(image, dict) else image
            if not isinstance(data, (bytes, bytearray)):
                return None  # a row that names a file instead of holding bytes: not cached
            out.append(hashlib.sha256(data).hexdigest())
        return out
    return None


# ------------------------------------------------------------------------------------------------ decoding
class RealImages:
    """Item i of a real dataset -> {"i", "image": uint8 [3, H, W]} or {"i", "name", "key", "reason"} when it cannot
    be read (a torch map-style dataset; picklable for worker processes)."""

    def __init__(self, dataset):
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, i: int) -> dict:
        from loaders.errors import SKIPPED_FIELD, LoaderError

        try:
            sample = self.dataset[i]
        except LoaderError as e:  # a file that cannot even be read
            files = getattr(self.dataset, "files", None)
            name = str(self.dataset.root / files[i]) if files is not None else f"item {i}"
            return {"i": i, "name": name, "key": Path(name).stem, "reason": str(e)}
        skipped = sample.get(SKIPPED_FIELD)
        if skipped is not None:
            return {"i": i, "name": skipped.source, "key": skipped.key, "reason": skipped.reason}
        return {"i": i, "image": sample["image"]}


def _as_list(batch: list) -> list:
    return batch


def _init_decoder_worker(_: int) -> None:
    from loaders.decode import tune_decoder

    tune_decoder()


def decode_loader(dataset, batch_size: int, num_workers: int, device=None):
    """A DataLoader that decodes `dataset`'s items in `num_workers` processes, two batches ahead of the networks
    per worker (so decoding overlaps the networks' work on the batch before), and hands them over as lists (images
    of any sizes), in page-locked memory when `device` is a GPU (the copies then overlap too)."""
    import torch

    return torch.utils.data.DataLoader(
        dataset, batch_size=batch_size, shuffle=False, num_workers=num_workers, collate_fn=_as_list,
        worker_init_fn=_init_decoder_worker if num_workers else None,
        prefetch_factor=2 if num_workers else None, persistent_workers=False,
        pin_memory=device is not None and torch.device(device).type == "cuda",
    )


def same_size_runs(items: list[dict], field_name: str):
    """Consecutive items whose `field_name` tensors have one shape: each run is one network batch."""
    start = 0
    while start < len(items):
        end = start + 1
        shape = items[start][field_name].shape
        while end < len(items) and items[end][field_name].shape == shape:
            end += 1
        yield items[start:end]
        start = end


def compute_real(dataset, extractors: dict, settings, device, bar) -> tuple[dict, list[dict], set[int]]:
    """({space: float32 [N_readable, D]}, unreadable, their indices) for the spaces of `extractors`, decoding
    `dataset` once (rows in its order)."""
    import torch

    loader = decode_loader(RealImages(dataset), settings.batch_size, settings.num_workers, device)
    task = bar.add_task(f"real: {', '.join(extractors)}", total=len(dataset))
    feats: dict[str, list] = {space: [] for space in extractors}
    unreadable: list[dict] = []
    bad: set[int] = set()
    for batch in loader:
        ok = []
        for it in batch:
            if "image" in it:
                ok.append(it)
            else:
                unreadable.append({"name": it["name"], "key": it["key"], "reason": it["reason"]})
                bad.add(it["i"])
        for run in same_size_runs(ok, "image"):
            images = torch.stack([it["image"] for it in run]).to(device, non_blocking=True)
            for space, ex in extractors.items():
                feats[space].append(ex.module(images).float().cpu())
        bar.advance(task, len(batch))
    out = {}
    for space, ex in extractors.items():
        out[space] = torch.cat(feats[space]) if feats[space] else torch.zeros(0, ex.identity.dim)
    return out, unreadable, bad


# ------------------------------------------------------------------------------------------------ keys and files
def stats_key(extractor, hashes: list[str] | None):
    """The statistics key of `extractor`'s features of the images `hashes` (None: any image set)."""
    from ..metrics import StatsKey

    ident = extractor.identity
    return StatsKey(ident.network, ident.weights_sha256, f"{ident.protocol}; {DECODE_PROTOCOL}",
                    None if hashes is None else tuple(hashes))


def _hash_order(hashes: list[str]) -> list[int]:
    """Rows of the real set in sorted-content-hash order (stable: identical images keep their relative order)."""
    return sorted(range(len(hashes)), key=lambda i: hashes[i])


def _warn(console, note: str) -> None:
    console.print(f"[yellow]warning[/]: {note}", highlight=False, soft_wrap=True)


def _quiet(fn, *args, **kwargs):
    """Call a stats_cache function, its RuntimeWarnings kept out of the console (the caller prints one line)."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return fn(*args, **kwargs)


def read_stats_files(paths: tuple[str, ...], extractors: dict) -> tuple[dict, dict, dict]:
    """({space: features}, {space: origin}, {space: metadata}) from `--real-stats` files, each matched to the run's
    space by its network and checked against that space's key (another network, weights or protocol is refused
    with the difference)."""
    from ..metrics.stats_cache import StatsFileError, key_differences, read_stats_bytes

    by_network = {ex.identity.network: space for space, ex in extractors.items()}
    found: dict[str, tuple] = {}
    for text in paths:
        path = Path(text)
        if not path.is_file():
            raise FileNotFoundError(f"--real-stats {path}: no such file")
        loaded = read_stats_bytes(path.read_bytes(), str(path))
        network = loaded.metadata.get("network")
        space = by_network.get(network)
        if space is None:
            raise StatsFileError(f"--real-stats {path}: statistics for network {network!r}; this run's feature "
                                 f"spaces use {', '.join(sorted(by_network))} (--features, weights flags)")
        diffs = key_differences(stats_key(extractors[space], None), loaded.metadata)
        if diffs:
            raise StatsFileError(f"--real-stats {path}: statistics for another setup, refused ({'; '.join(diffs)})")
        if loaded.features is None:
            raise StatsFileError(f"--real-stats {path}: holds only mean/covariance; KID and precision/recall need "
                                 "the features (write it with r2r evaluate-stats)")
        if space in found:
            raise ValueError(f"--real-stats: {found[space][0]} and {path} are both for {space}")
        found[space] = (str(path), loaded)
    missing = [s for s in extractors if s not in found]
    if missing:
        raise ValueError(f"--real-stats: no statistics file for {', '.join(missing)} (given: "
                         f"{', '.join(f'{s} ({p})' for s, (p, _) in found.items()) or 'none'}); make one with "
                         f"r2r evaluate-stats --features {','.join(missing)}, or use --real")
    digests = {loaded.metadata.get("images_sha256") for _, loaded in found.values()}
    counts = {loaded.features.shape[0] for _, loaded in found.values()}
    if len(digests) > 1 or len(counts) > 1:
        raise ValueError("--real-stats: the files describe different image sets ("
                         + "; ".join(f"{s}: {loaded.features.shape[0]} images, sha256 "
                                     f"{str(loaded.metadata.get('images_sha256'))[:12]}"
                                     for s, (_, loaded) in found.items()) + ")")
    feats = {s: loaded.features for s, (_, loaded) in found.items()}
    origins = {s: {"from": "file", "file": p} for s, (p, _) in found.items()}
    metas = {s: loaded.metadata for s, (_, loaded) in found.items()}
    return feats, origins, metas


def _restore(stored, order: list[int]):
    """Cache rows (sorted-hash order) -> the real set's order."""
    import torch

    restored = torch.empty_like(stored)
    restored[torch.tensor(order, dtype=torch.long)] = stored
    return restored


def real_features(settings, extractors: dict, device, *, console, progress_bar, real_set=None) -> RealFeatures:
    """The real set's features in every space of `extractors` (see the module docstring): from `--real-stats`
    files, else from the cache, else computed (one decode for every space that missed) and cached.

    `progress_bar()`: a context manager giving a rich Progress (shown only when something is computed)."""
    import torch

    from ..metrics.stats_cache import images_digest, load_cached, store_cached
    from .inputs import open_real

    identities = {space: ex.identity.as_dict() for space, ex in extractors.items()}
    if settings.real_stats:
        feats, origins, metas = read_stats_files(settings.real_stats, extractors)
        n = next(iter(feats.values())).shape[0]
        return RealFeatures(None, None, tuple(settings.real_stats), f"statistics file(s) "
                            f"{', '.join(settings.real_stats)} ({n} images)", None, feats, [], identities,
                            next(iter(metas.values())).get("images_sha256"), origins)
    real_set = real_set or open_real(settings.real, settings.real_split)
    hashes = content_hashes(real_set.dataset)
    cache = settings.use_stats_cache and hashes is not None
    order = _hash_order(hashes) if hashes is not None else []
    feats: dict = {}
    origins: dict = {}
    for space, ex in extractors.items() if cache else ():
        key = stats_key(ex, hashes)
        stored, note = _quiet(load_cached, key, settings.stats_cache)
        if note:
            _warn(console, note)  # one line: the file was damaged or made for another key; recomputed below
        if stored is not None:
            feats[space] = _restore(stored, order)
            origins[space] = {"from": "cache", "key": key.digest()}
    missing = {space: ex for space, ex in extractors.items() if space not in feats}
    unreadable: list[dict] = []
    bad: set[int] = set()
    if missing:
        with torch.inference_mode(), progress_bar() as bar:
            computed, unreadable, bad = compute_real(real_set.dataset, missing, settings, device, bar)
        for space, ex in missing.items():
            feats[space] = computed[space]
            origins[space] = {"from": "computed"}
            if not cache:
                if settings.use_stats_cache:
                    origins[space]["not_cached"] = "the real set's content hashes are not known without decoding it"
                continue
            if unreadable:  # only fully readable sets are cached: see the module docstring
                origins[space]["not_cached"] = f"{len(unreadable)} unreadable real image(s)"
                continue
            key = stats_key(ex, hashes)
            why = _quiet(store_cached, key, computed[space][torch.tensor(order, dtype=torch.long)],
                         settings.stats_cache)
            if why:
                _warn(console, why)
                origins[space]["not_cached"] = why
            origins[space]["key"] = key.digest()
        if cache and unreadable:
            _warn(console, f"reference statistics not cached: {len(unreadable)} unreadable real image(s) (named "
                           "below); fix or remove them to cache this set")
    digest = images_digest(h for i, h in enumerate(hashes) if i not in bad) if hashes is not None else None
    return RealFeatures(settings.real, settings.real_split, None, real_set.description, real_set.splits, feats,
                        unreadable, identities, digest, origins, hashes)


def write_stats(path: Path, space: str, extractor, real: RealFeatures, hashes: list[str] | None) -> Path:
    """A shareable statistics file of `space`'s features (the real set's order) with its key in the metadata."""
    from synfashion.fs.atomic import write_bytes_atomic

    from ..metrics.stats_cache import stats_bytes

    path.parent.mkdir(parents=True, exist_ok=True)
    write_bytes_atomic(path, stats_bytes(stats_key(extractor, hashes), real.spaces[space]), durable=False)
    return path


__all__ = ["DECODE_PROTOCOL", "RealFeatures", "RealImages", "compute_real", "content_hashes", "decode_loader",
           "read_stats_files", "real_features", "same_size_runs", "stats_key", "write_stats"]
