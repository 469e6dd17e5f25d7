"""`r2r downstream` end to end: open the data, claim the folder, train and score every variant, write the results.

Order matters for "bad input changes nothing": every source and test set is opened and the model built before the
output folder is claimed, so a typo fails with the folder untouched. Variants run one after another with the same
initial weights; a variant whose checkpoint says it is finished is not trained again, one that stopped mid-way
continues from its last epoch. Only the main process writes (every output recorded as this run's, outdir.py); the
results document is rebuilt from the checkpoints' scores at the end of every run, so it always matches them.
"""

from __future__ import annotations

import contextlib
import functools
import platform
from pathlib import Path

import torch

from synfashion.fs.atomic import (
    atomic_path, remove_stale_temps, usual_permissions, write_bytes_atomic, write_json_atomic,
)
from synfashion.fs.space import disk_full_as_error
from synfashion.taxonomy import CATEGORIES

from ..progress import stderr_console, training_progress
from .checkpoint import LoopState, read_state, save_checkpoint
from .config import DownstreamConfig, DownstreamError
from .data import LabelledSet, folder_identity, open_heldout, open_real, open_train, source_identity, transforms
from .models import BuiltModel, ModelInfo, build_model
from .outdir import BAR_CHART, CHECKPOINTS, CONFUSION, MODELS, RESULTS_JSON, RESULTS_MD, DownstreamFolder, \
    fingerprint_hash, run_lock
from .plot import bar_chart, confusion_figure
from .report import markdown, rich_table
from .trainer import VariantRun, VariantTrainer, make_accelerator

RESULTS_FORMAT = "r2r-downstream-results/1"
_UNMATCHED_SHOWN = 10


@contextlib.contextmanager
def quiet_library_bars():
    """datasets' "Generating split" and transformers' "Writing model shards" bars would interleave with ours."""
    import datasets
    from transformers.utils import logging as tlogging

    ds_off, tf_on = datasets.are_progress_bars_disabled(), tlogging.is_progress_bar_enabled()
    datasets.disable_progress_bars()
    tlogging.disable_progress_bar()
    try:
        yield
    finally:
        if not ds_off:
            datasets.enable_progress_bars()
        if tf_on:
            tlogging.enable_progress_bar()


def progress_factory(show: bool):
    """(description, total, completed) -> context manager yielding advance(n=1, loss=None, sps=None)."""
    return functools.partial(training_progress, show=show)


class DownstreamRun:
    """One comparison (see the module docstring). `run()` returns the results document (results.json's content)."""

    def __init__(self, cfg: DownstreamConfig, accelerator=None):
        self.cfg = cfg
        self.out = Path(cfg.out).expanduser()
        self._acc = accelerator
        self.notes: list[str] = []

    # ------------------------------------------------------------------------------------------ data
    def open_data(self) -> tuple[list[LabelledSet], list[LabelledSet]]:
        cfg = self.cfg
        train_tf, eval_tf = transforms(cfg)
        on_error = "skip" if cfg.skip_bad_images else "raise"
        trains = [open_train(v, train_tf, cfg.seed, on_error) for v in cfg.train]
        tests: list[LabelledSet] = []
        if cfg.test_real:
            tests.append(open_real(cfg.test_real, eval_tf, cfg.seed, skip_bad=cfg.skip_bad_images))
        if cfg.test_split:
            for v in cfg.train:
                held = open_heldout(v, cfg.test_split, eval_tf, cfg.seed, on_error)
                if isinstance(held, str):
                    self.notes.append(held)
                else:
                    tests.append(held)
        if not tests:
            raise DownstreamError("nothing to test on: pass --test-real, or training sources that have the "
                                  f"--test-split {cfg.test_split!r} split")
        return trains, tests

    def inputs(self) -> dict:
        """What the comparison reads (OUT is never, never holds and never sits in any of them)."""
        cfg = self.cfg
        return {**{f"training source {t.name}": Path(t.source).expanduser() for t in cfg.train},
                "--test-real photos": Path(cfg.test_real).expanduser() if cfg.test_real else None,
                "model": Path(cfg.model).expanduser() if cfg.model else None}

    def fingerprint(self, world: int) -> dict:
        cfg = self.cfg
        fp = dict(cfg.settings())
        fp["data"] = {t.name: source_identity(t.source) for t in cfg.train}
        fp["test_real_files"] = folder_identity(cfg.test_real) if cfg.test_real else None
        fp["processes"] = world
        return fp

    # ------------------------------------------------------------------------------------------ run
    def run(self) -> dict:
        cfg = self.cfg
        DownstreamFolder(self.out, self.inputs()).check_owner()  # whose folder is OUT: before anything is read
        acc = self._acc or make_accelerator(cfg)
        self.acc = acc
        main = acc.is_main_process
        with run_lock(self.out, acc.process_index, acc.num_processes), quiet_library_bars():
            trains, tests = self.open_data()
            built = build_model(cfg)
            fingerprint = self.fingerprint(acc.num_processes)
            folder = DownstreamFolder(self.out, self.inputs())
            self._claim(folder, fingerprint)
            try:
                results = self._run_variants(folder, trains, tests, built, fingerprint_hash(fingerprint))
            except BaseException:
                if main and not any((self.out / p).exists() for p in (CHECKPOINTS, MODELS)):
                    folder.undo_claim()  # failed before its first checkpoint: the folder is as it was
                raise
        return results

    def _claim(self, folder: DownstreamFolder, fingerprint: dict) -> None:
        """The main process settles the folder; the others learn the outcome (and raise the same error)."""
        from accelerate.utils import broadcast_object_list

        acc = self.acc
        message = [None]
        if acc.is_main_process:
            try:
                with disk_full_as_error(self.out, what="the run record"):
                    folder.claim(fingerprint, overwrite=self.cfg.overwrite)
            except ValueError as e:
                message = [str(e)]
        if acc.num_processes > 1:
            broadcast_object_list(message)
        if message[0] is not None:
            raise DownstreamError(message[0])
        if acc.is_main_process and folder.removed:
            self.notes.append(f"--overwrite removed {len(folder.removed)} file(s) of an earlier run")

    def _run_variants(self, folder: DownstreamFolder, trains: list[LabelledSet], tests: list[LabelledSet],
                      built: BuiltModel, fp: str) -> dict:
        cfg, acc = self.cfg, self.acc
        progress = progress_factory(cfg.progress and acc.is_main_process)
        self._say_unmatched(tests)
        finished: dict[str, LoopState] = {}
        info = built.info()  # what the results say about the model (not the model: it would stay in memory)
        for train in trains:
            path = folder.checkpoint_path(train.name)
            state = LoopState(variant=train.name, fingerprint=fp)
            if path.is_file():
                state = read_state(path)
                if state.fingerprint != fp or state.variant != train.name:
                    raise DownstreamError(f"{path}: a checkpoint of another run or variant ({state.variant}); "
                                          "delete it or pass --overwrite")
            if state.scores is not None and state.epoch == cfg.epochs:
                finished[train.name] = state
                continue
            if acc.is_main_process and state.epoch:
                stderr_console().print(f"[cyan]continue[/]: {train.name} from epoch {state.epoch} ({path})",
                                 highlight=False)
            model = built if built is not None else build_model(cfg)
            built = None  # the next variant builds its own, from the same seed: the same initial weights
            run = VariantRun(cfg, train.name, train, tests, fp, path, self._saver(folder, train.name), progress)
            trainer = VariantTrainer(run, model, acc)
            state = trainer.fit(state)
            acc.wait_for_everyone()
            if acc.is_main_process:
                self._export(folder, train.name, acc.unwrap_model(trainer.model))
                self._saver(folder, train.name)(state, *trainer.final_tensors())
            acc.wait_for_everyone()
            finished[train.name] = state
            del trainer, model, run
            acc.free_memory()  # accelerate holds every prepared model and optimizer until told otherwise
        results = self.results(trains, tests, finished, model_info=info)
        if acc.is_main_process:
            self._write_outputs(folder, results)
            from rich.console import Console

            Console(soft_wrap=True).print(rich_table(results))
            stderr_console().print(f"[green]done[/]: {RESULTS_JSON}, {RESULTS_MD}, {BAR_CHART}, {CONFUSION}/, {MODELS}/ "
                             f"in {self.out}", highlight=False)
        return results

    # ------------------------------------------------------------------------------------------ writing
    def _saver(self, folder: DownstreamFolder, name: str):
        def save(state: LoopState, model: dict, optimizer: dict, scaler: dict | None) -> None:
            path = folder.checkpoint_path(name)
            rel = f"{CHECKPOINTS}/{name}/"
            needed = sum(t.numel() * t.element_size() for t in model.values()) * 3
            with disk_full_as_error(self.out, needed, what=f"the checkpoint of {name}"):
                with folder.writing([rel]):
                    if path.parent.is_dir():
                        remove_stale_temps(path.parent)  # a killed save's temp file; writing() proved them ours
                    save_checkpoint(path, state, model, optimizer, scaler)

        return save

    def _export(self, folder: DownstreamFolder, name: str, model: torch.nn.Module) -> None:
        """models/<name>/: config.json + model.safetensors, loadable with AutoModelForImageClassification."""
        target = folder.model_dir(name)
        rel = f"{MODELS}/{name}/"
        state = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
        with disk_full_as_error(self.out, what=f"the trained model of {name}"):
            with folder.writing([rel]):
                tmp = target / ".tmp-save"
                if tmp.exists():
                    import shutil

                    shutil.rmtree(tmp)  # an earlier, killed export of ours (the folder is recorded as ours)
                model.save_pretrained(tmp, state_dict=state)  # safetensors (the default since transformers 4.35)
                usual_permissions(tmp)  # safetensors writes 0600 files
                for f in sorted(tmp.iterdir()):
                    f.replace(target / f.name)  # one rename per file: each appears complete or not at all
                tmp.rmdir()

    def _write_outputs(self, folder: DownstreamFolder, results: dict) -> None:
        names = [RESULTS_JSON, RESULTS_MD, BAR_CHART, f"{CONFUSION}/"]
        with disk_full_as_error(self.out, what="the results"):
            with folder.writing(names):
                if (self.out / CONFUSION).is_dir():
                    remove_stale_temps(self.out / CONFUSION)  # a killed write's temp file; writing() proved it ours
                write_json_atomic(self.out / RESULTS_JSON, results)
                write_bytes_atomic(self.out / RESULTS_MD, markdown(results).encode("utf-8"))
                with atomic_path(self.out / BAR_CHART) as tmp:
                    bar_chart(results, tmp)
                for name, variant in results["variants"].items():
                    with atomic_path(folder.confusion_path(name)) as tmp:
                        confusion_figure(name, variant["scores"], tmp)

    def _say_unmatched(self, tests: list[LabelledSet]) -> None:
        if not self.acc.is_main_process:
            return
        for note in self.notes:
            stderr_console().print(f"[yellow]note[/]: {note}", highlight=False)
        for t in tests:
            if not t.unmatched:
                continue
            shown = "; ".join(f"{u.file} ({u.reason})" for u in t.unmatched[:_UNMATCHED_SHOWN])
            more = f"; and {len(t.unmatched) - _UNMATCHED_SHOWN} more" if len(t.unmatched) > _UNMATCHED_SHOWN else ""
            stderr_console().print(f"[yellow]{t.name}[/]: {len(t.unmatched)} image(s) not scored: {shown}{more} "
                             f"(all listed in {RESULTS_JSON})", highlight=False)

    # ------------------------------------------------------------------------------------------ results
    def results(self, trains: list[LabelledSet], tests: list[LabelledSet], finished: dict[str, LoopState],
                model_info: ModelInfo) -> dict:
        import accelerate
        import transformers

        cfg, acc = self.cfg, self.acc
        train_tf, _ = transforms(cfg)
        settings = dict(cfg.settings())
        settings.update({
            "model_description": model_info.description, "parameters": model_info.parameters,
            "normalization": {"mean": list(model_info.normalization.mean), "std": list(model_info.normalization.std),
                              "from": model_info.normalization.origin},
            "transform": {"size": list(train_tf.size), "resize": train_tf.resize, "background": list(
                train_tf.background), "resample": train_tf.resample, "flip_in_training": train_tf.flip},
            "processes": acc.num_processes, "global_batch_size": cfg.batch_size * acc.num_processes,
            "schedule": "AdamW, linear warm-up over the first 5% of the steps, cosine decay to zero",
        })
        variants = {}
        for train in trains:
            state = finished[train.name]
            seconds = sum(h["seconds"] for h in state.history)
            samples = sum(h["samples"] for h in state.history)
            variants[train.name] = {
                "source": train.source, "train_images": len(train), "train_per_category": train.per_category(),
                "seed": cfg.seed, "epochs": state.epoch, "steps": state.step, "history": state.history,
                "samples_per_second": samples / seconds if seconds else None, "scores": state.scores,
                "model": f"{MODELS}/{train.name}", "checkpoint": f"{CHECKPOINTS}/{train.name}/checkpoint.safetensors",
            }
        return {
            "format": RESULTS_FORMAT, "settings": settings, "chance_top1": 1 / len(CATEGORIES),
            "test_sets": {t.name: t.describe() for t in tests}, "variants": variants, "notes": list(self.notes),
            "device": str(acc.device),
            "versions": {"torch": torch.__version__, "transformers": transformers.__version__,
                         "accelerate": accelerate.__version__, "python": platform.python_version()},
        }


def run_downstream(cfg: DownstreamConfig, accelerator=None) -> dict:
    """Run (or continue) the comparison described by `cfg`; returns the results document."""
    return DownstreamRun(cfg, accelerator).run()
