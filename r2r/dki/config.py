"""Typed settings of the two DKI trainings: data, the shared training loop, and each method's own knobs.

Why plain frozen dataclasses in a torch-free module: the CLI builds them from arguments, the trainer and the model
card read them, and the checkpoint records them (`asdict`) so a resumed run can refuse a changed configuration.
No behaviour beyond validation.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Literal

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

    source: str
    kind: SourceKind = "auto"
    split: str = "train"
    categories: tuple[str, ...] | None = None
    views: tuple[str, ...] | None = None
    resolution: int = 512
    random_crop: bool = False
    flip: float = 0.0
    min_size: int | None = None
    captions: str = "auto"
    caption_column: str | None = None
    image_column: str = "image"
    caption_template: str = ""
    num_workers: int = 2
    skip_bad_images: bool = False
    cache_latents: bool = True

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

    steps: int = 1000
    lr: float = 1e-4
    batch_size: int = 8
    grad_accum: int = 1
    mixed_precision: MixedPrecision = "no"
    seed: int = 0
    warmup_steps: int = 0
    lr_scheduler: str = "constant_with_warmup"
    lr_num_cycles: int = 1
    lr_power: float = 1.0
    report_to: ReportTo = "none"
    weight_decay: float = 1e-2
    adam_betas: tuple[float, float] = (0.9, 0.999)
    adam_eps: float = 1e-8
    max_grad_norm: float | None = 1.0
    snr_gamma: float | None = None
    checkpoint_every: int = 500
    keep_checkpoints: int = 2
    gradient_checkpointing: bool = False
    channels_last: bool = True
    allow_tf32: bool = True
    compile: bool = False
    log_every: int = 10
    progress: bool = True

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

    token: str = "<rendered>"
    init_token: str = "rendered"
    num_vectors: int = 1
    init_embedding: str | None = None
    templates: tuple[str, ...] = STYLE_TEMPLATES

    def __post_init__(self) -> None:
        if not self.token or any(c.isspace() for c in self.token):
            raise DKIError(f"token must be a non-empty string without spaces, got {self.token!r}")
        if self.num_vectors < 1:
            raise DKIError(f"num_vectors must be >= 1, got {self.num_vectors}")
        if not self.templates or any("{}" not in t for t in self.templates):
            raise DKIError(f"every template must contain '{{}}' (where the token goes); got {list(self.templates)}")


@dataclass(frozen=True)
class PositiveConfig:
    """Positive-domain finetuning of the UNet on real photos: LoRA (default) or full.

    lora_rank / lora_alpha: LoRA on the attention projections (to_q, to_k, to_v, to_out.0); alpha defaults to
        the rank (scale 1). full: finetune every UNet weight instead and save a whole pipeline folder.
    ema: keep an exponential moving average of the trained weights and save it (ema_decay, with warm-up).
    """

    lora_rank: int = 4
    lora_alpha: float | None = None
    lora_targets: tuple[str, ...] = ("to_k", "to_q", "to_v", "to_out.0")
    full: bool = False
    ema: bool = False
    ema_decay: float = 0.9999

    def __post_init__(self) -> None:
        if self.lora_rank < 1:
            raise DKIError(f"lora_rank must be >= 1, got {self.lora_rank}")
        if not 0.0 < self.ema_decay < 1.0:
            raise DKIError(f"ema_decay must be in (0, 1), got {self.ema_decay}")


@dataclass(frozen=True)
class RunConfig:
    """Everything one training run is: model, output folder, data, loop and method settings."""

    model: str
    out: str
    data: DataConfig
    train: TrainConfig = field(default_factory=TrainConfig)
    method: NegativeConfig | PositiveConfig = field(default_factory=NegativeConfig)
    revision: str | None = None
    base_model_id: str | None = None  # the model card's `base_model` (default: `model` unless it is a local path)
    resume: str | None = None  # None: fresh; "latest": the newest intact checkpoint of the run in `out`; or a path
    overwrite: bool = False  # start a new run in a non-empty `out` (removes only what a training run wrote there)

    def __post_init__(self) -> None:
        if self.resume is not None and self.overwrite:
            raise DKIError("resume and overwrite exclude each other: resume continues the run in the output folder, "
                           "overwrite starts a new one")

    def to_dict(self) -> dict:
        d = asdict(self)
        d["method_kind"] = type(self.method).__name__
        return d
