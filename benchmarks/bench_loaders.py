"""Loader benchmark: samples/s delivering 512x512 training tensors, per loader path, vs a naive loop and the ceiling.

    python benchmarks/bench_loaders.py [--projects 5 --textures 5] [--workers 2] [--batch-size 32] [--cache .bench]

Generates (once, cached; shared with bench_build.py) a sample release of 20 categories x projects x textures x
4 views of 768x1024 JPEGs (2,000 by default) and builds it (once, cached, 32 MB shards so streaming readers have
several shards to split). Then, on a warm page cache, times one epoch of the train split through:
  map        synfashion_loader(folder)                  datasets Arrow, map-style, `--workers` workers
  streaming  synfashion_loader(folder, streaming=True)  datasets streaming Parquet
  wds        webdataset_loader(folder)                  WebDataset tars
  folder     image_folder_loader(train files)           plain files (the same images, hard-linked)
  map-float  the map path delivering float32 instead    (4x the bytes written and moved per sample)
  naive      one process: PIL open, convert, resize (shorter side 512, bicubic), center crop, to tensor
  ceiling    decode + resize to 512x512 only, bytes already in memory, one process per core (no I/O, no
             tensor conversion, no batching or transfer): the most this machine can decode
The loader paths deliver TRAIN_512 (random crop, flip) as uint8 CHW batches by default (`--output`): on a GPU
`to_float(batch["image"].cuda())` makes the [-1, 1] floats, and the CPU neither writes nor ships 4x the bytes.
Each figure is the best of --repeats rounds (paths alternate within a round); CPU ms per sample of all the
processes of a path is printed too (it hardly moves with foreign load). Ends with one JSON line.
"""

from __future__ import annotations

import argparse
import json
import gc
import multiprocessing as mp
import os
import platform
import resource
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

SIZE = 512


# ------------------------------------------------------------------------------------------------ the data
def _synthetic_release(root: Path, projects: int, textures: int) -> None:
    """Stand-in used only while synfashion.sample is unavailable: smooth garment-like 768x1024 JPEGs."""
    import numpy as np
    from PIL import Image, ImageDraw, ImageFilter

    from synfashion.taxonomy import CATEGORIES, DISPLAY_NAMES, VIEWS

    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:1024, 0:768]
    for cat in CATEGORIES:
        for p in range(projects):
            for t in range(textures):
                tex = rng.integers(0, 255, (16, 12, 3)).astype(np.uint8)
                tile = np.asarray(Image.fromarray(tex).resize((768, 1024), Image.Resampling.BICUBIC)).astype(float)
                for v, view in enumerate(VIEWS):
                    bg = np.stack([235 + 0 * xx, 235 - yy / 60, 240 - xx / 80], -1)
                    img = Image.fromarray(bg.clip(0, 255).astype(np.uint8))
                    mask = Image.new("L", (768, 1024))
                    d = ImageDraw.Draw(mask)
                    d.polygon([(200 + 10 * v, 150), (568 - 10 * v, 150), (640, 900), (128, 900)], fill=255)
                    d.ellipse((250, 80, 518, 260), fill=255)
                    shade = tile * (0.75 + 0.25 * np.sin(xx / 90.0 + v))[..., None]
                    garment = Image.fromarray(shade.clip(0, 255).astype(np.uint8)).filter(ImageFilter.SMOOTH)
                    img.paste(garment, mask=mask.filter(ImageFilter.GaussianBlur(2)))
                    path = root / DISPLAY_NAMES[cat] / f"{cat}-p{p:02d}_t{cat[:4].strip('-')}{p}x{t}_{view}.jpg"
                    path.parent.mkdir(parents=True, exist_ok=True)
                    img.save(path, "JPEG", quality=92)


def release(cache: Path, projects: int, textures: int) -> tuple[Path, str]:
    """The generated sample: bench_build.py's cached one when it is complete, else our own (written to a
    temporary name and renamed, never touching a folder another benchmark may be writing)."""
    shared = cache / f"release-{projects}x{textures}-768x1024-jpg"
    if (shared / ".complete").exists():
        return shared, "synfashion.sample"
    try:
        from synfashion.sample import SampleConfig, generate_sample
    except ModuleNotFoundError as e:  # absent, not broken: a broken module must fail loudly
        if e.name != "synfashion.sample":
            raise
        generate_sample = None
    if generate_sample:
        root, kind = cache / f"loaders-release-{projects}x{textures}", "synfashion.sample"
    else:  # never under bench_build's name, so it cannot mistake the stand-in for a real sample
        root = cache / f"loaders-synthetic-release-{projects}x{textures}"
        kind = "synthetic stand-in (no synfashion.sample)"
    if (root / ".complete").exists():
        return root, (root / ".complete").read_text().strip() or kind
    tmp = root.with_name(f"{root.name}.tmp-{os.getpid()}")
    if generate_sample:
        generate_sample(tmp, SampleConfig(projects_per_category=projects, textures_per_project=textures),
                        workers=os.cpu_count() or 1, progress=False)
    else:
        _synthetic_release(tmp, projects, textures)
    (tmp / ".complete").write_text(kind)
    shutil.rmtree(root, ignore_errors=True)  # ours: an earlier run's leftover without .complete
    tmp.rename(root)
    return root, kind


def built(cache: Path, root: Path, kind: str, projects: int, textures: int) -> Path:
    from synfashion.build import BuildConfig, build_dataset

    tag = "" if kind == "synfashion.sample" else "synthetic-"
    out = cache / f"loaders-{tag}built-{projects}x{textures}"
    # Always ask the builder: its fingerprint (every input's sha256 + parameters) reuses an up-to-date build's
    # shards and rebuilds a stale one (a regenerated release), instead of trusting whatever folder is there.
    build_dataset(root, out, BuildConfig(shard_size=32 * 2**20, overwrite=True), workers=os.cpu_count() or 1,
                  progress=False)
    return out


# ------------------------------------------------------------------------------------------------ timings
def _cpu() -> float:
    """CPU seconds of this process and of its children that have exited (loader workers, pool processes)."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def time_loader(loader) -> tuple[float, int, float]:
    """(samples/s, samples, CPU ms per sample). Workers exit at the end of the epoch, so their CPU counts."""
    c, t = _cpu(), time.perf_counter()
    n = 0
    for batch in loader:
        n += batch["image"].shape[0]
    rate = n / (time.perf_counter() - t)
    del loader
    gc.collect()
    return rate, n, 1000 * (_cpu() - c) / n


def naive(files: list[Path]) -> float:
    """What a first script does: PIL open, convert, resize keeping aspect, center crop, to a float tensor."""
    import numpy as np
    import torch
    from PIL import Image

    t = time.perf_counter()
    for p in files:
        img = Image.open(p).convert("RGB")
        w, h = img.size
        s = SIZE / min(w, h)
        img = img.resize((round(w * s), round(h * s)), Image.Resampling.BICUBIC)
        left, top = (img.width - SIZE) // 2, (img.height - SIZE) // 2
        img = img.crop((left, top, left + SIZE, top + SIZE))
        x = torch.from_numpy(np.array(img)).permute(2, 0, 1).float() / 127.5 - 1.0
        assert x.shape == (3, SIZE, SIZE)
    return len(files) / (time.perf_counter() - t)


def _decode_resize(blobs: list[bytes]) -> int:
    import torch

    from loaders import EVAL_512, ImageTransform
    from loaders.decode import tune_decoder

    torch.set_num_threads(1)
    tune_decoder()  # as in the loaders' workers
    t = ImageTransform(EVAL_512.with_(output="uint8"))
    for b in blobs:
        t(b)
    return len(blobs)


def ceiling(files: list[Path], processes: int) -> tuple[float, float]:
    """Decode + resize only (our decoder and resize), bytes in memory, one process per core.
    Returns (samples/s, CPU ms per sample)."""
    blobs = [p.read_bytes() for p in files]
    chunks = [blobs[i :: processes * 4] for i in range(processes * 4)]
    ctx = mp.get_context("fork")
    pool = ctx.Pool(processes)
    pool.map(_decode_resize, [blobs[:processes]] * processes)  # warm the workers (imports)
    c = _cpu()
    t = time.perf_counter()
    n = sum(pool.map(_decode_resize, chunks, chunksize=1))
    rate = n / (time.perf_counter() - t)
    pool.close()
    pool.join()  # the processes' CPU time is counted once they have exited
    return rate, 1000 * (_cpu() - c) / n


def ceiling_one_core(files: list[Path]) -> float:
    blobs = [p.read_bytes() for p in files[:300]]
    _decode_resize(blobs[:5])
    t = time.perf_counter()
    n = _decode_resize(blobs)
    return n / (time.perf_counter() - t)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--projects", type=int, default=5)
    ap.add_argument("--textures", type=int, default=5)
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="DataLoader workers (default: cores)")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--cache", type=Path, default=Path(".bench"))
    ap.add_argument("--only", nargs="*", help="run only these paths")
    ap.add_argument("--output", choices=["uint8", "float"], default="uint8",
                    help="what the loader paths deliver (uint8: to_float runs on the device; map-float shows float)")
    ap.add_argument("--repeats", type=int, default=2, help="rounds; each figure is the best round")
    ap.add_argument("--naive-files", type=int, default=400, help="files timed by the (slow) naive loop")
    args = ap.parse_args()
    args.cache.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_CACHE", str(args.cache.resolve() / "hf-cache"))

    import datasets
    import torch

    from loaders import TRAIN_512, LoaderConfig, Selection, image_folder_loader, synfashion_loader, webdataset_loader

    datasets.disable_progress_bars()
    datasets.config.SLEEP_TIME_ON_THREADS_SHUTDOWN = 0  # datasets sleeps 5 s after each streamed epoch otherwise
    root, kind = release(args.cache, args.projects, args.textures)
    folder = built(args.cache, root, kind, args.projects, args.textures)
    manifest = json.loads((folder / "manifest.json").read_text())
    train = [s for s in manifest["samples"] if s["split"] == "train"]
    files = [root / s["source_path"] for s in train]
    for p in files:  # warm the page cache: every path then reads from memory
        p.read_bytes()
    for p in folder.rglob("*"):
        if p.is_file():
            p.read_bytes()
    # the same files, as a plain folder, named by the build's fingerprint so a rebuilt release gets a fresh copy
    train_dir = folder.with_name(folder.name.replace("built", "train-files") + "-" + manifest["fingerprint"][:12])
    if not train_dir.exists():
        tmp = train_dir.with_suffix(".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        for s, p in zip(train, files):
            dst = tmp / s["source_path"]
            dst.parent.mkdir(parents=True, exist_ok=True)
            os.link(p, dst) if os.stat(p).st_dev == os.stat(tmp).st_dev else shutil.copy(p, dst)
        tmp.rename(train_dir)

    cfg = LoaderConfig(batch_size=args.batch_size, num_workers=args.workers, seed=0, pin_memory=False)
    sel = Selection(split="train")
    train = TRAIN_512.with_(output=args.output)
    paths = {
        "map": lambda: synfashion_loader(folder, sel, train, cfg),
        "streaming": lambda: synfashion_loader(folder, sel, train, cfg, streaming=True),
        "wds": lambda: webdataset_loader(folder, sel, train, cfg),
        "folder": lambda: image_folder_loader(train_dir, train, cfg),
        "map-float": lambda: synfashion_loader(folder, sel, TRAIN_512, cfg),  # float32 [-1, 1] made in the workers
    }
    print(f"release: {root} ({kind}); built: {folder}; train split: {len(files)} images 768x1024; "
          f"{os.cpu_count()} cores; workers={args.workers}; batch={args.batch_size}; torch {torch.__version__}",
          flush=True)
    figures: dict[str, float] = {}
    cpu_ms: dict[str, float] = {}
    wanted = set(args.only or [*paths, "naive", "ceiling"])

    def record(name: str, rate: float, ms: float | None, note: str = "") -> None:
        figures[name] = max(figures.get(name, 0.0), round(rate, 1))
        if ms is not None:
            cpu_ms[name] = min(cpu_ms.get(name, float("inf")), round(ms, 2))
        cpu = f"  {ms:5.2f} CPU ms/sample" if ms is not None else ""
        print(f"  round {r + 1}: {name:<10} {rate:7.1f} samples/s{cpu}{note}", flush=True)

    # The machine may be shared: every figure is the best of `--repeats` rounds, the paths alternating within
    # each round, so a burst of foreign load hits one attempt, not one path. CPU ms per sample (all processes
    # of a path) is reported too: unlike samples/s it hardly moves with foreign load.
    for r in range(args.repeats):
        for name, make in paths.items():
            if name not in wanted:
                continue
            loader = make()  # construction (Arrow cache, file listing) is not timed
            rate, n, ms = time_loader(loader)
            assert n == len(files), (name, n, len(files))
            record(name, rate, ms)
        if "naive" in wanted:
            c = _cpu()
            k = min(args.naive_files, len(files))
            rate = naive(files[:k])
            record("naive", rate, 1000 * (_cpu() - c) / k, "  (one process)")
        if "ceiling" in wanted:
            rate, ms = ceiling(files, os.cpu_count() or 1)
            record("ceiling", rate, ms, f"  (decode+resize only, {os.cpu_count()} processes)")
            one = ceiling_one_core(files)
            figures["ceiling_one_core"] = max(figures.get("ceiling_one_core", 0.0), round(one, 1))
    print("best of each:", ", ".join(f"{k} {v}" for k, v in figures.items()), flush=True)
    ours = {k: v for k, v in figures.items() if k in paths}
    result = {
        "benchmark": "loaders", "images": len(files), "size": [SIZE, SIZE], "release": kind,
        "cores": os.cpu_count(), "workers": args.workers, "batch_size": args.batch_size, "output": args.output,
        "python": platform.python_version(), "torch": torch.__version__, "samples_per_s": figures,
    }
    result["cpu_ms_per_sample"] = cpu_ms
    if ours:
        best = max(ours, key=ours.get)
        result["fastest"] = best
        if "naive" in figures:
            result["fastest_vs_naive"] = round(ours[best] / figures["naive"], 2)
        if "ceiling" in figures:
            result["fastest_vs_ceiling"] = round(ours[best] / figures["ceiling"], 2)
        if "ceiling" in cpu_ms:  # CPU efficiency: decode+resize CPU over the path's whole CPU, per sample
            result["cpu_efficiency"] = {k: round(cpu_ms["ceiling"] / cpu_ms[k], 2) for k in ours if k in cpu_ms}
    print(json.dumps(result))


if __name__ == "__main__":
    main()
