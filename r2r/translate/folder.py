"""`r2r translate-images`: translate a folder of rendered images into lossless PNGs with the same relative names.

Why: a dataset run (10k images) must survive interruption and must never mix settings. So: outputs are written
atomically (temp file + os.replace), outputs that exist are skipped (resume), the folder's settings are recorded in
`r2r_run.json` (parameters, model identity, versions) and a second run with different settings is refused.
Images are grouped by size into batches; unreadable files and sizes not divisible by 8 are reported by name, the
rest is translated. An image whose output comes out NaN/inf is not written (a rerun retries it) and is named in the
error; a full disk is one `NoSpaceError` naming the folder. The output folder is new, empty or an earlier run's
(r2r_run.json), never another command's or a user's, and apart from the inputs (`synfashion.fs.ownership`); every
input is read through `loaders.files` (a FIFO, a device, a link out of the input folder or a bomb is rejected by
name). Decoding, the size policy, the model call and its checks, and the PNG are `engine.py`'s, the same code
`translate-dataset` runs; one run per output folder (`folder_lock`). No translation math here: that is `R2RPipeline`.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path


from synfashion.settings import differences, summary

from .job import TranslateJob
from .record import versions
from .sizes import SizePolicy

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")
RUN_RECORD = "r2r_run.json"


@dataclass
class TranslateReport:
    translated: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    rejected: dict[str, str] = field(default_factory=dict)  # relative path -> reason
    failed: dict[str, str] = field(default_factory=dict)  # relative path -> why no output was written (NaN)
    seconds: float = 0.0
    record: Path | None = None


def find_images(root: Path) -> list[Path]:
    """Every entry under `root` named like an image (relative paths, sorted), whatever it is: `plan` reads each
    through `loaders.files`, and one that is not a regular image file inside `root` (a FIFO, a device, a link out)
    is rejected by name, never skipped silently."""
    from loaders.files import list_files

    if not root.is_dir():
        raise FileNotFoundError(f"input folder not found: {root}")
    return [Path(rel) for rel in list_files(root, IMAGE_SUFFIXES, hidden=True)]


def output_name(rel: Path) -> Path:
    return rel.with_suffix(".png")


def _settings(job: TranslateJob) -> dict:
    """What determines the outputs (device and batch size do not, beyond float rounding)."""
    from ..models import model_identity

    ident = model_identity(job.model)
    ident["spec"] = {k: v for k, v in ident["spec"].items() if k != "device"}
    settings = {"params": asdict(job.params), "seed": job.seed, "model": ident}
    if job.size != SizePolicy():
        settings["size_policy"] = job.size.describe()
    return json.loads(json.dumps(settings))  # JSON types


def _check_settings(record_path: Path, settings: dict) -> None:
    diffs = differences(json.loads(record_path.read_text())["settings"], settings)
    if not diffs:
        return
    raise ValueError(
        f"{record_path.parent} holds outputs made with other settings ({summary(diffs)}); "
        "use another --output folder, or --overwrite to translate everything again"
    )


def plan(job: TranslateJob, report: TranslateReport) -> list[list[Path]]:
    """Batches of same-size images still to translate; fills report.skipped / report.rejected."""
    from loaders.files import ImageFileError, image_header

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
        try:  # a regular file inside the input folder, its declared size bounded (loaders/files.py)
            width, height, orientation = image_header(job.input / rel, root=job.input)
        except ImageFileError as e:
            report.rejected[str(rel)] = f"unreadable image: {e.detail}"
            continue
        size = (height, width) if orientation in (5, 6, 7, 8) else (width, height)  # upright, as decoded
        model_size = job.size.model_size(*size)
        if isinstance(model_size, str):
            report.rejected[str(rel)] = model_size
            continue
        by_size.setdefault(model_size, []).append(rel)
    step = job.batch_size
    return [rels[i:i + step] for _, rels in sorted(by_size.items()) for i in range(0, len(rels), step)]


def translate_folder(job: TranslateJob, progress: bool = True) -> TranslateReport:
    """Translate every image under job.input into job.output (see the module docstring)."""
    import torch
    from rich.console import Console
    from rich.markup import escape
    from rich.progress import Progress

    from loaders.files import read_file
    from synfashion.fs.atomic import remove_stale_temps, write_bytes_atomic, write_json_atomic
    from synfashion.fs.locks import folder_lock
    from synfashion.fs.ownership import claim
    from synfashion.fs.space import disk_full_as_error, ensure_space

    from .engine import BadOutputError, Translator, decode_for_model, encode_png, progress_columns, step_progress

    if job.batch_size < 1:
        raise ValueError(f"batch size must be >= 1, got {job.batch_size}")
    inputs = {"input folder": job.input, **job.model.inputs()}
    claim(job.output, "translate-images", inputs=inputs)  # new, empty or ours (r2r_run.json); apart from the inputs
    console = Console(stderr=True)
    started = time.perf_counter()
    report = TranslateReport(record=job.output / RUN_RECORD)
    settings = _settings(job)
    if report.record.is_file() and not job.overwrite:
        _check_settings(report.record, settings)
    with disk_full_as_error(job.output, what="the output folder"), folder_lock(job.output, "r2r translate-images"):
        claim(job.output, "translate-images", inputs=inputs)  # again, holding the folder
        remove_stale_temps(job.output)
        batches = plan(job, report)
        for rel, reason in report.rejected.items():
            console.print(f"[yellow]rejected[/] {escape(str(rel))}: {escape(reason)}", highlight=False)
        if report.skipped:
            console.print(f"[cyan]resume[/]: {len(report.skipped)} output(s) exist and are skipped")

        def write_record(state: str) -> None:
            with disk_full_as_error(job.output, what=RUN_RECORD):
                write_json_atomic(report.record, {
                    "settings": settings, "state": state, "device": job.model.device, "dtype": job.model.dtype,
                    "batch_size": job.batch_size, "versions": versions(),
                    "counts": {"translated": len(report.translated), "skipped": len(report.skipped),
                               "rejected": len(report.rejected)},
                    "rejected": report.rejected, "failed": report.failed,
                    "seconds": round(time.perf_counter() - started, 3),
                })

        def write_png(rel: Path, image: torch.Tensor) -> None:
            data = encode_png(image)
            with disk_full_as_error(job.output, len(data), what=str(output_name(rel))):
                ensure_space(job.output, len(data), what=str(output_name(rel)))
                write_bytes_atomic(job.output / output_name(rel), data)

        todo = sum(len(b) for b in batches)
        translator = Translator(job.model, job.params, job.seed) if todo else None  # before the record: a model
        write_record("running")                                                   # that fails to load claims no folder
        if todo:
            with Progress(*progress_columns(), console=console, disable=not progress) as bar:
                task = bar.add_task("translate", total=todo, step="")
                done = 0
                for batch in batches:
                    images, names, sizes = [], [], []
                    for rel in batch:
                        try:  # loaders' decoder: EXIF orientation, CMYK, 16-bit and palette as for training
                            image = decode_for_model(read_file(job.input / rel, root=job.input), None, job.size)
                        except Exception as e:  # noqa: BLE001 - a truncated file fails here, not at the header
                            report.rejected[str(rel)] = f"unreadable image: {e}"
                            console.print(f"[yellow]rejected[/] {escape(str(rel))}: {escape(str(e))}",
                                          highlight=False)
                            continue
                        images.append(image)
                        names.append(rel)
                        sizes.append(_source_size(job, rel))
                    if not images:
                        done += len(batch)
                        bar.update(task, completed=done)
                        continue
                    crop = sizes if job.size.pad else None
                    on_step = step_progress(bar, task, done, len(batch))
                    try:
                        outputs = dict(zip(names, translator(torch.stack(images), [str(n) for n in names], crop,
                                                             on_step)))
                    except BadOutputError as e:  # keep the good images; the bad ones are retried by a rerun
                        outputs = {rel: e.good[str(rel)] for rel in names if str(rel) in e.good}
                        for rel in names:
                            if rel not in outputs:
                                report.failed[str(rel)] = e.args[0].split(" for ")[0]
                                console.print(f"[red]failed[/] {escape(str(rel))}: non-finite or flat output, not "
                                              "written", highlight=False)
                    for rel, out in outputs.items():
                        write_png(rel, out)
                        report.translated.append(str(rel))
                    done += len(batch)
                    bar.update(task, completed=done)
        report.seconds = time.perf_counter() - started
        write_record("done")
    return report


def _source_size(job: TranslateJob, rel: Path) -> tuple[int, int]:
    """The upright (width, height) of an input (what --pad crops the output back to)."""
    from loaders.files import image_header

    width, height, orientation = image_header(job.input / rel, root=job.input)
    return (height, width) if orientation in (5, 6, 7, 8) else (width, height)


__all__ = ["TranslateJob", "TranslateReport", "translate_folder", "find_images"]
