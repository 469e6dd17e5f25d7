"""The training loop both DKI methods share, on `accelerate`: precision, accumulation, checkpoints, logging.

Why one loop: negative textual inversion and positive finetuning differ only in what is trainable, how a batch is
conditioned and what is exported. Everything else is here, once:

- `accelerate` for devices, mixed precision (frozen weights stored in the compute dtype, trainable ones in float32,
  autocast) and several processes (`torchrun` / `accelerate launch --multi_gpu -m r2r.cli train-...` run this
  unchanged, GPUs or CPU processes on gloo: r2r/dki/launch.py): one run, each process training on its own share of
  the images (the loaders' EpochSampler split, r2r/dki/data.py), gradients all-reduced by DDP, rank 0 alone writing
  the outputs, the split recorded in training_run.json;
- gradient accumulation (`no_sync` on all but the last micro-step), diffusers' learning-rate schedules
  (`get_scheduler`, prepared by accelerate and saved in each checkpoint), diffusers' noising, velocity and Min-SNR
  formulas (`add_noise`, `get_velocity`, `compute_snr`), accelerate's trackers (`--report-to`);
- VAE latents cached once (r2r/dki/data.py), SDPA attention, optional gradient checkpointing, channels-last and
  torch.compile on CUDA;
- noise, timesteps and data order from per-micro-step generators: a resumed run continues exactly where an
  uninterrupted one would be;
- checkpoints every N steps, rich progress with loss and samples/s, the loss curve PNG, and a fixed-batch loss
  before and after training for the model card.

`DKITrainer` runs the loop and hands the rest to collaborators it holds, each told what to do, none calling back:
- `self.outdir` (`outdir.FolderClaim`): the output folder, locked for the run; a non-empty one needs resume or
  overwrite, resume takes the newest intact checkpoint of the same run; a failed setup leaves it as it was;
- `self.checkpoints` (`checkpoint.CheckpointManager`): atomic checkpoints, and the resume from the folder's
  candidates (a resume needs the same number of processes);
- `self.tracking` (`tracking.Tracking`, with a `tracking.LossLog` per fit): trackers, progress bars, the loss record;
- `self.outputs` (`outputs.RunOutputs`): artifacts, loss curve, run record and card, each recorded as this run's; a
  full disk is one `NoSpaceError` naming the folder.
Subclasses (negative.py, positive.py) implement `build`, `conditioning`, `export` and `artifact_names`.
"""

from __future__ import annotations

import contextlib
import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F

from ..progress import stderr_console
from .checkpoint import CheckpointManager, TrainerState
from .config import RunConfig
from .data import (
    ImageSource,
    LatentBatch,
    LatentCache,
    RankShard,
    StreamBatches,
    open_source,
    sample_latents,
    step_generator,
)
from .errors import DKIError
from .outdir import Decision, FolderClaim, TrainingFolder
from .outputs import CARD_FILE, LOSS_CURVE, RECORDS, RUN_FILE, RunOutputs
from .tracking import LossLog, Tracking

__all__ = ["CARD_FILE", "LOSS_CURVE", "RUN_FILE", "Components", "DKITrainer", "Denoiser", "TrainResult",
           "cast_module", "load_components", "weight_dtype_of"]

EVAL_BATCH = 4
_EVAL_STREAM = 1 << 20  # generator stream of the fixed evaluation batch


@dataclass
class Components:
    """The SD-1.5-architecture parts a DKI run uses (what `load_components` reads from a pipeline folder / Hub id)."""

    tokenizer: object
    text_encoder: torch.nn.Module
    vae: torch.nn.Module
    unet: torch.nn.Module
    noise_scheduler: object


def load_components(model: str, revision: str | None = None) -> Components:
    """Load tokenizer, text encoder, VAE, UNet (safetensors only, float32) and a DDPM training scheduler."""
    from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTokenizer

    from ..models import ModelFileError, loading, resolve_model

    try:  # the files are checked first: missing folder, offline and uncached, .bin only, renamed or truncated
        local = resolve_model(model, revision)
    except (ModelFileError, FileNotFoundError) as e:
        raise DKIError(str(e)) from None
    source = str(local) if local else model
    kw = {"revision": revision}
    try:
        with loading(f"{model!r} as an SD-1.5-architecture diffusers pipeline (safetensors weights)"):
            tokenizer = CLIPTokenizer.from_pretrained(source, subfolder="tokenizer", **kw)
            text_encoder = CLIPTextModel.from_pretrained(source, subfolder="text_encoder", use_safetensors=True, **kw)
            vae = AutoencoderKL.from_pretrained(source, subfolder="vae", use_safetensors=True, **kw)
            unet = UNet2DConditionModel.from_pretrained(source, subfolder="unet", use_safetensors=True, **kw)
            scheduler = DDPMScheduler.from_pretrained(source, subfolder="scheduler", **kw)
    except ModelFileError as e:
        raise DKIError(str(e)) from None
    return Components(tokenizer, text_encoder.float().eval(), vae.float().eval(), unet.float().eval(), scheduler)


class Denoiser(torch.nn.Module):
    """The module accelerate wraps: UNet (+ text encoder when prompts are encoded with gradients) -> loss.

    One forward = one micro-batch's weighted MSE, so DDP syncs exactly the trainable parameters and autocast
    covers the whole step.
    """

    def __init__(self, unet: torch.nn.Module, text_encoder: torch.nn.Module | None = None):
        super().__init__()
        self.unet = unet
        self.text_encoder = text_encoder

    def forward(self, noisy: torch.Tensor, timesteps: torch.Tensor, target: torch.Tensor, *,
                encoder_hidden_states: torch.Tensor | None = None, input_ids: torch.Tensor | None = None,
                weights: torch.Tensor | None = None) -> torch.Tensor:
        if input_ids is not None:
            encoder_hidden_states = self.text_encoder(input_ids)[0]
        pred = self.unet(noisy, timesteps, encoder_hidden_states).sample
        loss = F.mse_loss(pred.float(), target.float(), reduction="none").mean(dim=(1, 2, 3))
        if weights is not None:
            loss = loss * weights
        return loss.mean()


@dataclass
class TrainResult:
    out: Path
    steps: int
    final_loss: float
    losses: list[float]
    samples_per_second: float
    eval_loss_before: float | None
    eval_loss_after: float | None
    artifacts: list[Path] = field(default_factory=list)


def cast_module(module: torch.nn.Module, dtype: torch.dtype) -> torch.nn.Module:
    """`module.to(dtype)`, only when needed and without diffusers' warning about `_keep_in_fp32_modules` (SD-1.5's
    UNet and VAE have none; the diffusers training examples cast the same way)."""
    if any(p.dtype != dtype for p in module.parameters()):
        from diffusers.utils import logging as dlogging

        level = dlogging.get_verbosity()
        dlogging.set_verbosity_error()
        try:
            module.to(dtype)
        finally:
            dlogging.set_verbosity(level)
    return module


def weight_dtype_of(mixed_precision: str) -> torch.dtype:
    return {"no": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[mixed_precision]


class DKITrainer:
    """Shared machinery; see the module docstring. Use a subclass: `NegativeTrainer(run).fit()`."""

    method: str = "base"
    tensor_files: tuple[str, ...] = ()  # extra safetensors files saved with each checkpoint (e.g. "ema")

    def __init__(self, run: RunConfig, *, components: Components | None = None, accelerator=None):
        self.run, self.cfg = run, run.train
        self._own_accelerator = accelerator is None
        self.out = Path(run.out)
        self._components = components
        self._accelerator = accelerator
        self.state = TrainerState()
        self.ready = False
        self.outdir = FolderClaim(self.out)  # the output folder, locked from setup() to the end of fit() / close()
        self.outputs = RunOutputs(self.outdir)  # artifacts, loss curve, run record and card (main process)

    # ------------------------------------------------------------------------------------------ subclass API
    def build(self, c: Components) -> tuple[Denoiser, list[torch.nn.Parameter]]:
        """Make the trainable parts; return the module accelerate wraps and its trainable parameters."""
        raise NotImplementedError

    def after_data(self, batches) -> None:
        """Called once the data is ready (e.g. to encode the fixed captions)."""

    def conditioning(self, batch: LatentBatch, generator: torch.Generator) -> dict:
        """Keyword arguments of `Denoiser.forward` that condition this batch (input_ids or encoder_hidden_states)."""
        raise NotImplementedError

    def after_optimizer_step(self) -> None:
        """E.g. the EMA update."""

    def extra_state(self) -> tuple[dict, dict[str, dict[str, torch.Tensor]]]:
        """(JSON scalars, {file: tensors}) saved with each checkpoint."""
        return {}, {}

    def load_extra_state(self, scalars: dict, tensors: dict[str, dict[str, torch.Tensor]]) -> None:
        pass

    def export(self) -> list[Path]:
        """Write the artifacts (main process) and return their paths."""
        raise NotImplementedError

    def artifact_names(self) -> list[str]:
        """What `export` writes, relative to the output folder ('/' at the end: a folder)."""
        raise NotImplementedError

    def export_bytes(self) -> int:
        """About how many bytes `export` writes (checked against the free space first): the trained weights."""
        return sum(p.numel() * 4 for p in self.params)

    def checkpoint_bytes(self) -> int:
        """About how many bytes one checkpoint takes: trainable weights and two AdamW moments (float32), extras."""
        _, tensors = self.extra_state()
        extra = sum(t.numel() * t.element_size() for sd in tensors.values() for t in sd.values())
        return 3 * sum(p.numel() * 4 for p in self.params) + extra + 2**20

    def method_fingerprint(self) -> dict:
        return asdict(self.run.method)

    def card(self, result: TrainResult) -> Path | None:
        return None

    def base_model_id(self) -> str:
        """The card's `base_model`: --base-model-id, else the Hub id, else the local folder's name."""
        if self.run.base_model_id:
            return self.run.base_model_id
        path = Path(self.run.model)
        return path.resolve().name if path.exists() else self.run.model

    def card_fields(self, result: TrainResult) -> dict:
        """The fields of `cards.model_card.DKICardInfo` every method shares."""
        cfg = self.cfg
        return {
            "base_model": self.base_model_id(), "base_model_is_local": Path(self.run.model).exists(),
            "data": self.source.card_info(), "steps": result.steps,
            "batch_size": cfg.batch_size * cfg.grad_accum * self.world, "learning_rate": cfg.lr,
            "resolution": self.run.data.resolution, "mixed_precision": cfg.mixed_precision, "seed": cfg.seed,
            "final_loss": result.final_loss, "eval_loss_before": result.eval_loss_before,
            "eval_loss_after": result.eval_loss_after, "loss_curve": LOSS_CURVE,
        }

    # ------------------------------------------------------------------------------------------ setup
    @property
    def accelerator(self):
        return self._accelerator

    @property
    def cached(self) -> bool:
        """Whether VAE latents are cached (deterministic augmentation and caching not disabled)."""
        return self.run.data.cache_latents and self.run.data.deterministic

    def fingerprint(self) -> dict:
        data = asdict(self.run.data)
        for k in ("num_workers", "skip_bad_images"):
            data.pop(k)
        fp = {
            "method": self.method, "model": self.run.model, "revision": self.run.revision,
            "method_config": self.method_fingerprint(), "data": data, "batch_size": self.cfg.batch_size,
            "grad_accum": self.cfg.grad_accum, "seed": self.cfg.seed,
            "processes": self.accelerator.num_processes, "mixed_precision": self.cfg.mixed_precision,
        }
        return json.loads(json.dumps(fp))  # as it reads back from trainer_state.json (tuples become lists)

    def setup(self) -> "DKITrainer":
        """Load, cache and prepare everything; resume if asked. Idempotent."""
        if self.ready:
            return self
        from loaders import DistInfo

        from .launch import lone_cpu_launch, make_accelerator

        cfg = self.cfg
        if self._accelerator is None:
            self._accelerator = make_accelerator(mixed_precision=cfg.mixed_precision, report_to=cfg.report_to,
                                                 out=self.out)
        acc = self.accelerator
        self.device = acc.device
        self.rank, self.world = acc.process_index, acc.num_processes
        self.dist = DistInfo(self.rank, self.world)  # the loaders' view of this process: how the data is split
        if lone_cpu_launch() and acc.is_main_process:
            from .launch import _CPU_LAUNCH_NOTE

            stderr_console().print(f"[yellow]note[/]: {_CPU_LAUNCH_NOTE}", highlight=False)
        self.weight_dtype = weight_dtype_of(acc.mixed_precision)
        cuda = self.device.type == "cuda"
        if cuda and cfg.allow_tf32:
            torch.backends.cuda.matmul.allow_tf32 = True
            torch.backends.cudnn.allow_tf32 = True

        try:
            from synfashion.fs.space import disk_full_as_error

            with disk_full_as_error(self.out, what="the run record"):
                decision = self.outdir.claim(
                    self.method, [*self.artifact_names(), *RECORDS, *Tracking.planned(cfg.report_to)], acc,
                    resume=self.run.resume, overwrite=self.run.overwrite, fingerprint=self.fingerprint(),
                    inputs={"training data": self.run.data.source, "model": self.run.model})
            self._setup_after_claim(decision)
        except BaseException:
            self.outdir.abandon()  # a run that failed before training leaves the folder as it found it
            raise
        self.ready = True
        return self

    @property
    def folder(self) -> TrainingFolder | None:
        """The output folder's rules and run record (r2r/dki/outdir.py), once setup() has claimed it."""
        return self.outdir.folder

    def close(self) -> None:
        """Release the output folder (fit() does this when it ends)."""
        self.outdir.release()

    def _setup_after_claim(self, decision: Decision) -> None:
        cfg, acc = self.cfg, self.accelerator
        cuda = self.device.type == "cuda"
        self.tracking = Tracking(acc, report_to=cfg.report_to, project=f"r2r-dki-{self.method}",
                                 config=self.run.to_dict(), progress=cfg.progress)

        # the data first: a bad source fails before gigabytes of weights are loaded
        self.source: ImageSource = open_source(self.run.data, seed=cfg.seed, for_cache=self.cached)
        self.shard = RankShard(len(self.source), seed=cfg.seed, dist=self.dist)

        c = self._components or load_components(self.run.model, self.run.revision)
        self.components = c
        torch.manual_seed(cfg.seed)  # adapter initialisation (DDP then broadcasts rank 0's weights)
        self.model, self.params = self.build(c)
        if not self.params:
            raise DKIError("nothing to train")

        sched = c.noise_scheduler
        self.prediction_type = sched.config.prediction_type
        if self.prediction_type not in ("epsilon", "v_prediction"):
            raise DKIError(f"unsupported prediction_type {self.prediction_type!r} (epsilon or v_prediction)")
        self.num_timesteps = int(sched.config.num_train_timesteps)
        self.noise_scheduler = sched

        self._setup_data(c)
        self.after_data(self.batches)

        unet = self.model.unet
        unet.set_attn_processor(_sdpa())
        if cfg.gradient_checkpointing:
            unet.enable_gradient_checkpointing()
        if cuda and cfg.channels_last:
            unet.to(memory_format=torch.channels_last)
        if cfg.compile:
            self.model.unet = torch.compile(unet)

        fused = cuda and all(p.dtype == torch.float32 for p in self.params)
        opt = torch.optim.AdamW(self.params, lr=cfg.lr, betas=cfg.adam_betas, eps=cfg.adam_eps,
                                weight_decay=cfg.weight_decay, **({"fused": True} if fused else {}))
        self.lr_scheduler = self._lr_schedule(opt)
        self.model, self.optimizer, self.lr_scheduler = acc.prepare(self.model, opt, self.lr_scheduler)
        self.checkpoints = CheckpointManager(self.out, acc, keep=cfg.keep_checkpoints)
        self.checkpoints.install_state_hooks()

        self.state = TrainerState(fingerprint=self.fingerprint(), run_id=decision.run_id)
        self.resumed_from = None
        resumed = self.checkpoints.resume(decision.candidates, decision.run_id, self.tensor_files)
        if resumed is not None:
            self.resumed_from, self.state, extras = resumed
            self.load_extra_state(self.state.extra, extras)
            self._follow_schedule()

    def _setup_data(self, c: Components) -> None:
        dcfg, cfg, acc = self.run.data, self.cfg, self.accelerator
        vae = c.vae.to(self.device)
        if self.cached:
            # float32 VAE for the one-off encode: better latents than the example scripts' bf16 per-step encode,
            # at no per-step cost. Stored in the compute dtype (bf16 latents are what the examples train on).
            cast_module(vae, torch.float32)
            with self.tracking.progress("caching latents", len(self.shard)) as advance:
                self.batches = LatentCache(self.source, self.shard, dcfg, vae, device=self.device,
                                           encode_batch=cfg.batch_size, store_dtype=self.weight_dtype,
                                           progress=advance)
            if self.batches.skipped and acc.is_main_process:
                shown = "; ".join(self.batches.skipped[:10])
                more = f"; and {len(self.batches.skipped) - 10} more" if len(self.batches.skipped) > 10 else ""
                stderr_console().print(f"[yellow]skipped {len(self.batches.skipped)} undecodable image(s)[/] "
                                       f"(all listed in training_run.json): {shown}{more}", highlight=False)
            c.vae.to("cpu")  # not needed on the device any more
            if self.device.type == "cuda":
                torch.cuda.empty_cache()
        else:
            cast_module(vae, self.weight_dtype)
            self.batches = StreamBatches(self.source, self.shard, dcfg, vae, batch_size=cfg.batch_size,
                                         device=self.device, weight_dtype=self.weight_dtype)

    # ------------------------------------------------------------------------------------------ steps
    def _lr_schedule(self, optimizer):
        """diffusers' schedule by name. Lengths are scaled by the number of processes, as diffusers' example scripts
        do, because accelerate's prepared scheduler steps once per process at every optimizer step."""
        from diffusers.optimization import get_scheduler

        cfg, world = self.cfg, self.accelerator.num_processes
        return get_scheduler(cfg.lr_scheduler, optimizer, num_warmup_steps=cfg.warmup_steps * world,
                             num_training_steps=cfg.steps * world, num_cycles=cfg.lr_num_cycles, power=cfg.lr_power)

    def _follow_schedule(self) -> None:
        """After a resume, set the learning rate the schedule gives at the resumed step. A checkpoint restores the
        rate its own run last set; a run resumed with more --steps has a longer schedule (cosine, linear, ...), and
        without this its first step would still use the old schedule's final rate. With the same settings this
        sets the very value that was restored."""
        sched = self.lr_scheduler.scheduler
        if not hasattr(sched, "lr_lambdas"):  # every diffusers schedule is a LambdaLR
            return
        for group, base, fn in zip(self.optimizer.param_groups, sched.base_lrs, sched.lr_lambdas):
            group["lr"] = base * fn(sched.last_epoch)
        sched._last_lr = [group["lr"] for group in self.optimizer.param_groups]

    def _noised(self, latents: torch.Tensor, gen: torch.Generator):
        """Noisy latents, timesteps, the prediction target and Min-SNR weights, with diffusers' own formulas
        (`add_noise`, `get_velocity`, `training_utils.compute_snr`), drawing noise and timesteps from `gen`."""
        sched = self.noise_scheduler
        b = latents.shape[0]
        t = torch.randint(0, self.num_timesteps, (b,), generator=gen, device=self.device)
        noise = torch.randn(latents.shape, generator=gen, device=self.device, dtype=torch.float32)
        noisy = sched.add_noise(latents, noise, t)
        target = noise if self.prediction_type == "epsilon" else sched.get_velocity(latents, noise, t)
        weights = None
        if self.cfg.snr_gamma is not None:
            from diffusers.training_utils import compute_snr

            snr = compute_snr(sched, t)
            clamped = torch.clamp(snr, max=self.cfg.snr_gamma)  # Min-SNR-gamma, as diffusers' example scripts
            weights = clamped / (snr + 1) if self.prediction_type == "v_prediction" else clamped / snr
        return noisy, t, target, weights

    def micro_step(self, micro: int) -> torch.Tensor:
        """Forward + backward of one micro-batch; returns the detached loss."""
        gen = step_generator(self.cfg.seed, self.rank, micro, self.device)
        batch = self.batches.batch(micro, self.cfg.batch_size, gen, self.device)
        cond = self.conditioning(batch, gen)
        noisy, t, target, weights = self._noised(batch.latents, gen)
        loss = self.model(noisy, t, target, weights=weights, **cond)
        self.accelerator.backward(loss / self.cfg.grad_accum)
        return loss.detach()

    def optimizer_step(self, step: int) -> torch.Tensor:
        """One optimizer step (grad_accum micro-steps); returns this process's mean loss (a device tensor)."""
        acc, cfg = self.accelerator, self.cfg
        total = torch.zeros((), device=self.device)
        for k in range(cfg.grad_accum):
            micro = step * cfg.grad_accum + k
            sync = k == cfg.grad_accum - 1
            with contextlib.nullcontext() if sync else acc.no_sync(self.model):
                total += self.micro_step(micro) / cfg.grad_accum
        if cfg.max_grad_norm:
            acc.clip_grad_norm_(self.params, cfg.max_grad_norm)
        self.optimizer.step()
        self.lr_scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.after_optimizer_step()
        return total

    @torch.no_grad()
    def eval_loss(self, count: int = EVAL_BATCH) -> float:
        """Loss on a fixed batch (the first `count` images of the shard, fixed noise, timesteps and prompts)."""
        self.setup()
        gen = step_generator(self.cfg.seed, 0, 0, self.device, stream=_EVAL_STREAM)
        if isinstance(self.batches, LatentCache):
            mean, std = self.batches.first(count, self.device)
            captions = [self.batches.captions[int(i)] for i in self.batches.valid[:count]]
            latents = sample_latents(mean, std, self.batches.scaling, gen)
        else:
            latents, captions = self._eval_stream_latents(count, gen)
        batch = LatentBatch(latents, captions)
        cond = self.conditioning(batch, gen)
        noisy, t, target, weights = self._noised(latents, gen)
        model = self.accelerator.unwrap_model(self.model)
        return float(model(noisy, t, target, weights=weights, **cond))

    def _eval_stream_latents(self, count: int, gen: torch.Generator):
        from loaders import to_float

        from .data import caption_of

        items = [self.source.dataset[(int(i), 0)] for i in self.shard.indices[:count]]
        items = [s for s in items if "image" in s]
        pixels = torch.stack([s["image"] for s in items]).to(self.device)
        dist = self.batches.vae.encode(to_float(pixels).to(self.weight_dtype)).latent_dist
        latents = sample_latents(dist.mean, dist.std, self.batches.scaling, gen)
        caps = [caption_of(s.get("caption"), self.run.data.caption_template, s.get("category")) for s in items]
        return latents, caps

    # ------------------------------------------------------------------------------------------ loop
    def save_checkpoint(self) -> Path:
        scalars, tensors = self.extra_state()
        self.state.extra.update(scalars)
        return self.checkpoints.save(self.state, tensors, needed=self.checkpoint_bytes())

    def fit(self) -> TrainResult:
        """Train to `steps` (continuing a resumed run), checkpointing; export artifacts, curve and card."""
        self.setup()
        try:
            return self._fit()
        finally:
            self.close()
            if self._own_accelerator and self.world > 1:  # the run's process group ends with the run
                self.accelerator.state.destroy_process_group()

    def _fit(self) -> TrainResult:
        acc, cfg = self.accelerator, self.cfg
        start = self.state.step
        if "eval_before" not in self.state.extra:
            self.state.extra["eval_before"] = self.eval_loss()
        global_batch = cfg.batch_size * cfg.grad_accum * self.world
        last_saved = start if self.resumed_from is not None else -1
        tracking = self.tracking
        with tracking.session(self.outdir), tracking.progress("training", cfg.steps, completed=start, loss=True) \
                as advance:
            log = LossLog(acc, self.state, tracking)
            for step in range(start, cfg.steps):
                lr = float(self.optimizer.param_groups[0]["lr"])  # the rate this step uses
                log.add(self.optimizer_step(step), lr)
                self.state.step = step + 1
                self.state.samples += global_batch
                due = cfg.checkpoint_every and self.state.step % cfg.checkpoint_every == 0
                if len(log) >= cfg.log_every or due or self.state.step == cfg.steps:
                    for bad in (x for x in log.flush() if not math.isfinite(x)):  # one sync per flush
                        raise DKIError(f"loss became {bad} at step {self.state.step}; lower --lr or use bf16/no "
                                       "mixed precision")
                log.show(advance)
                if due:
                    self.save_checkpoint()
                    last_saved = self.state.step
                    log.restart_clock()
            if last_saved != self.state.step:
                self.save_checkpoint()
            self.state.extra["eval_after"] = self.eval_loss()
            tracking.log_eval(self.state.extra["eval_before"], self.state.extra["eval_after"], self.state.step)
        result = TrainResult(
            out=self.out, steps=self.state.step,
            final_loss=_tail_mean(self.state.losses), losses=list(self.state.losses),
            samples_per_second=self.state.samples / self.state.seconds if self.state.seconds else 0.0,
            eval_loss_before=self.state.extra.get("eval_before"), eval_loss_after=self.state.extra.get("eval_after"),
        )
        split = self._data_split()  # a collective: every rank takes part
        acc.wait_for_everyone()
        if acc.is_main_process:
            self._write_outputs(result, split)
        acc.wait_for_everyone()
        return result

    def _trained_digest(self) -> str:
        """sha256 of this process's trainable tensors (their bytes, in parameter order)."""
        import hashlib

        h = hashlib.sha256()
        for p in self.params:
            h.update(p.detach().float().cpu().contiguous().numpy().tobytes())
        return h.hexdigest()

    def _data_split(self) -> dict:
        """How the images were shared between the processes, gathered from every rank: share sizes, samples drawn,
        the distinct keys each rank drew (they must not overlap), and a digest of each rank's trained weights (equal
        on every rank only if the gradients were reduced: each rank saw other images), for the run record."""
        from accelerate.utils import gather_object

        mine = {"rank": self.rank, "share_images": len(self.shard), "samples_drawn": self.batches.drawn.draws,
                "keys_drawn": sorted(self.batches.drawn.keys), "trained_sha256": self._trained_digest()}
        ranks = gather_object([mine]) if self.world > 1 else [mine]
        ranks = sorted(ranks, key=lambda r: r["rank"])
        seen: set[str] = set()
        overlap = 0
        for r in ranks:
            overlap += len(seen.intersection(r["keys_drawn"]))
            seen.update(r["keys_drawn"])
        return {"processes": self.world, "split": "loaders.EpochSampler (a fixed share per rank)",
                "per_process_batch": self.cfg.batch_size, "grad_accum": self.cfg.grad_accum,
                "global_batch": self.cfg.batch_size * self.cfg.grad_accum * self.world,
                "keys_drawn_by_several_ranks": overlap, "ranks": ranks,
                "note": "samples_drawn and keys_drawn count this process's draws since it started (a resumed run: "
                        "since the resume)"}

    def _write_outputs(self, result: TrainResult, split: dict | None = None) -> None:
        """Artifacts, loss curve, run record and card (main process), each recorded as this run's (outputs.py)."""
        out = self.outputs
        result.artifacts = out.artifacts(self.artifact_names(), self.export_bytes(), self.export)
        with out.records():
            result.artifacts.append(out.loss_curve(self.state.losses, title=f"{self.method} training loss"))
            record = self._run_record(result)
            if split is not None:
                record["distributed"] = split
            result.artifacts.append(out.run_record(record))
            card = self.card(result)
            if card is not None:
                result.artifacts.append(card)

    def write_card(self, info) -> Path:
        """The model card (cards.model_card) written atomically as OUT/README.md."""
        return self.outputs.card(info)

    def _run_record(self, result: TrainResult) -> dict:
        import diffusers
        import transformers

        return {
            "method": self.method, "config": self.run.to_dict(), "data": self.source.card_info(),
            "steps": result.steps, "final_loss": result.final_loss, "samples_per_second": result.samples_per_second,
            "eval_loss_before": result.eval_loss_before, "eval_loss_after": result.eval_loss_after,
            "processes": self.world, "device": str(self.device),
            "versions": {"torch": torch.__version__, "diffusers": diffusers.__version__,
                         "transformers": transformers.__version__},
            "resumed_from": str(self.resumed_from) if self.resumed_from else None, "run_id": self.state.run_id,
            "skipped_images": list(getattr(self.batches, "skipped", [])),  # --skip-bad-images (this process's)
        }


def _tail_mean(losses: list[float], n: int = 10) -> float:
    tail = [x for x in losses[-n:] if math.isfinite(x)]
    return sum(tail) / len(tail) if tail else float("nan")


def _sdpa():
    from diffusers.models.attention_processor import AttnProcessor2_0

    return AttnProcessor2_0()
