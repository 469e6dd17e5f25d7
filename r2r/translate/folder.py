"""`r2r translate-images`: translate a folder of rendered images into lossless PNGs with the same relative names.

Why: a dataset run (10k images) must survive interruption and must never mix settings. So: outputs are written
atomically (temp file + os.replace), outputs that exist are skipped (resume), the folder's settings are recorded in
`r2r_run.json` (parameters, model identity, versions) and a second run with different settings is refused.
Images are grouped by size into batches; unreadable files and sizes not divisible by 8 are reported by name, the
rest is translated. An image whose output comes out NaN/inf is not written (a rerun retries it) and is named in the
error; a full disk is one `NoSpaceError` naming the folder. No translation math here: that is `R2RPipeline`.
"""

from __future__ import annotations

import argparse
import io
import json
import platform
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

import PIL.Image

from ..config import ModelSpec, RIGParams

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")
RUN_RECORD = "r2r_run.json"


@dataclass(frozen=True)
class TranslateJob:
    input: Path
    output: Path
    model: ModelSpec
    params: RIGParams = RIGParams()
    batch_size: int = 1
    seed: int = 0
    overwrite: bool = False  # translate again even where an output exists, and accept changed settings


@dataclass
class TranslateReport:
    translated: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    rejected: dict[str, str] = field(default_factory=dict)  # relative path -> reason
    failed: dict[str, str] = field(default_factory=dict)  # relative path -> why no output was written (NaN)
    seconds: float = 0.0
    record: Path | None = None


def find_images(root: Path) -> list[Path]:
    """Image files under `root` (relative paths, sorted); the output folder's own files are never inputs."""
    if not root.is_dir():
        raise FileNotFoundError(f"input folder not found: {root}")
    return sorted(p.relative_to(root) for p in root.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def output_name(rel: Path) -> Path:
    return rel.with_suffix(".png")


def _settings(job: TranslateJob) -> dict:
    """What determines the outputs (device and batch size do not, beyond float rounding)."""
    from ..models import model_identity

    ident = model_identity(job.model)
    ident["spec"] = {k: v for k, v in ident["spec"].items() if k != "device"}
    return json.loads(json.dumps({"params": asdict(job.params), "seed": job.seed, "model": ident}))  # JSON types


def _check_settings(record_path: Path, settings: dict) -> None:
    old = json.loads(record_path.read_text())["settings"]
    if old == settings:
        return
    diffs = []
    for group in ("params", "model"):
        a, b = old.get(group, {}), settings.get(group, {})
        diffs += [f"{group}.{k}: {a.get(k)!r} -> {b.get(k)!r}" for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]
    if old.get("seed") != settings.get("seed"):
        diffs.append(f"seed: {old.get('seed')} -> {settings.get('seed')}")
    raise ValueError(
        f"{record_path.parent} holds outputs made with other settings ({'; '.join(diffs)}); "
        "use another --output folder, or --overwrite to translate everything again"
    )


def _versions() -> dict:
    import diffusers
    import torch
    import transformers

    return {"torch": torch.__version__, "diffusers": diffusers.__version__, "transformers": transformers.__version__,
            "python": platform.python_version()}


def plan(job: TranslateJob, report: TranslateReport) -> list[list[Path]]:
    """Batches of same-size images still to translate; fills report.skipped / report.rejected."""
    images = find_images(job.input)
    names = Counter(output_name(rel) for rel in images)
    clashes = sorted(str(name) for name, count in names.items() if count > 1)
    if clashes:
        raise ValueError(f"inputs that differ only by extension would write the same output: {clashes[:10]}")
    by_size: dict[tuple[int, int], list[Path]] = {}
    for rel in images:
        if (job.output / output_name(rel)).exists() and not job.overwrite:
            report.skipped.append(str(rel))
            continue
        try:
            with PIL.Image.open(job.input / rel) as im:
                size = im.size
        except Exception as e:  # noqa: BLE001 - any decoder failure is reported per file
            report.rejected[str(rel)] = f"unreadable image: {e}"
            continue
        if size[0] % 8 or size[1] % 8:
            report.rejected[str(rel)] = f"size {size[0]}x{size[1]} is not divisible by 8"
            continue
        by_size.setdefault(size, []).append(rel)
    step = job.batch_size
    return [rels[i:i + step] for _, rels in sorted(by_size.items()) for i in range(0, len(rels), step)]


def translate_folder(job: TranslateJob, progress: bool = True) -> TranslateReport:
    """Translate every image under job.input into job.output (see the module docstring)."""
    import torch
    from rich.console import Console
    from rich.progress import (
        BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn,
    )

    from synfashion.atomic import remove_stale_temps, write_bytes_atomic, write_json_atomic
    from synfashion.storage import disk_full_as_error, ensure_space

    from ..models import load_pipeline
    from ..pipeline import NonFiniteOutputError

    if job.batch_size < 1:
        raise ValueError(f"batch size must be >= 1, got {job.batch_size}")
    if job.output.resolve() == job.input.resolve() or job.input.resolve() in job.output.resolve().parents:
        raise ValueError(f"output folder {job.output} must not be inside the input folder {job.input}")
    console = Console(stderr=True)
    started = time.perf_counter()
    report = TranslateReport(record=job.output / RUN_RECORD)
    settings = _settings(job)
    if report.record.is_file() and not job.overwrite:
        _check_settings(report.record, settings)
    with disk_full_as_error(job.output, what="the output folder"):
        job.output.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(job.output)
    batches = plan(job, report)
    for rel, reason in report.rejected.items():
        console.print(f"[yellow]rejected[/] {rel}: {reason}", highlight=False)
    if report.skipped:
        console.print(f"[cyan]resume[/]: {len(report.skipped)} output(s) exist and are skipped")

    def write_record(state: str) -> None:
        with disk_full_as_error(job.output, what=RUN_RECORD):
            write_json_atomic(report.record, {
                "settings": settings, "state": state, "device": job.model.device, "dtype": job.model.dtype,
                "batch_size": job.batch_size, "versions": _versions(),
                "counts": {"translated": len(report.translated), "skipped": len(report.skipped),
                           "rejected": len(report.rejected)},
                "rejected": report.rejected, "failed": report.failed,
                "seconds": round(time.perf_counter() - started, 3),
            })

    def write_png(rel: Path, image: PIL.Image.Image) -> None:
        buf = io.BytesIO()
        image.save(buf, format="PNG")
        with disk_full_as_error(job.output, len(buf.getvalue()), what=str(output_name(rel))):
            ensure_space(job.output, len(buf.getvalue()), what=str(output_name(rel)))
            write_bytes_atomic(job.output / output_name(rel), buf.getvalue())

    todo = sum(len(b) for b in batches)
    if todo:
        torch.manual_seed(job.seed)
        pipe = load_pipeline(job.model)  # before the record: a model that fails to load claims no folder
        pipe.set_progress_bar_config(disable=True)  # the rich bar below reports images
    write_record("running")
    if todo:
        columns = (TextColumn("[bold]translate"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                   TimeRemainingColumn())
        with Progress(*columns, console=console, disable=not progress) as bar:
            task = bar.add_task("translate", total=todo)
            for batch in batches:
                images, names = [], []
                for rel in batch:
                    try:
                        with PIL.Image.open(job.input / rel) as im:
                            images.append(im.convert("RGB"))
                        names.append(rel)
                    except Exception as e:  # noqa: BLE001 - a truncated file fails here, not at the header
                        report.rejected[str(rel)] = f"unreadable image: {e}"
                        console.print(f"[yellow]rejected[/] {rel}: {e}", highlight=False)
                if not images:
                    bar.advance(task, len(batch))
                    continue
                generators = [torch.Generator().manual_seed(job.seed) for _ in names]
                bad: set[int] = set()
                try:
                    outs = pipe(images, generator=generators, output_type="pil", **asdict(job.params)).images
                except NonFiniteOutputError as e:  # keep the good rows; the bad ones are retried by a rerun
                    outs, bad = e.output.images, set(e.indices)
                for i, (rel, out) in enumerate(zip(names, outs)):
                    if i in bad:
                        report.failed[str(rel)] = "non-finite output (NaN/inf)"
                        console.print(f"[red]failed[/] {rel}: non-finite output (NaN/inf), not written",
                                      highlight=False)
                        continue
                    write_png(rel, out)
                    report.translated.append(str(rel))
                bar.advance(task, len(batch))
    report.seconds = time.perf_counter() - started
    write_record("done")
    return report


# --- CLI ---------------------------------------------------------------------------------------------------------

def _layers(text: str) -> int | None:
    return None if text.lower() == "none" else int(text)


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "translate-images", help="translate a folder of rendered images (RIG) into PNGs with the same names",
        description="Rendered-to-real translation of every image under --input (FashionR2R RIG). Outputs are "
                    "lossless PNGs with the same relative names, written atomically; existing outputs are skipped "
                    f"(resume); settings and model identity go to OUTPUT/{RUN_RECORD}.",
    )
    p.add_argument("--model", required=True, help="diffusers SD-1.5-architecture folder or Hub id")
    p.add_argument("--input", required=True, type=Path, help="folder of rendered images (searched recursively)")
    p.add_argument("--output", required=True, type=Path, help="output folder")
    p.add_argument("--negative-embedding", help="negative (source-domain) textual inversion, .safetensors")
    p.add_argument("--negative-token", help="token for the negative embedding (default: the file's)")
    p.add_argument("--lora", help="positive-DKI LoRA (.safetensors file or folder), fused into the UNet")
    p.add_argument("--lora-scale", type=float, default=1.0, help="weight of the LoRA when it is fused")
    p.add_argument("--unet", help="positive-DKI finetuned UNet folder (diffusers format)")
    p.add_argument("--source-prompt", default="", help="prompt of the source (inversion) branch")
    p.add_argument("--target-prompt", default="", help="prompt of the target (generation) branch")
    p.add_argument("--negative-prompt", default=None,
                   help="unconditional prompt (default: the negative embedding's token, or empty)")
    p.add_argument("--strength", type=float, default=0.3,
                   help="fraction of the schedule that is inverted and generated again")
    p.add_argument("--steps", type=int, default=50, help="DDIM steps of the full schedule (strength x steps run)")
    p.add_argument("--guidance", type=float, default=7.5, help="classifier-free guidance scale")
    p.add_argument("--tac-ratio", type=float, default=0.9, help="fraction of denoising steps with TAC (gamma)")
    p.add_argument("--tac-layers", type=_layers, default=256,
                   help="TAC in self-attention layers with >= H*W/N tokens ('none': only --tac-blocks)")
    p.add_argument("--tac-blocks", default="", help="comma-separated UNet module-name patterns, e.g. 'up_blocks.3.*'")
    p.add_argument("--no-tac", action="store_true", help="ablation: plain inversion + CFG generation")
    p.add_argument("--mask", action="store_true", help="foreground mask: exactly black/white pixels are background")
    p.add_argument("--inversion-order", choices=("reference", "standard"), default="reference",
                   help="DDIM inversion order: 'reference' as published, 'standard' as textbook (README)")
    p.add_argument("--batch-size", type=int, default=1, help="images per pipeline call (same-size images)")
    p.add_argument("--dtype", choices=("float32", "float16", "bfloat16"), default="float32",
                   help="model weights dtype (latent updates stay float32)")
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    p.add_argument("--seed", type=int, default=0, help="seed recorded with the run (RIG itself draws no noise)")
    p.add_argument("--overwrite", action="store_true", help="translate again where outputs exist")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_translate)


def _cmd_translate(args: argparse.Namespace) -> int:
    from rich.console import Console

    params = RIGParams(
        source_prompt=args.source_prompt, target_prompt=args.target_prompt, negative_prompt=args.negative_prompt,
        strength=args.strength, num_inference_steps=args.steps, guidance_scale=args.guidance,
        tac_ratio=args.tac_ratio, tac_layers=args.tac_layers,
        tac_blocks=tuple(b.strip() for b in args.tac_blocks.split(",") if b.strip()),
        use_tac=not args.no_tac, mask=args.mask, inversion_order=args.inversion_order,
    )
    spec = ModelSpec(
        model=args.model, negative_embedding=args.negative_embedding, negative_token=args.negative_token,
        lora=args.lora, lora_scale=args.lora_scale, unet=args.unet, dtype=args.dtype, device=args.device,
    )
    job = TranslateJob(input=args.input, output=args.output, model=spec, params=params,
                       batch_size=args.batch_size, seed=args.seed, overwrite=args.overwrite)
    report = translate_folder(job, progress=not args.no_progress)
    Console(stderr=True).print(
        f"[green]translated[/] {len(report.translated)}, skipped {len(report.skipped)} (existing), "
        f"rejected {len(report.rejected)}" + (f", failed {len(report.failed)}" if report.failed else "")
        + f" in {report.seconds:.1f}s -> {job.output}"
    )
    if report.failed:
        names = sorted(report.failed)
        shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
        raise ValueError(f"{len(names)} image(s) came out non-finite (NaN/inf) and were not written (a rerun retries "
                         f"them): {shown}; the model or a DKI artifact produces NaN, or float16 overflowed (try "
                         "--dtype bfloat16 or float32)")
    return 1 if report.rejected else 0


__all__ = ["TranslateJob", "TranslateReport", "translate_folder", "find_images", "register"]
