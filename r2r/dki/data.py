"""Training images for DKI: open a source through `loaders`, check it, and serve VAE latents per step.

Why: both trainings spend a large part of a diffusers-example step re-decoding, re-resizing and re-encoding the same
images with the VAE. When the augmentation is
deterministic (center crop; a flip is handled by caching both orientations) the VAE posterior of every image is the
same every epoch, so it is computed once (`LatentCache`, float32 VAE) and each step only *samples* from it
(mean + std * noise, exactly what `latent_dist.sample()` does). Counted with torch's FlopCounterMode for SD-1.5 at
512x512: VAE encode 1.12 TFLOP per image, UNet forward 0.80, forward + backward with frozen weights 1.67, so the
cache removes about 40% of a textual-inversion step's arithmetic. With random crops `StreamBatches` decodes and
encodes per step, through the loaders' workers.

Order and randomness are a function of (seed, rank, micro-step) only (`RankShard`, `step_generator`), so a resumed
run sees exactly the batches an uninterrupted one would, with no sampler state to save. Each process reads a fixed
share of the images, split across ranks by the loaders' `EpochSampler` (`RankShard`): with N processes every image
is in exactly one share.
This module does not train; it reads images only through `loaders`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from loaders import (
    DistInfo,
    EpochSampler,
    HFImageDataset,
    ImageFolderDataset,
    ImageTransform,
    LoaderError,
    Selection,
    TransformConfig,
    collate,
    to_float,
)
from loaders.files import ImageFileError, image_header
from loaders.sources import SYNFASHION_COLUMNS, DatasetRef, open_images
from synfashion.hub.refs import RefError, looks_like_path

from .config import DataConfig
from .errors import DKIError
from .outputs import public_path

_SIZE_ERRORS_SHOWN = 5
_ORDER_STREAM = 0x5EED  # generator stream of a share's per-epoch visiting order


class ImageTooSmall(ValueError):
    pass


class CheckedTransform(ImageTransform):
    """The shared loaders transform, refusing images whose shorter side is below `min_side` (no silent upscale)."""

    def __init__(self, config: TransformConfig, min_side: int):
        super().__init__(config)
        self.min_side = min_side

    def decode(self, data: bytes, *, orientation: int | None = None) -> Image.Image:
        img = super().decode(data, orientation=orientation)  # a reduced JPEG decode never goes below 2x the target
        if min(img.size) < self.min_side:
            raise ImageTooSmall(
                f"image is {img.width}x{img.height}, smaller than {self.min_side} px on its shorter side "
                f"(training resolution); use larger images, a smaller --resolution, or --min-size"
            )
        return img


@dataclass
class ImageSource:
    """An opened training source: a map-style dataset of sample dicts, and what the model card says about it."""

    dataset: torch.utils.data.Dataset
    description: str
    kind: str  # "folder" | "synfashion" | "datasets"
    synfashion: bool
    hub_id: str | None = None
    filters: dict = field(default_factory=dict)
    public: str = ""  # the description with a local source named only by its name (what the card publishes)

    def __len__(self) -> int:
        return len(self.dataset)

    def card_info(self) -> dict:
        return {"description": self.public or self.description, "kind": self.kind, "synfashion": self.synfashion,
                "hub_id": self.hub_id, "filters": self.filters, "num_images": len(self)}


def transform_config(cfg: DataConfig, *, for_cache: bool) -> TransformConfig:
    """uint8 output (4x less to move between processes; converted on the device). A cached run flips itself."""
    return TransformConfig(
        size=(cfg.resolution, cfg.resolution), resize="cover", crop="random" if cfg.random_crop else "center",
        flip=0.0 if for_cache else cfg.flip, resample="bicubic", output="uint8",
    )


_FORCED = {"folder": "images", "synfashion": "built", "datasets": "datasets"}  # --source-type -> loaders' kinds
_KINDS = {"images": "folder", "built": "synfashion", "hub": "synfashion", "datasets": "datasets"}


def open_source(cfg: DataConfig, *, seed: int = 0, for_cache: bool | None = None) -> ImageSource:
    """Open `cfg.source` as a map-style dataset through `loaders.sources` (the one way a dataset is opened); raise
    DKIError if it is empty or unreadable."""
    for_cache = (cfg.cache_latents and cfg.deterministic) if for_cache is None else for_cache
    tf = CheckedTransform(transform_config(cfg, for_cache=for_cache), cfg.min_side)
    on_error = "skip" if cfg.skip_bad_images else "raise"
    try:
        ref = DatasetRef.parse(cfg.source, kind=_FORCED.get(cfg.kind))
    except RefError as e:
        if looks_like_path(cfg.source):
            raise DKIError(f"training source {cfg.source} does not exist (a local path; Hub ids look like "
                           "'owner/name')") from None
        raise DKIError(f"cannot open {cfg.source!r} as a dataset: {e}") from None
    filters = {k: v for k, v in (("split", cfg.split), ("categories", cfg.categories), ("views", cfg.views)) if v}
    if ref.kind == "images" and (cfg.categories or cfg.views):
        raise DKIError(f"{ref.path}: --category/--view filter SynFashion sources; {ref.path} is a plain image folder")
    captions = "none" if cfg.captions == "none" else ("auto" if cfg.captions == "auto" else Path(cfg.captions))
    selection = Selection(split=cfg.split, categories=cfg.categories, views=cfg.views)
    try:
        ds = open_images(ref, None if ref.kind == "images" else cfg.split, tf, on_error=on_error, seed=seed,
                         selection=selection, captions=captions, caption_column=cfg.caption_column,
                         image_column=cfg.image_column)
    except LoaderError as e:
        raise DKIError(str(e)) from None
    hub_id = ref.repo_id if ref.kind == "hub" else (None if ref.local else cfg.source)
    name = public_path(cfg.source)  # a local source by its name only: the card is published (outputs.py)
    if isinstance(ds, ImageFolderDataset):
        src = ImageSource(ds, f"image folder {ref.path}", "folder", synfashion=False, filters={},
                          public=f"image folder {name}")
        _check_folder_sizes(ds, cfg.min_side)
    elif isinstance(ds, HFImageDataset):
        if cfg.categories or cfg.views:
            raise DKIError(f"{cfg.source}: --category/--view need SynFashion columns {sorted(SYNFASHION_COLUMNS)}")
        src = ImageSource(ds, f"datasets {cfg.source} [{cfg.split}]", "datasets", False, hub_id, {"split": cfg.split},
                          public=f"datasets {name} [{cfg.split}]")
    else:
        _check_synfashion_sizes(ds, cfg.min_side)
        src = ImageSource(ds, f"SynFashion {cfg.source} [{cfg.split}]", "synfashion", True, hub_id, filters,
                          public=f"SynFashion {name} [{cfg.split}]")
    if len(src) == 0:
        shown = f" with {filters}" if filters and src.kind != "folder" else ""
        raise DKIError(f"no training images in {src.description}{shown}; check the source and its filters")
    return src


def _too_small(items: list[tuple[str, int, int]], min_side: int, where: str) -> None:
    bad = [(name, w, h) for name, w, h in items if min(w, h) < min_side]
    if bad:
        shown = "; ".join(f"{name} ({w}x{h})" for name, w, h in bad[:_SIZE_ERRORS_SHOWN])
        more = f"; and {len(bad) - _SIZE_ERRORS_SHOWN} more" if len(bad) > _SIZE_ERRORS_SHOWN else ""
        raise DKIError(
            f"{len(bad)} image(s) in {where} are smaller than {min_side} px on their shorter side (the training "
            f"resolution; they would be upscaled): {shown}{more}. Remove them, lower --resolution, or pass --min-size."
        )


def _check_folder_sizes(ds: ImageFolderDataset, min_side: int) -> None:
    """Header-only size check of every file (fast), so all offenders are named before any training starts."""
    items = []
    for rel in ds.files:
        try:  # a regular file inside the folder only (loaders/files.py): never a FIFO, a device or a link out
            width, height, _ = image_header(ds.root / rel, root=ds.root)
        except ImageFileError:
            continue  # unreadable files are reported by the loader with their name
        items.append((str(ds.root / rel), width, height))
    _too_small(items, min_side, str(ds.root))


def _check_synfashion_sizes(ds, min_side: int) -> None:
    meta = ds.column_values(("width", "height", "source_path", "key"))
    if not {"width", "height"} <= set(meta):
        return  # the transform still refuses small images one by one
    names = meta.get("source_path") or meta.get("key")
    _too_small(list(zip(names, meta["width"], meta["height"])), min_side, ds.name)


# --------------------------------------------------------------------------------------------------- order, RNG

def step_seed(seed: int, rank: int, micro: int, stream: int = 0) -> int:
    """A 63-bit seed for one (run seed, process, micro-step, stream): resuming needs no RNG state."""
    return int(np.random.SeedSequence([seed, rank, micro, stream]).generate_state(2, np.uint64)[0] >> np.uint64(1))


def step_generator(seed: int, rank: int, micro: int, device: torch.device, stream: int = 0) -> torch.Generator:
    return torch.Generator(device=device).manual_seed(step_seed(seed, rank, micro, stream))


class RankShard:
    """This process's fixed share of the dataset, visited as an endless sequence of seeded permutations.

    The share is the loaders' rank split (`EpochSampler` with this run's `DistInfo`, epoch 0): with N processes
    every image is in exactly one share, none is dropped (shares differ by at most one image), and a rank only ever
    draws from its own share, so the ranks' samples are disjoint for the whole run and each rank caches only its
    share's latents. Within the share, epoch e visits `EpochSampler(len(share), seed=rank seed).indices()` of epoch
    e. Position p of the sequence is local sample `order(p // n)[p % n]`: the batch of micro-step m is positions
    [m*B, (m+1)*B), so the data order is a pure function of (seed, rank, world size, m) and resume needs no sampler
    state (the same world size is required, and checked through the checkpoint's fingerprint).
    """

    def __init__(self, n: int, *, seed: int, dist: DistInfo = DistInfo()):
        if n < dist.world_size:
            raise DKIError(f"{n} training image(s) cannot be shared by {dist.world_size} processes (each needs at "
                           "least one); use fewer processes")
        self.indices = EpochSampler(n, dist=dist, shuffle=True, seed=seed).indices()  # dataset indices of the share
        self.seed, self.rank, self.world_size = seed, dist.rank, dist.world_size
        self._order = EpochSampler(len(self.indices), shuffle=True, seed=step_seed(seed, dist.rank, 0, _ORDER_STREAM))
        self._epoch, self._perm_cache = -1, None

    def __len__(self) -> int:
        return len(self.indices)

    def _perm(self, epoch: int) -> np.ndarray:
        if epoch != self._epoch:
            self._order.set_epoch(epoch)
            self._perm_cache = self._order.indices()
            self._epoch = epoch
        return self._perm_cache

    def local_tensor(self, start: int, count: int, device: torch.device) -> torch.Tensor:
        """`local(start, count)[0]` as a tensor on `device`, sliced from per-epoch permutations kept there:
        no host-to-device copy (hence no stream sync) per step."""
        n = len(self.indices)
        parts, pos, end = [], start, start + count
        while pos < end:
            epoch, off = divmod(pos, n)
            take = min(end - pos, n - off)
            parts.append(self._perm_tensor(epoch, device)[off : off + take])
            pos += take
        return parts[0] if len(parts) == 1 else torch.cat(parts)

    def _perm_tensor(self, epoch: int, device: torch.device) -> torch.Tensor:
        cache = self.__dict__.setdefault("_tensors", {})
        key = (epoch, str(device))
        if key not in cache:
            if len(cache) >= 4:
                cache.pop(next(iter(cache)))
            cache[key] = torch.as_tensor(self._perm(epoch), dtype=torch.long).to(device)
        return cache[key]

    def local(self, start: int, count: int) -> tuple[np.ndarray, np.ndarray]:
        """(local positions within the shard, epochs) of sequence positions [start, start + count)."""
        n = len(self.indices)
        pos = np.arange(start, start + count)
        epochs = pos // n
        local = np.array([self._perm(int(e))[int(p % n)] for p, e in zip(pos, epochs)], dtype=np.int64)
        return local, epochs


class DrawnSamples:
    """The distinct samples (keys) this process drew, and how many draws: the evidence that ranks' data is
    disjoint, gathered into the run record. Bounded by the share size."""

    def __init__(self) -> None:
        self.keys: set[str] = set()
        self.draws = 0

    def add(self, keys) -> None:
        keys = list(keys)
        self.keys.update(keys)
        self.draws += len(keys)


# --------------------------------------------------------------------------------------------------- latents

def caption_of(sample_caption: str | None, template: str, category: str | None) -> str:
    if sample_caption:
        return str(sample_caption)
    return template.replace("{category}", category or "garment")


@torch.no_grad()
def encode_posterior(vae, pixels_u8: torch.Tensor, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 [B,3,H,W] on the VAE's device -> (mean, std) of the VAE posterior, as `latent_dist` computes them."""
    dist = vae.encode(to_float(pixels_u8).to(dtype)).latent_dist
    return dist.mean, dist.std


def sample_latents(mean: torch.Tensor, std: torch.Tensor, scaling: float, generator: torch.Generator) -> torch.Tensor:
    """`latent_dist.sample() * scaling_factor`, from a cached posterior, in float32."""
    eps = torch.randn(mean.shape, generator=generator, device=mean.device, dtype=torch.float32)
    return (mean.float() + std.float() * eps) * scaling


def _loader(dataset, items: list[tuple[int, int]], batch_size: int, num_workers: int, pin: bool):
    return torch.utils.data.DataLoader(
        dataset, batch_size=batch_size, sampler=items, num_workers=num_workers, collate_fn=collate,
        pin_memory=pin, persistent_workers=False,
    )


INDEX_FIELD = "dki_index"


class _Indexed(torch.utils.data.Dataset):
    """Adds the dataset index to each decoded sample, so a batch with skipped samples still maps to its slots."""

    def __init__(self, dataset):
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, item):
        sample = self.dataset[item]
        if "image" in sample:
            sample[INDEX_FIELD] = int(item[0] if isinstance(item, tuple) else item)
        return sample


def _real(batch: dict) -> dict:
    """Drop the loaders' bookkeeping fields; warn-by-count is the loader's job, we only need the samples."""
    batch.pop("__skipped__", None)
    batch.pop("__size__", None)
    return batch


@dataclass
class LatentBatch:
    latents: torch.Tensor  # [B, 4, h, w] float32, scaled by the VAE scaling factor, on the training device
    captions: list[str]
    caption_ids: torch.Tensor | None = None  # [B] on the device: index into `LatentCache.unique_captions`


class LatentCache:
    """VAE posteriors (mean, std) of this process's shard, encoded once; both orientations when flipping.

    Stored in `store_dtype` on the GPU when it fits in `gpu_fraction` of the free memory (10k images at 512x512 in
    bf16: 1.3 GB), else in pinned host memory; a batch gathers B entries (about 0.5 MB at 512x512, batch 8).
    Unique captions are numbered (`unique_captions`, `caption_ids`) so a batch's captions are a device gather too.
    """

    def __init__(self, source: ImageSource, shard: RankShard, cfg: DataConfig, vae, *, device: torch.device,
                 encode_batch: int = 8, store_dtype: torch.dtype = torch.float32, gpu_fraction: float = 0.25,
                 progress=None):
        self.shard, self.flip = shard, cfg.flip
        self.scaling = float(vae.config.scaling_factor)
        n = len(shard)
        pin = device.type == "cuda"
        views = 2 if cfg.flip > 0 else 1
        self.mean: torch.Tensor | None = None
        self.std: torch.Tensor | None = None
        self.captions: list[str] = [""] * n
        self.keys: list[str] = [""] * n
        self.skipped: list[str] = []
        kept = torch.zeros(n, dtype=torch.bool)
        vae_dtype = next(vae.parameters()).dtype
        position = {int(i): p for p, i in enumerate(shard.indices)}
        dl = _loader(_Indexed(source.dataset), [(int(i), 0) for i in shard.indices], encode_batch,
                     cfg.num_workers, pin)
        for batch in dl:
            self.skipped.extend(f"{s.key} ({s.source}): {s.reason}" for s in batch.get("__skipped__", []))
            batch = _real(batch)
            if "image" not in batch:
                continue
            where = [position[int(i)] for i in batch[INDEX_FIELD].tolist()]
            pixels = batch["image"].to(device, non_blocking=True)
            mean, std = encode_posterior(vae, pixels, vae_dtype)
            if views == 2:
                fm, fs = encode_posterior(vae, pixels.flip(-1), vae_dtype)
                mean, std = torch.stack([mean, fm], 1), torch.stack([std, fs], 1)
            else:
                mean, std = mean[:, None], std[:, None]
            if self.mean is None:
                shape = (n, views, *mean.shape[2:])
                self.mean = torch.zeros(shape, dtype=store_dtype, pin_memory=pin)
                self.std = torch.zeros(shape, dtype=store_dtype, pin_memory=pin)
            idx = torch.as_tensor(where)
            self.mean[idx] = mean.to("cpu", store_dtype)
            self.std[idx] = std.to("cpu", store_dtype)
            kept[idx] = True
            cats = batch.get("category") or [None] * len(where)
            caps = batch.get("caption") or [None] * len(where)
            for j, w in enumerate(where):
                self.captions[w] = caption_of(caps[j], cfg.caption_template, cats[j])
                self.keys[w] = batch["key"][j]
            if progress is not None:
                progress(len(where))
        if self.mean is None:
            raise DKIError(f"no decodable training image in {source.description}")
        # With skipped (undecodable) samples, draw only from the kept entries.
        self.valid = torch.nonzero(kept).flatten().numpy()
        self.unique_captions = list(dict.fromkeys(self.captions[i] for i in self.valid))
        ids = {c: i for i, c in enumerate(self.unique_captions)}
        self.caption_ids = torch.as_tensor([ids.get(c, 0) for c in self.captions], dtype=torch.long)
        self._valid_t = torch.as_tensor(self.valid, dtype=torch.long)
        self.drawn = DrawnSamples()
        self._place(device, max_fraction=gpu_fraction)

    def _place(self, device: torch.device, max_fraction: float) -> None:
        """Keep the cache on the GPU when it takes at most `max_fraction` of the free memory: a batch is then a
        device gather (no host copy, no sync); otherwise it stays in pinned host memory."""
        if device.type != "cuda" or max_fraction <= 0:
            return
        free, _ = torch.cuda.mem_get_info(device)
        if self.nbytes() <= max_fraction * free:
            self.mean, self.std = self.mean.to(device), self.std.to(device)
            self.caption_ids, self._valid_t = self.caption_ids.to(device), self._valid_t.to(device)

    def __len__(self) -> int:
        return len(self.valid)

    @property
    def on_device(self) -> bool:
        return self.mean.device.type != "cpu"

    def nbytes(self) -> int:
        return 0 if self.mean is None else 2 * self.mean.numel() * self.mean.element_size()

    def batch(self, micro: int, batch_size: int, generator: torch.Generator, device: torch.device) -> LatentBatch:
        start = micro * batch_size
        local, _ = self.shard.local(start, batch_size)  # host copy of the same indices, for the caption strings
        idx = self.shard.local_tensor(start, batch_size, self.mean.device)
        if len(self.valid) != len(self.shard):
            local = self.valid[local % len(self.valid)]
            idx = self._valid_t[idx % len(self.valid)]
        if self.on_device:
            mean, std, cap = self.mean[idx], self.std[idx], self.caption_ids[idx]
        else:
            mean, std = (_pinned_gather(t, idx).to(device, non_blocking=True) for t in (self.mean, self.std))
            cap = _pinned_gather(self.caption_ids, idx).to(device, non_blocking=True)
        if self.flip > 0:
            flip = (torch.rand(batch_size, generator=generator, device=device) < self.flip).long()
            rows = torch.arange(batch_size, device=device)
            mean, std = mean[rows, flip], std[rows, flip]
        else:
            mean, std = mean[:, 0], std[:, 0]
        latents = sample_latents(mean, std, self.scaling, generator)
        self.drawn.add(self.keys[int(i)] for i in local)
        return LatentBatch(latents, [self.captions[int(i)] for i in local], cap)

    def first(self, count: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """(mean, std) of the first `count` cached images, unflipped: a fixed evaluation batch."""
        idx = self._valid_t[:count]
        return self.mean[idx, 0].to(device).float(), self.std[idx, 0].to(device).float()




def _pinned_gather(t: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """Rows `idx` of a host tensor into pinned memory (torch's host allocator recycles it once the copy is done)."""
    out = torch.empty((len(idx), *t.shape[1:]), dtype=t.dtype, pin_memory=torch.cuda.is_available())
    return torch.index_select(t, 0, idx, out=out)


class StreamBatches:
    """Random augmentation: decode, transform and VAE-encode every step (the loaders' workers decode ahead).

    Batches must be asked for in micro-step order; the first one asked for may be any step (resume).
    """

    def __init__(self, source: ImageSource, shard: RankShard, cfg: DataConfig, vae, *, batch_size: int,
                 device: torch.device, weight_dtype: torch.dtype):
        self.source, self.shard, self.cfg, self.vae = source, shard, cfg, vae
        self.batch_size, self.device, self.dtype = batch_size, device, weight_dtype
        self.scaling = float(vae.config.scaling_factor)
        self._iter: Iterator | None = None
        self._next = -1
        self.drawn = DrawnSamples()
        self.skipped: list[str] = []  # --skip-bad-images: each undecodable image once, as LatentCache lists them

    def _items(self, start_micro: int) -> Iterator[tuple[int, int]]:
        pos = start_micro * self.batch_size
        while True:
            local, epochs = self.shard.local(pos, 1024)
            for li, e in zip(local, epochs):
                yield int(self.shard.indices[li]), int(e)
            pos += 1024

    def batch(self, micro: int, batch_size: int, generator: torch.Generator, device: torch.device) -> LatentBatch:
        if self._iter is None or micro != self._next:
            dl = torch.utils.data.DataLoader(
                self.source.dataset, batch_size=self.batch_size, sampler=_Endless(self._items(micro)),
                num_workers=self.cfg.num_workers, collate_fn=collate, pin_memory=device.type == "cuda",
            )
            self._iter = iter(dl)
        self._next = micro + 1
        batch = next(self._iter)
        for s in batch.get("__skipped__", []):
            line = f"{s.key} ({s.source}): {s.reason}"
            if line not in self.skipped:
                self.skipped.append(line)
        batch = _real(batch)
        if "image" not in batch:
            raise DKIError(f"a whole batch of undecodable images in {self.source.description}")
        mean, std = encode_posterior(self.vae, batch["image"].to(device, non_blocking=True), self.dtype)
        latents = sample_latents(mean, std, self.scaling, generator)
        self.drawn.add(batch["key"])
        cats = batch.get("category") or [None] * len(batch["key"])
        caps = batch.get("caption") or [None] * len(batch["key"])
        return LatentBatch(latents, [caption_of(c, self.cfg.caption_template, k) for c, k in zip(caps, cats)])


class _Endless(torch.utils.data.Sampler):
    def __init__(self, it: Iterator):
        self.it = it

    def __iter__(self):
        return self.it

