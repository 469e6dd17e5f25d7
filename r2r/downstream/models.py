"""The classifier every variant trains: a Hugging Face image-classification model with a 20-way SynFashion head.

Two ways in, both `transformers` models (no torchvision, which does not load beside the CPU torch):
- `--model ID_OR_FOLDER`: `AutoModelForImageClassification.from_pretrained(..., num_labels=20,
  ignore_mismatched_sizes=True)`, safetensors only; its own normalisation (preprocessor_config.json) when it has one;
- `--arch NAME`: a config built here (ResNet, ConvNeXt, ViT sizes of the usual families) with random weights, no
  download. `resnet-tiny` is for tests and CPU benchmarks.
The initial weights (the new head included) are drawn under the run's seed, so every variant starts from the very
same model. This module builds models; it does not train them.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from synfashion.taxonomy import CATEGORIES

from .config import DownstreamConfig, DownstreamError

# ImageNet statistics: what ResNet / ConvNeXt checkpoints (and torchvision's models) are trained with.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def _resnet(depths: list[int], hidden: list[int], layer_type: str, embedding: int = 64):
    from transformers import ResNetConfig

    return lambda size: ResNetConfig(embedding_size=embedding, hidden_sizes=hidden, depths=depths,
                                     layer_type=layer_type)


def _convnext(depths: list[int], hidden: list[int]):
    from transformers import ConvNextConfig

    return lambda size: ConvNextConfig(depths=depths, hidden_sizes=hidden)


def _vit(hidden: int, layers: int, heads: int):
    from transformers import ViTConfig

    # image_size is (height, width): the position embeddings are made for the training size itself
    return lambda size: ViTConfig(hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
                                  intermediate_size=4 * hidden, patch_size=16, image_size=(size[1], size[0]))


# name -> (width, height) -> transformers config. The sizes are those of the published families (ResNet-18 as in
# microsoft/resnet-18, ConvNeXt-T as facebook/convnext-tiny-224, ViT-S/16 as in DeiT).
ARCHS: dict[str, Callable] = {
    "resnet-tiny": _resnet([1, 1, 1], [16, 32, 64], "basic", embedding=16),
    "resnet18": _resnet([2, 2, 2, 2], [64, 128, 256, 512], "basic"),
    "resnet34": _resnet([3, 4, 6, 3], [64, 128, 256, 512], "basic"),
    "resnet50": _resnet([3, 4, 6, 3], [256, 512, 1024, 2048], "bottleneck"),
    "convnext-tiny": _convnext([3, 3, 9, 3], [96, 192, 384, 768]),
    "convnext-small": _convnext([3, 3, 27, 3], [96, 192, 384, 768]),
    "vit-tiny": _vit(192, 12, 3),
    "vit-small": _vit(384, 12, 6),
    "vit-base": _vit(768, 12, 12),
}


@dataclass(frozen=True)
class Normalization:
    """How uint8 pixels become the model's input: (x / 255 - mean) / std per channel."""

    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    origin: str = "ImageNet statistics"

    def apply(self, pixels: torch.Tensor) -> torch.Tensor:
        """uint8 NCHW on the device -> float32 normalised (one fused pass: scale and shift per channel)."""
        mean = torch.tensor(self.mean, device=pixels.device).view(1, 3, 1, 1)
        std = torch.tensor(self.std, device=pixels.device).view(1, 3, 1, 1)
        scale = 1.0 / (255.0 * std)
        return torch.addcmul(-mean / std, pixels.to(torch.float32), scale)


@dataclass(frozen=True)
class ModelInfo:
    """What the results say about the model."""

    description: str
    normalization: Normalization
    parameters: int


@dataclass
class BuiltModel:
    model: torch.nn.Module
    normalization: Normalization
    description: str  # for the results: "microsoft/resnet-18 (pretrained)", "resnet18 (random init, config)"
    parameters: int
    interpolate_pos_encoding: bool = False  # pass it to forward (a pretrained ViT at a non-square size)

    def info(self) -> ModelInfo:
        return ModelInfo(self.description, self.normalization, self.parameters)

    def logits(self, model: torch.nn.Module, pixels: torch.Tensor) -> torch.Tensor:
        kwargs = {"interpolate_pos_encoding": True} if self.interpolate_pos_encoding else {}
        return model(pixel_values=pixels, **kwargs).logits


def _labels() -> dict:
    return {"num_labels": len(CATEGORIES), "id2label": dict(enumerate(CATEGORIES)),
            "label2id": {c: i for i, c in enumerate(CATEGORIES)}}


def _cached(model_id: str) -> bool:
    """Whether the Hugging Face cache holds a Hub model's config.json (so it loads without the Hub)."""
    from huggingface_hub import try_to_load_from_cache

    try:
        return isinstance(try_to_load_from_cache(model_id, "config.json"), str)
    except Exception:  # noqa: BLE001 - a malformed id is simply "not cached"
        return False


def _normalization_of(model: str, **kwargs) -> Normalization:
    """The checkpoint's own image_mean / image_std (preprocessor_config.json), else ImageNet's. The JSON is read
    directly: transformers' fast image processors would need torchvision. `kwargs`: cached_file's (cache only)."""
    from transformers.utils import cached_file

    try:
        path = cached_file(model, "preprocessor_config.json", _raise_exceptions_for_missing_entries=False, **kwargs)
    except OSError:
        path = None
    if not path:
        return Normalization()
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return Normalization()
    mean, std = doc.get("image_mean"), doc.get("image_std")
    if doc.get("do_normalize") is False:
        return Normalization((0.0, 0.0, 0.0), (1.0, 1.0, 1.0), f"{model}: no normalisation")
    ok = all(isinstance(v, list) and len(v) == 3 and all(isinstance(x, (int, float)) for x in v) for v in (mean, std))
    if not ok or any(x <= 0 for x in std):
        return Normalization()
    return Normalization(tuple(map(float, mean)), tuple(map(float, std)), f"{model} preprocessor_config.json")


def _check_local(folder: Path) -> None:
    from ..models import check_weights_folder

    if not (folder / "config.json").is_file():
        raise DownstreamError(f"--model {folder}: not a transformers model folder (no config.json)")
    check_weights_folder(folder, "the classifier folder",
                         convert=f"python -c \"from transformers import AutoModelForImageClassification as M; "
                                 f"M.from_pretrained('{folder}', use_safetensors=False).save_pretrained("
                                 f"'{folder}-safetensors')\" and load '{folder}-safetensors'")


def build_model(cfg: DownstreamConfig) -> BuiltModel:
    """The model every variant starts from (same seed, same weights), with a 20-way head."""
    from transformers import AutoConfig, AutoModelForImageClassification

    if cfg.arch is not None:
        if cfg.arch not in ARCHS:
            raise DownstreamError(f"--arch {cfg.arch!r}: choose one of {', '.join(ARCHS)} (or --model a Hugging "
                                  "Face model id)")
        config = ARCHS[cfg.arch](cfg.size)
        for k, v in _labels().items():
            setattr(config, k, v)
        torch.manual_seed(cfg.seed)
        model = AutoModelForImageClassification.from_config(config)
        norm = Normalization()
        return BuiltModel(model, norm, f"{cfg.arch} (transformers config, random init)", _count(model))

    from synfashion.hub.reach import offline_mode, require_hub, unreachable
    from synfashion.hub.refs import looks_like_path

    from ..models.errors import loading

    name = cfg.model
    local = Path(name).expanduser()
    cache_only = {}
    if local.exists():
        _check_local(local)
    elif looks_like_path(name):
        raise FileNotFoundError(f"model folder not found: {name}")
    elif not offline_mode() and unreachable() is not None:  # read the cache now rather than retry for minutes
        if not _cached(name):
            require_hub(f"--model {name}", "image-classification model",
                        "--arch resnet18 (or another --arch) builds the architecture here, with random weights, or "
                        "pass a local model folder")
        cache_only = {"local_files_only": True}
    torch.manual_seed(cfg.seed)  # the new head's initial weights
    with loading(f"{name!r} as an image-classification model (safetensors weights)"):
        try:
            model = AutoModelForImageClassification.from_pretrained(
                str(local) if local.exists() else name, ignore_mismatched_sizes=True, use_safetensors=True,
                **cache_only, **_labels())
        except ValueError as e:  # e.g. a config whose model type has no image-classification head
            raise DownstreamError(f"--model {name}: cannot be loaded as an image-classification model: "
                                  f"{str(e).splitlines()[0]}") from None
    norm = _normalization_of(str(local) if local.exists() else name, **cache_only)
    config = AutoConfig.from_pretrained(str(local) if local.exists() else name, **cache_only)
    square = getattr(config, "image_size", None)
    wants_size = "interpolate_pos_encoding" in inspect.signature(model.forward).parameters
    interpolate = wants_size and square is not None and _hw(square) != (cfg.size[1], cfg.size[0])
    return BuiltModel(model, norm, f"{name} (pretrained)", _count(model), interpolate_pos_encoding=interpolate)


def _hw(size) -> tuple[int, int]:
    return (size, size) if isinstance(size, int) else tuple(size)


def _count(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
