"""translate-dataset end to end against the pipeline alone: does the dataset machinery keep the model busy?

Ceiling: `R2RPipeline` (through the same `Translator`) called in a bare loop on the same images, already decoded in
memory, in the same batches: no decoding, no PNG encoding, no hashing, no writing. End to end: `translate_dataset`
on those images from a built folder to a finished, verified translated dataset (decoding in workers, PNG encoding
and staging on a thread beside the model, then the Parquet/WebDataset shards, manifest and card). The model's load
is timed apart and left out of both rates. Target (issue 11): end to end >= 0.9 of the ceiling. Both run in one
process, ceiling first, interleaved over `--repeats` rounds (this machine's speed drifts through the day).

    python benchmarks/bench_translate_dataset.py --device cpu                      # tiny model, 96x128 (CPU)
    python benchmarks/bench_translate_dataset.py --device cuda --sd15 --width 768 --height 1024 --images 32 \\
        --batch-size 8 --dtype bfloat16                                            # SD-1.5 architecture, random

Prints a table and one JSON line.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _model(tmp: Path, sd15: bool, device: str) -> Path:
    """A random-weight model folder: the tiny one, or the SD-1.5 architecture (speed does not depend on weights)."""
    from r2r.tiny import save_tiny_model

    if not sd15:
        return save_tiny_model(tmp / "tiny")
    import torch

    from benchmarks.bench_translate import SD15_TEXT
    from r2r.sd15 import SD15_UNET, SD15_VAE
    from r2r.tiny import build_pipeline, tokenizer_vocab, write_tokenizer

    write_tokenizer(tmp / "tok")
    vocab, _ = tokenizer_vocab()
    text = {**SD15_TEXT, "vocab_size": len(vocab), "bos_token_id": vocab["<|startoftext|>"],
            "eos_token_id": vocab["<|endoftext|>"], "pad_token_id": vocab["<|endoftext|>"]}
    sd = build_pipeline(SD15_UNET, SD15_VAE, text, tmp / "tok", device=device).to(torch.float16)
    sd.save_pretrained(tmp / "sd15", safe_serialization=True)
    shutil.rmtree(tmp / "sd15" / "tokenizer")
    shutil.copytree(tmp / "tok", tmp / "sd15" / "tokenizer")
    return tmp / "sd15"


def _source(tmp: Path, width: int, height: int, images: int) -> Path:
    """A built folder whose test split holds `images` generated renders (every other split empty)."""
    from synfashion.build import BuildConfig, build_dataset
    from synfashion.sample import SampleConfig, generate_sample
    from synfashion.splits import SplitConfig

    from synfashion.taxonomy import CATEGORIES

    # 4 views a project: as few categories as hold the images (all 20 from 80 images on), no render made for nothing
    kinds = min(len(CATEGORIES), max(1, -(-images // 4)))
    per = max(1, -(-images // (4 * kinds)))
    generate_sample(tmp / "release", SampleConfig(width=width, height=height, projects_per_category=per,
                                                  textures_per_project=1, categories=CATEGORIES[:kinds]),
                    progress=False)
    only_test = SplitConfig(fractions={"train": 0.0, "validation": 0.0, "test": 1.0})
    build_dataset(tmp / "release", tmp / "built", BuildConfig(split=only_test, garments=False), progress=False)
    return tmp / "built"


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cpu")
    p.add_argument("--sd15", action="store_true", help="SD-1.5 architecture with random weights (else the tiny model)")
    p.add_argument("--width", type=int, default=96)
    p.add_argument("--height", type=int, default=128)
    p.add_argument("--images", type=int, default=32)
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--steps", type=int, default=50)
    p.add_argument("--strength", type=float, default=0.3)
    p.add_argument("--dtype", choices=("float32", "float16", "bfloat16"), default="float32")
    p.add_argument("--num-workers", type=int, default=2, help="decode workers of translate-dataset")
    p.add_argument("--repeats", type=int, default=2, help="interleaved rounds (best of each is reported)")
    p.add_argument("--keep", help="keep the scratch folder here")
    args = p.parse_args(argv)

    import torch

    from loaders.selection import eval_subset_keys
    from r2r.config import ModelSpec, RIGParams
    from r2r.translate.dataset import DatasetJob, translate_dataset
    from r2r.translate.engine import SizePolicy, Translator, decode_for_model
    from loaders.sources import open_records
    from synfashion.verify import verify_dataset

    log = lambda *a: print(*a, file=sys.stderr, flush=True)  # noqa: E731
    tmp = Path(args.keep or tempfile.mkdtemp(prefix="bench-tds-"))
    tmp.mkdir(parents=True, exist_ok=True)
    t = time.perf_counter()
    model = _model(tmp, args.sd15, args.device)
    source = _source(tmp, args.width, args.height, args.images)
    log(f"model {model.name}, source {args.images} images {args.width}x{args.height} ready in "
        f"{time.perf_counter() - t:.1f}s; device {args.device}, threads {torch.get_num_threads()}")

    spec = ModelSpec(model=str(model), dtype=args.dtype, device=args.device)
    params = RIGParams(num_inference_steps=args.steps, strength=args.strength)
    src = open_records(source, ("test",))
    # the source holds a multiple of 80 renders (20 categories x 4 views): both paths take the same `--images` of
    # them, chosen as translate-dataset's --limit chooses (lowest keyed hash)
    chosen = eval_subset_keys(((s["key"], s["split"]) for s in src.samples), args.images, 0)
    samples = [s for s in src.samples if s["key"] in chosen]
    n = len(samples)
    policy = SizePolicy()
    decoded = [decode_for_model(src.read(s["key"]), s.get("orientation"), policy) for s in samples]
    batches = [decoded[i:i + args.batch_size] for i in range(0, n, args.batch_size)]
    t = time.perf_counter()
    translator = Translator(spec, params)
    load = time.perf_counter() - t

    def sync() -> None:
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()

    def ceiling() -> float:
        translator(torch.stack(batches[0]), ["warm-up"] * len(batches[0]))  # warm-up (kernels, allocator)
        sync()
        t0 = time.perf_counter()
        for i, batch in enumerate(batches):
            translator(torch.stack(batch), [f"{i}-{j}" for j in range(len(batch))])
        sync()
        return n / (time.perf_counter() - t0)

    def end_to_end(round_: int) -> tuple[float, dict]:
        out = tmp / f"out-{round_}"
        job = DatasetJob(source=str(source), out=out, model=spec, params=params, limit=args.images,
                         batch_size=args.batch_size, num_workers=args.num_workers)
        job = DatasetJob(**{**job.__dict__, "splits": ("test",)})
        report = translate_dataset(job, progress=False)
        busy = sum(v for k, v in report.phases.items() if k not in ("load",))
        assert report.translated == n == report.manifest.counts["total"], (report.translated, n)
        assert verify_dataset(out).ok
        shutil.rmtree(out)
        return n / busy, report.phases

    ceil, e2e, phases = [], [], []
    for r in range(args.repeats):
        ceil.append(ceiling())
        rate, ph = end_to_end(r)
        e2e.append(rate)
        phases.append(ph)
        log(f"round {r + 1}: ceiling {ceil[-1]:.3f} img/s, end to end {e2e[-1]:.3f} img/s "
            f"(phases {', '.join(f'{k} {v:.2f}s' for k, v in ph.items())})")
    best_ceil, best_e2e = max(ceil), max(e2e)
    result = {
        "bench": "translate_dataset", "device": args.device, "model": "sd15-random" if args.sd15 else "tiny",
        "width": args.width, "height": args.height, "images": n, "batch_size": args.batch_size, "steps": args.steps,
        "strength": args.strength, "dtype": args.dtype, "num_workers": args.num_workers,
        "model_load_s": round(load, 2), "ceiling_img_s": round(best_ceil, 4), "end_to_end_img_s": round(best_e2e, 4),
        "ratio": round(best_e2e / best_ceil, 3), "target_ratio": 0.9,
        "ceiling_runs": [round(x, 4) for x in ceil], "end_to_end_runs": [round(x, 4) for x in e2e],
        "phases_best": {k: round(v, 3) for k, v in phases[e2e.index(best_e2e)].items()},
    }
    print(f"\n{'':24}{'images/s':>10}\npipeline alone (ceiling){best_ceil:10.3f}\n"
          f"translate-dataset       {best_e2e:10.3f}   ({result['ratio']:.2f} of the ceiling; target 0.90)")
    print(json.dumps(result))
    if not args.keep:
        shutil.rmtree(tmp, ignore_errors=True)
    return result


if __name__ == "__main__":
    main()
