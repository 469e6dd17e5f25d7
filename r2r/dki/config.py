"""Typed settings of the two DKI trainings: data, the shared training loop, and each method's own knobs.

Why plain frozen dataclasses in a torch-free module: the CLI builds them from arguments, the trainer and the model
card read them, and the checkpoint records them (`asdict`) so a resumed run can refuse a changed configuration.
Each default is written here once, with the option that sets it (`synfashion.cliutil.option`); a method's own
training defaults (steps, learning rate) are its config's class constants, which `r2r train-*` show and use.
No behaviour beyond validation.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import ClassVar, Literal, get_args

from synfashion.cliutil import NO_PROGRESS_HELP, option

from .errors import DKIError

MixedPrecision = Literal["no", "fp16", "bf16"]
SourceKind = Literal["auto", "folder", "synfashion", "datasets"]
ReportTo = Literal["none", "tensorboard", "wandb"]
# diffusers.optimization.SchedulerType names (piecewise_constant is left out: its step rules are not exposed)
LR_SCHEDULERS: tuple[str, ...] = ("constant_with_warmup", "constant", "linear", "cosine", "cosine_with_restarts",
                                  "polynomial")

# Prompt templates of the negative (rendered-domain) textual inversion: the token names a *look*, not an object,
# as in textual inversion's style templates. "{}" is replaced by the token (expanded to its K vectors).
STYLE_TEMPLATES: tuple[str, ...] = (
    "a {} image",
    "a {} image of a garment",
    "a {} picture of clothing",
    "a photo in the style of {}",
    "a garment, {}",
    "clothing in the style of {}",
    "a {} rendering of a garment",
    "a close-up {} image of fabric",
)


@dataclass(frozen=True)
class DataConfig:
    """Where training images come from and how they become 512x512 (or `resolution`) tensors.

    source: an image folder, a built SynFashion folder, or a `datasets` id / local dataset path.
    kind: how to read `source` ("auto": SynFashion build if it has manifest.json or data/renders/, image folder
        for any other folder, a `datasets` id otherwise).
    split / categories / views: SynFashion (and `datasets`) filters.
    resolution: square training size in pixels (divisible by 8).
    random_crop / flip: augmentation. Latents are cached when the crop is deterministic (center); with
        `flip > 0` both orientations are cached and one is drawn per sample and step.
    min_size: smallest accepted image side (default: `resolution`; smaller images would be upscaled).
    captions: "auto" (metadata.jsonl/csv or <name>.txt sidecars of a folder, `caption_column` of a dataset),
        "none", or a metadata file path. caption_template: the caption of samples without one ("{category}" is
        filled from SynFashion metadata). image_column: of a `datasets` source.
    num_workers: decoding processes. skip_bad_images: skip (and count) undecodable files instead of failing.
    cache_latents: False re-encodes every step even when the augmentation is deterministic (as the examples).
    """

    source: str  # each command names it: --renders (train-negative), --real (train-positive)
    kind: SourceKind = option(
        "--source-type", default="auto", choices=get_args(SourceKind),
        help="how to read the source (auto: a SynFashion build if it has manifest.json or data/renders/, an image "
             "folder for other folders, a datasets id otherwise)")
    split: str = option("--split", default="train", help="split of a SynFashion build / datasets source")
    categories: tuple[str, ...] | None = option("--category", default=None, append=True,
                                                help="SynFashion category to keep (repeatable)")
    views: tuple[str, ...] | None = option("--view", default=None, append=True,
                                           help="SynFashion view to keep: front, back, random1, random2")
    resolution: int = option("--resolution", default=512, type=int, help="square training size in pixels")
    random_crop: bool = option("--random-crop", default=False, help="random crops (disables latent caching)")
    flip: float = option("--flip", default=0.0, type=float,
                         help="horizontal flip probability (both flips are cached)")
    min_size: int | None = option("--min-size", default=None, type=int,
                                  help="smallest accepted image side (default: --resolution)")
    captions: str = option("--captions", default="auto",
                           help="auto (metadata.jsonl/csv, <name>.txt sidecars, a text/caption column), none, or a "
                                "metadata file")
    caption_column: str | None = option("--caption-column", default=None,
                                        help="caption column of a datasets source or metadata file")
    image_column: str = option("--image-column", default="image", help="image column of a datasets source")
    caption_template: str = option(
        "--caption-template", default="",
        help="caption of images without one (default empty); '{category}' is filled for SynFashion")
    num_workers: int = option("--num-workers", default=2, type=int, help="image decoding processes")
    skip_bad_images: bool = option("--skip-bad-images", default=False,
                                   help="skip undecodable images (counted) instead of failing")
    cache_latents: bool = option("--no-cache-latents", default=True,
                                 help="VAE-encode every step (as diffusers' examples)")

    def __post_init__(self) -> None:
        if not self.source:
            raise DKIError("no training source given")
        if self.resolution <= 0 or self.resolution % 8:
            raise DKIError(f"resolution must be a positive multiple of 8 (the VAE factor), got {self.resolution}")
        if not 0.0 <= self.flip <= 1.0:
            raise DKIError(f"flip is a probability in [0, 1], got {self.flip}")
        if self.kind not in ("auto", "folder", "synfashion", "datasets"):
            raise DKIError(f"kind={self.kind!r}; choose auto, folder, synfashion or datasets")
        if self.num_workers < 0:
            raise DKIError(f"num_workers must be >= 0, got {self.num_workers}")

    @property
    def min_side(self) -> int:
        return self.resolution if self.min_size is None else self.min_size

    @property
    def deterministic(self) -> bool:
        """Whether the pixels of a sample are the same every epoch (up to the flip), so latents can be cached."""
        return not self.random_crop


def _zero_is_off(value: float) -> float | None:
    """--max-grad-norm 0: no clipping."""
    return value or None


@dataclass(frozen=True)
class TrainConfig:
    """The shared training loop (both trainings).

    steps: optimizer steps. batch_size: per process and micro-step; the global batch is
        batch_size x grad_accum x processes.
    checkpoint_every: save a resumable checkpoint every N steps (0: only at the end); keep the last `keep_checkpoints`.
    gradient_checkpointing: recompute UNet activations in backward (less memory, ~25% slower).
    snr_gamma: Min-SNR loss weighting (None: plain MSE, as the reference training).
    lr_scheduler / warmup_steps / lr_num_cycles / lr_power: the learning-rate schedule, by its name in
        `diffusers.optimization.get_scheduler` (steps are optimizer steps, whatever the number of processes).
        "constant" ignores warm-up in diffusers, so it is refused with warmup_steps > 0 ("constant_with_warmup").
    report_to: experiment tracker of accelerate ("tensorboard": OUT/logs, "wandb", or "none").
    channels_last / allow_tf32: CUDA speed settings (ignored on CPU). compile: torch.compile the UNet.
    """

    # the commands use the method's own steps and learning rate (NegativeConfig.STEPS, PositiveConfig.LR, ...)
    steps: int = option("--steps", default=1000, type=int, help="optimizer steps")
    lr: float = option("--lr", default=1e-4, type=float, help="learning rate")
    batch_size: int = option("--batch-size", default=8, type=int, help="per process and micro-step")
    grad_accum: int = option("--grad-accum", default=1, type=int, help="micro-steps per optimizer step")
    mixed_precision: MixedPrecision = option(
        "--mixed-precision", default="no", choices=get_args(MixedPrecision),
        help="compute dtype of the frozen weights (trainable ones stay float32)")
    seed: int = option("--seed", default=0, type=int,
                       help="seed of initialisation, data order, noise and timesteps")
    warmup_steps: int = option("--lr-warmup-steps", dest="warmup_steps", default=0, type=int,
                               help="linear learning-rate warm-up steps (optimizer steps)")
    lr_scheduler: str = option("--lr-scheduler", default="constant_with_warmup", choices=LR_SCHEDULERS,
                               help="learning-rate schedule (diffusers.optimization.get_scheduler)")
    lr_num_cycles: int = option("--lr-num-cycles", default=1, type=int, help="cycles of cosine_with_restarts")
    lr_power: float = option("--lr-power", default=1.0, type=float, help="power of the polynomial schedule")
    report_to: ReportTo = option(
        "--report-to", default="none", choices=get_args(ReportTo),
        help="experiment tracker (accelerate): tensorboard writes OUT/logs; the loss curve PNG and the run record "
             "are written either way")
    weight_decay: float = option("--weight-decay", default=1e-2, type=float, help="AdamW weight decay")
    adam_betas: tuple[float, float] = (0.9, 0.999)
    adam_eps: float = 1e-8
    max_grad_norm: float | None = option("--max-grad-norm", default=1.0, type=float, parse=_zero_is_off,
                                         help="gradient clipping (0: off)")
    snr_gamma: float | None = option("--snr-gamma", default=None, type=float,
                                     help="Min-SNR loss weighting (e.g. 5.0); off by default")
    checkpoint_every: int = option("--checkpoint-every", default=500, type=int,
                                   help="steps between resumable checkpoints (0: at the end only)")
    keep_checkpoints: int = option("--keep-checkpoints", default=2, type=int,
                                   help="checkpoints kept (older ones are removed)")
    gradient_checkpointing: bool = option("--gradient-checkpointing", default=False,
                                          help="recompute activations (less memory)")
    channels_last: bool = True
    allow_tf32: bool = True
    compile: bool = option("--compile", default=False, help="torch.compile the UNet (CUDA)")
    log_every: int = option("--log-every", default=10, type=int,
                            help="steps between loss read-backs (each one syncs)")
    progress: bool = option("--no-progress", default=True, help=NO_PROGRESS_HELP)

    def __post_init__(self) -> None:
        for name in ("steps", "batch_size", "grad_accum", "log_every", "keep_checkpoints"):
            if getattr(self, name) < 1:
                raise DKIError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.lr <= 0:
            raise DKIError(f"lr must be > 0, got {self.lr}")
        if self.checkpoint_every < 0 or self.warmup_steps < 0:
            raise DKIError("checkpoint_every and warmup_steps must be >= 0")
        if self.mixed_precision not in ("no", "fp16", "bf16"):
            raise DKIError(f"mixed_precision={self.mixed_precision!r}; choose no, fp16 or bf16")
        if self.lr_scheduler not in LR_SCHEDULERS:
            raise DKIError(f"lr_scheduler={self.lr_scheduler!r}; choose {', '.join(LR_SCHEDULERS)}")
        if self.lr_scheduler == "constant" and self.warmup_steps:
            raise DKIError("--lr-scheduler constant has no warm-up (diffusers ignores --lr-warmup-steps with it); "
                           "use --lr-scheduler constant_with_warmup")
        if self.lr_num_cycles < 1:
            raise DKIError(f"lr_num_cycles must be >= 1, got {self.lr_num_cycles}")
        if self.report_to not in ("none", "tensorboard", "wandb"):
            raise DKIError(f"report_to={self.report_to!r}; choose none, tensorboard or wandb")


@dataclass(frozen=True)
class NegativeConfig:
    """Negative-domain textual inversion: a new token learned on rendered images.

    token: the new token (must not be in the vocabulary). num_vectors: K embedding rows for it (saved as [K, D];
        diffusers adds "<tok>", "<tok>_1", ... and expands the prompt). init_token: text whose token embedding(s)
        initialise every vector (their mean if it is several tokens). init_embedding: start from a saved
        `{token: tensor}` safetensors file instead. templates: training prompts, "{}" marks the token.
    """

    # the training loop's defaults for this method (`r2r train-negative`)
    STEPS: ClassVar[int] = 2000
    LR: ClassVar[float] = 2e-3

    token: str = option("--placeholder-token", dest="token", default="<rendered>",
                        help="the new token learned on the renders, the negative prompt later (must not be in the "
                             "vocabulary)")
    init_token: str = option("--init-token", default="rendered",
                             help="word whose embedding initialises the vectors")
    num_vectors: int = option("--num-vectors", default=1, type=int, help="embedding vectors for the token (K)")
    init_embedding: str | None = option("--init-embedding", default=None,
                                        help="start from a saved {token: tensor} .safetensors embedding")
    templates: tuple[str, ...] = option(
        "--template", dest="templates", default=STYLE_TEMPLATES, append=True,
        help=f"training prompt with '{{}}' for the token (repeatable; default {len(STYLE_TEMPLATES)} style templates)")

    def __post_init__(self) -> None:
        if not self.token or any(c.isspace() for c in self.token):
            raise DKIError(f"token must be a non-empty string without spaces, got {self.token!r}")
        if self.num_vectors < 1:
            raise DKIError(f"num_vectors must be >= 1, got {self.num_vectors}")
        if not self.templates or any("{}" not in t for t in self.templates):
            raise DKIError(f"every template must contain '{{}}' (where the token goes); got {list(self.templates)}")

    @property
    def default_lr(self) -> float:
        return self.LR


@dataclass(frozen=True)
class PositiveConfig:
    """Positive-domain finetuning of the UNet on real photos: LoRA (default) or full.

    lora_rank / lora_alpha: LoRA on the attention projections (to_q, to_k, to_v, to_out.0); alpha defaults to
        the rank (scale 1). full: finetune every UNet weight instead and save a whole pipeline folder.
    ema: keep an exponential moving average of the trained weights and save it (ema_decay, with warm-up).
    """

    # the training loop's defaults for this method (`r2r train-positive`): the learning rate of LoRA, of --full
    STEPS: ClassVar[int] = 5000
    LR: ClassVar[float] = 1e-4
    LR_FULL: ClassVar[float] = 1e-5

    lora_rank: int = option("--lora-rank", default=4, type=int, help="LoRA rank (default {default})")
    lora_alpha: float | None = option("--lora-alpha", default=None, type=float,
                                      help="LoRA alpha (default: the rank)")
    lora_targets: tuple[str, ...] = ("to_k", "to_q", "to_v", "to_out.0")
    full: bool = option("--full", default=False,
                        help="finetune every UNet weight; save a pipeline folder")
    ema: bool = option("--ema", default=False, help="export an exponential moving average of the weights")
    ema_decay: float = option("--ema-decay", default=0.9999, type=float, help="decay of the EMA (with --ema)")

    def __post_init__(self) -> None:
        if self.lora_rank < 1:
            raise DKIError(f"lora_rank must be >= 1, got {self.lora_rank}")
        if not 0.0 < self.ema_decay < 1.0:
            raise DKIError(f"ema_decay must be in (0, 1), got {self.ema_decay}")

    @property
    def default_lr(self) -> float:
        return self.LR_FULL if self.full else self.LR


@dataclass(frozen=True)
class RunConfig:
    """Everything one training run is: model, output folder, data, loop and method settings."""

    model: str = option("--model", help="SD-1.5-architecture diffusers folder or Hub id (safetensors)")
    out: str = option("--out", type=Path, parse=str,
                      help="output folder (artifacts, card, loss curve, checkpoints); a non-empty one needs --resume "
                           "or --overwrite")
    data: DataConfig
    train: TrainConfig = field(default_factory=TrainConfig)
    method: NegativeConfig | PositiveConfig = field(default_factory=NegativeConfig)
    revision: str | None = option("--revision", default=None, help="Hub revision of --model")
    # the model card's `base_model` (default: `model` unless it is a local path)
    base_model_id: str | None = option("--base-model-id", default=None,
                                       help="the model card's base_model (default: --model, or the folder name)")
    # None: fresh; "latest": the newest intact checkpoint of the run in `out`; or a path
    resume: str | None = option(
        "--resume", default=None, nargs="?", const="latest", metavar="CHECKPOINT",
        help="continue the run in OUT from its newest intact checkpoint (or the one given)")
    overwrite: bool = option(
        "--overwrite", default=False,
        help="start a new run in a non-empty OUT: removes what an earlier training run wrote there (checkpoints, "
             "artifacts, card, loss curve, run record), never other files")

    def __post_init__(self) -> None:
        if self.resume is not None and self.overwrite:
            raise DKIError("resume and overwrite exclude each other: resume continues the run in the output folder, "
                           "overwrite starts a new one")

    def to_dict(self) -> dict:
        d = asdict(self)
        d["method_kind"] = type(self.method).__name__
        return d
