"""Training and scoring one variant on `accelerate`: the same loop for every variant, one process or many.

- Data through `loaders`: each process reads its own share of the training split (`LoaderConfig(rank, world_size,
  even=True)`: every rank takes the same number of steps), order and augmentation a function of (seed, epoch, key)
  only; uint8 batches are normalised on the device.
- `accelerate` for the device, mixed precision and DDP (`accelerate launch -m r2r.cli downstream ...` runs this
  unchanged; gradients are all-reduced, each rank scores its own share of a test set and the predictions are
  gathered, so every image is scored exactly once).
- AdamW (no weight decay on biases and normalisation weights), linear warm-up over the first 5% of the steps then
  cosine decay to zero: a pure function of the step, so a continued run needs no scheduler state.
- At the end of every epoch a checkpoint (r2r/downstream/checkpoint.py, atomic) and torch's generator re-seeded from
  (seed, epoch), so a run continued from any epoch ends exactly where an uninterrupted one does.
This module trains and scores; which variants run, and what is written besides checkpoints, is runner.py's.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from loaders import LoaderConfig
from loaders.loader import SynDataLoader, map_style_loader

from .checkpoint import LoopState, load_checkpoint
from .config import DownstreamConfig, DownstreamError
from .data import LabelledSet
from .metrics import scores
from .models import BuiltModel

WARMUP_FRACTION = 0.05
LOSS_READ_EVERY = 20  # steps between reading the loss back for the progress bar (each read syncs the device)


def lr_at(step: int, total: int, peak: float) -> float:
    """Linear warm-up over the first 5% of the steps, then cosine decay to zero."""
    warm = max(1, round(WARMUP_FRACTION * total))
    if step < warm:
        return peak * (step + 1) / warm
    progress = min(1.0, (step - warm) / max(1, total - warm))
    return peak * 0.5 * (1.0 + math.cos(math.pi * progress))


def epoch_seed(seed: int, epoch: int) -> int:
    return (seed * 1_000_003 + epoch) % (2**63)


def param_groups(model: torch.nn.Module, weight_decay: float) -> list[dict]:
    """Weight decay on weight matrices and kernels only (biases and normalisation scales are 1-d), as timm does."""
    decay, no_decay = [], []
    for p in model.parameters():
        if p.requires_grad:
            (no_decay if p.ndim <= 1 else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def make_accelerator(cfg: DownstreamConfig):
    from accelerate import Accelerator

    if cfg.device == "cuda" and not torch.cuda.is_available():
        raise DownstreamError("--device cuda: no CUDA device is available here (use --device cpu or auto)")
    try:
        return Accelerator(cpu=cfg.device == "cpu", mixed_precision=cfg.mixed_precision)
    except ValueError as e:  # e.g. fp16 without a GPU
        raise DownstreamError(f"--mixed-precision {cfg.mixed_precision}: {e}") from None


def loader_for(data: LabelledSet, cfg: DownstreamConfig, acc, *, train: bool) -> SynDataLoader:
    """This process's loader over `data`: training (shuffled or category-balanced, same step count on every rank,
    the last partial batch dropped, as is usual with BatchNorm) or scoring (every image once across ranks)."""
    world, rank = acc.num_processes, acc.process_index
    if train:
        per_rank = len(data) // world
        drop_last = per_rank >= cfg.batch_size  # a split smaller than one batch still trains (one short batch)
        config = LoaderConfig(batch_size=cfg.batch_size, num_workers=cfg.num_workers, shuffle=True, seed=cfg.seed,
                              balanced=cfg.balanced, even=True, drop_last=drop_last, rank=rank, world_size=world,
                              persistent_workers=cfg.num_workers > 0)
    else:
        config = LoaderConfig(batch_size=cfg.batch_size, num_workers=cfg.num_workers, shuffle=False, seed=cfg.seed,
                              rank=rank, world_size=world)
    return map_style_loader(data.dataset, config, labels=data.labels)


@dataclass
class VariantRun:
    """What the runner hands the trainer for one variant."""

    cfg: DownstreamConfig
    name: str
    train: LabelledSet
    tests: list[LabelledSet]
    fingerprint: str
    checkpoint: object  # Path of the variant's checkpoint file
    save: Callable[[LoopState, dict, dict, dict | None], None]  # writes a checkpoint (main process, recorded)
    progress: Callable  # (description, total, completed) -> context manager yielding advance(n, loss, sps)


class VariantTrainer:
    def __init__(self, run: VariantRun, built: BuiltModel, acc):
        self.run, self.cfg, self.built, self.acc = run, run.cfg, built, acc
        self.device = acc.device

    def fit(self, state: LoopState) -> LoopState:
        """Train to `cfg.epochs` from `state` (continuing its checkpoint when it has one), then score every test
        set; returns the finished state (its `scores` filled)."""
        cfg, acc = self.cfg, self.acc
        model = self.built.model
        if cfg.channels_last:
            model = model.to(memory_format=torch.channels_last)
        fused = self.device.type == "cuda"
        optimizer = torch.optim.AdamW(param_groups(model, cfg.weight_decay), lr=cfg.learning_rate,
                                      **({"fused": True} if fused else {}))
        model, optimizer = acc.prepare(model, optimizer)
        if state.epoch:  # after prepare: the weights and the optimizer's moments land on this process's device
            self._restore(acc.unwrap_model(model), optimizer)
        loader = loader_for(self.run.train, cfg, acc, train=True)
        steps_per_epoch = len(loader)
        if steps_per_epoch == 0:
            raise DownstreamError(f"--train {self.run.name}: no training batch for this process (fewer images than "
                                  "processes)")
        total = steps_per_epoch * cfg.epochs
        with self.run.progress(f"{self.run.name}: training", total, state.epoch * steps_per_epoch) as advance:
            for epoch in range(state.epoch, cfg.epochs):
                log = self._epoch(model, optimizer, loader, epoch, state, total, advance)
                state.history.append(log)
                state.epoch = epoch + 1
                self._save(state, model, optimizer)
        state.scores = self.score(model)
        self.model, self.optimizer = model, optimizer
        return state

    def final_tensors(self) -> tuple[dict, dict, dict | None]:
        """(model state, optimizer state, scaler state) of the finished model, for its last checkpoint."""
        acc = self.acc
        scaler = acc.scaler.state_dict() if getattr(acc, "scaler", None) is not None else None
        return acc.unwrap_model(self.model).state_dict(), self.optimizer.state_dict(), scaler

    def _epoch(self, model, optimizer, loader, epoch: int, state: LoopState, total: int, advance) -> dict:
        cfg, acc = self.cfg, self.acc
        torch.manual_seed(epoch_seed(cfg.seed, epoch))
        loader.set_epoch(epoch)
        model.train()
        loss_sum = torch.zeros((), device=self.device, dtype=torch.float64)
        correct = torch.zeros((), device=self.device, dtype=torch.int64)
        seen = torch.zeros((), device=self.device, dtype=torch.int64)
        t0 = time.perf_counter()
        shown_loss, counted = None, 0  # `counted`: a host-side count for the progress bar (no device sync per step)
        for i, batch in enumerate(loader):
            lr = lr_at(state.step, total, cfg.learning_rate)
            for group in optimizer.param_groups:
                group["lr"] = lr
            labels = batch["label"].to(self.device, non_blocking=True)
            pixels = self._pixels(batch["image"])
            with acc.autocast():
                logits = self.built.logits(model, pixels)
            loss = F.cross_entropy(logits.float(), labels)
            acc.backward(loss)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            state.step += 1
            n = labels.shape[0]
            loss_sum += loss.detach().double() * n
            correct += (logits.detach().argmax(-1) == labels).sum()
            seen += n
            counted += n
            if i % LOSS_READ_EVERY == 0:
                shown_loss = float(loss_sum / seen)
            advance(1, loss=shown_loss, sps=counted * acc.num_processes / (time.perf_counter() - t0))
        totals = acc.reduce(torch.stack([loss_sum, correct.double(), seen.double()]), reduction="sum").tolist()
        seconds = time.perf_counter() - t0
        loss_mean = totals[0] / max(1.0, totals[2])
        if not math.isfinite(loss_mean):
            raise DownstreamError(f"{self.run.name}: the training loss became {loss_mean} in epoch {epoch + 1}; "
                                  "lower --lr, or use --mixed-precision bf16/no")
        return {"epoch": epoch + 1, "loss": loss_mean, "train_accuracy": totals[1] / max(1.0, totals[2]),
                "samples": int(totals[2]), "seconds": seconds, "samples_per_second": totals[2] / seconds,
                "lr_end": lr_at(state.step - 1, total, cfg.learning_rate)}

    def _pixels(self, images: torch.Tensor) -> torch.Tensor:
        x = self.built.normalization.apply(images.to(self.device, non_blocking=True))
        return x.contiguous(memory_format=torch.channels_last) if self.cfg.channels_last else x

    # ------------------------------------------------------------------------------------------ scoring
    @torch.no_grad()
    def score(self, model) -> dict:
        """Scores on every test set: each process predicts its share, predictions are gathered, all are scored."""
        from accelerate.utils import gather_object

        model.eval()
        out = {}
        for test in self.run.tests:
            loader = loader_for(test, self.cfg, self.acc, train=False)
            labels, preds = [], []
            with self.run.progress(f"{self.run.name}: scoring on {test.name}", len(loader), 0, loss=False) as advance:
                for batch in loader:
                    with self.acc.autocast():
                        logits = self.built.logits(model, self._pixels(batch["image"]))
                    preds.extend(logits.argmax(-1).tolist())
                    labels.extend(batch["label"].tolist())
                    advance(1)
            pairs = gather_object([(labels, preds, len(loader.skipped))])  # skipped: --skip-bad-images
            all_labels = [y for ys, _, _ in pairs for y in ys]
            all_preds = [p for _, ps, _ in pairs for p in ps]
            if len(all_labels) + sum(n for _, _, n in pairs) != len(test):
                raise DownstreamError(f"{test.name}: {len(all_labels)} of {len(test)} images were scored")
            out[test.name] = scores(all_labels, all_preds).to_dict()
        model.train()
        return out

    # ------------------------------------------------------------------------------------------ checkpoints
    def _save(self, state: LoopState, model, optimizer) -> None:
        acc = self.acc
        acc.wait_for_everyone()
        if acc.is_main_process:
            self.model, self.optimizer = model, optimizer
            self.run.save(state, *self.final_tensors())
        acc.wait_for_everyone()

    def _restore(self, model: torch.nn.Module, optimizer) -> None:
        ckpt = load_checkpoint(self.run.checkpoint)
        missing, unexpected = model.load_state_dict(ckpt.model, strict=False)
        if missing or unexpected:
            raise DownstreamError(f"{self.run.checkpoint}: does not match the model (missing {missing[:3]}, "
                                  f"unexpected {unexpected[:3]}); delete it or pass --overwrite")
        optimizer.load_state_dict(ckpt.optimizer)
        if ckpt.scaler and getattr(self.acc, "scaler", None) is not None:
            self.acc.scaler.load_state_dict(ckpt.scaler)
