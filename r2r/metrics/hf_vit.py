"""Loading a `transformers` vision model's published weights, strictly and by hash (shared by dinov2.py and clip.py).

Weights come from, in this order: an explicit folder (a Hub snapshot: `config.json` + `model.safetensors`, or
shards listed in `model.safetensors.index.json`), an explicit `.safetensors` file (with a config), an in-memory
state dict (tests), or the Hugging Face cache (`hf_hub_download(..., local_files_only=not allow_download)`, so a
download only when allowed). Only safetensors are read, never pickles. The digest recorded is the sha256 of the
safetensors file(s) as read; the Hub commit of a cached snapshot is recorded in `origin`.

Keys are checked against the published layout, not trusted to `from_pretrained`'s lenient loading (which fills
missing weights with random ones and only warns). The published files use transformers 4.x names; transformers 5
renamed some modules (DINOv2's `attention.attention.query` is now `attention.q_proj`) and converts on load, so the
renames are written out here (`NetworkSpec.renames`) and applied only where the installed module lacks the
published name. `random_published_state_dict` writes seeded random weights in the published names, for tests.
`ViTFeatures` is what both feature networks share (load, identity, protocol string, always in eval mode); each
subclass keeps its own preprocessing and output. Nothing here computes features.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from .identity import FeatureIdentity, files_sha256, tensors_sha256

WEIGHTS_FILE = "model.safetensors"
INDEX_FILE = "model.safetensors.index.json"
CONFIG_FILE = "config.json"


@dataclass(frozen=True)
class NetworkSpec:
    """One published `transformers` checkpoint and how its keys map onto the installed module."""

    what: str  # "DINOv2 ViT-B/14"
    repo_id: str  # "facebook/dinov2-base"
    config_class: str  # transformers config class name ("Dinov2Config"); imported on first use, not with r2r
    model_class: str  # transformers model class name ("Dinov2Model")
    published_config: dict = field(default_factory=dict)  # the repo's config values that shape the weights
    keep_prefixes: tuple[str, ...] = ()  # only keys under these are the network (CLIP: the vision half)
    ignore_suffixes: tuple[str, ...] = ()  # non-persistent buffers some files carry (position_ids)
    renames: tuple[tuple[str, str], ...] = ()  # (published substring, transformers-5 substring)

    @property
    def config_cls(self):
        import transformers

        return getattr(transformers, self.config_class)

    @property
    def model_cls(self):
        import transformers

        return getattr(transformers, self.model_class)


@dataclass
class LoadedNetwork:
    model: nn.Module
    sha256: str
    origin: str


def _hub_file(spec: NetworkSpec, name: str, *, revision: str | None, allow_download: bool) -> Path:
    from huggingface_hub import hf_hub_download

    try:
        return Path(hf_hub_download(spec.repo_id, name, revision=revision, local_files_only=not allow_download))
    except Exception as e:  # noqa: BLE001 - offline, missing, gated: one message with the ways out
        how = "downloads are off" if not allow_download else f"the download failed ({type(e).__name__}: {e})"
        raise FileNotFoundError(
            f"the {spec.what} weights ({spec.repo_id}, {name}) are not in the Hugging Face cache and {how}; "
            f"run `huggingface-cli download {spec.repo_id} {CONFIG_FILE} {WEIGHTS_FILE}` where the Hub is "
            "reachable, or pass the downloaded folder explicitly"
        ) from None


def _folder_files(folder: Path) -> list[Path]:
    index = folder / INDEX_FILE
    if index.is_file():
        try:
            shards = sorted(set(json.loads(index.read_text())["weight_map"].values()))
        except (ValueError, KeyError, TypeError) as e:
            raise ValueError(f"{index}: not a safetensors index ({type(e).__name__}: {e})") from None
        files = [folder / s for s in shards]
    else:
        files = [folder / WEIGHTS_FILE]
    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        raise FileNotFoundError(f"{folder}: no {', '.join(missing)} (only safetensors weights are read; a "
                                "pytorch_model.bin is a pickle and is refused)")
    return files


def _read_safetensors(files: list[Path], spec: NetworkSpec) -> dict[str, torch.Tensor]:
    from safetensors import safe_open

    state: dict[str, torch.Tensor] = {}
    for f in files:
        try:
            with safe_open(str(f), framework="pt") as handle:
                for key in handle.keys():
                    if spec.keep_prefixes and not key.startswith(spec.keep_prefixes):
                        continue  # e.g. CLIP's text tower: never read
                    state[key] = handle.get_tensor(key)
        except Exception as e:  # noqa: BLE001 - any reader failure names the file
            raise ValueError(f"{f}: not a readable safetensors file ({type(e).__name__}: {e})") from None
    return state


def to_module_names(spec: NetworkSpec, state: dict[str, torch.Tensor],
                    module_keys: set[str]) -> dict[str, torch.Tensor]:
    """Published names -> the installed module's (identity under transformers 4.x)."""
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        if key.endswith(spec.ignore_suffixes) and key not in module_keys:
            continue
        name = key
        if name not in module_keys:
            for old, new in spec.renames:
                name = name.replace(old, new)
        out[name] = value
    return out


def to_published_names(spec: NetworkSpec, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The installed module's names -> the published ones (the inverse of `to_module_names`)."""
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        name = key
        for old, new in spec.renames:
            name = name.replace(new, old)
        out[name] = value
    return out


def check_keys(model: nn.Module, state: dict[str, torch.Tensor], *, what: str, where: str) -> None:
    """Refuse weights whose keys or shapes are not the module's, naming what differs (as weights.check_layout)."""
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    missing = sorted(k for k in expected if k not in state)
    unexpected = sorted(k for k in state if k not in expected)
    wrong = sorted(f"{k} {tuple(state[k].shape)} (expected {expected[k]})"
                   for k in state if k in expected and tuple(state[k].shape) != expected[k])
    if missing or unexpected or wrong:
        parts = [f"{label}: {', '.join(items[:5])}{' ...' if len(items) > 5 else ''}"
                 for label, items in (("missing", missing), ("unexpected", unexpected), ("wrong shape", wrong))
                 if items]
        raise ValueError(f"{where}: not the {what} in its published key layout ({'; '.join(parts)})")


def build(spec: NetworkSpec, config) -> nn.Module:
    model = spec.model_cls(config)
    model.requires_grad_(False)
    return model.eval()


def load_network(spec: NetworkSpec, weights=None, *, config=None, revision: str | None = None,
                 allow_download: bool = True) -> LoadedNetwork:
    """The network with its weights (see the module docstring for `weights` and the order of sources).

    `config`: a transformers config, needed for a bare `.safetensors` file or a state dict (default: the published
    architecture, `spec.published_config`); a folder's own `config.json` is used otherwise.
    """
    if config is None and spec.published_config:
        config = spec.config_cls(**spec.published_config)
    if isinstance(weights, dict):
        if config is None:
            raise ValueError(f"{spec.what}: a state dict needs a config")
        model = build(spec, config)
        state = to_module_names(spec, {k: v for k, v in weights.items()
                                       if not spec.keep_prefixes or k.startswith(spec.keep_prefixes)},
                                set(model.state_dict()))
        check_keys(model, state, what=spec.what, where="state dict")
        model.load_state_dict(state, strict=True)
        return LoadedNetwork(model, tensors_sha256(weights), "state dict")
    if weights is None:
        cfg_path = _hub_file(spec, CONFIG_FILE, revision=revision, allow_download=allow_download)
        files = [_hub_file(spec, WEIGHTS_FILE, revision=revision, allow_download=allow_download)]
        folder = cfg_path.parent
        origin = f"hub cache {spec.repo_id}@{folder.name} ({folder})"
        config = spec.config_cls.from_pretrained(str(folder), local_files_only=True)
    else:
        path = Path(weights)
        if path.is_dir():
            if not (path / CONFIG_FILE).is_file():
                raise FileNotFoundError(f"{path}: no {CONFIG_FILE}; expected a Hub snapshot of {spec.repo_id}")
            config = spec.config_cls.from_pretrained(str(path), local_files_only=True)
            files = _folder_files(path)
        elif path.is_file():
            if path.suffix != ".safetensors":
                raise ValueError(f"{path}: only .safetensors weight files are read for {spec.what}")
            files = [path]
        else:
            raise FileNotFoundError(f"{spec.what} weights {path} do not exist")
        origin = str(path)
    model = build(spec, config)
    where = ", ".join(str(f) for f in files)
    state = to_module_names(spec, _read_safetensors(files, spec), set(model.state_dict()))
    check_keys(model, state, what=spec.what, where=where)
    model.load_state_dict(state, strict=True)
    return LoadedNetwork(model, files_sha256(files), origin)


def random_published_state_dict(spec: NetworkSpec, config, seed: int = 0) -> dict[str, torch.Tensor]:
    """Seeded random weights for `config` in the published names: LayerNorms near identity, layer scales 1,
    biases and embeddings small, matrices N(0, 0.02) (transformers' own initialiser's scale)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.device("meta"):
        shapes = {k: v.shape for k, v in spec.model_cls(config).state_dict().items()}
    out: dict[str, torch.Tensor] = {}
    for key, shape in shapes.items():
        if "norm" in key and key.endswith(".weight"):
            out[key] = 1.0 + 0.02 * torch.randn(shape, generator=gen)
        elif key.endswith("lambda1"):
            out[key] = torch.ones(shape)
        elif key.endswith("position_ids"):
            out[key] = torch.arange(shape[-1]).expand(shape).clone()
        else:
            out[key] = 0.02 * torch.randn(shape, generator=gen)
    return to_published_names(spec, out)


def save_folder(folder: str | Path, config, state: dict[str, torch.Tensor]) -> Path:
    """Write `config.json` + `model.safetensors` as a Hub snapshot has them (tests, demos)."""
    from safetensors.torch import save as save_safetensors

    from synfashion.fs.atomic import write_bytes_atomic

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    config.to_json_file(str(folder / CONFIG_FILE))
    write_bytes_atomic(folder / WEIGHTS_FILE, save_safetensors({k: v.contiguous() for k, v in state.items()}),
                       durable=False)
    return folder


RESIZE_NAMES = {"pil": "PIL", "torch": "torch-antialiased"}  # a feature network's `resize` -> its protocol word


class ViTFeatures(nn.Module):
    """A transformers vision model as a frozen feature network: weights through `load_network`, the sha256 and
    origin they came from, the resize protocol ("pil": the reference code's PIL bicubic, "torch": antialiased
    bicubic in torch), `identity` for caches and result files. Subclasses set PROTOCOL (with a `{resize}` slot),
    `network` and `dim`, and write `preprocess` and `forward`."""

    PROTOCOL = ""

    def __init__(self, spec: NetworkSpec, weights=None, *, config=None, resize: str = "pil",
                 revision: str | None = None, allow_download: bool = True):
        super().__init__()
        if resize not in RESIZE_NAMES:
            raise ValueError(f"resize must be one of {sorted(RESIZE_NAMES)}, got {resize!r}")
        loaded = load_network(spec, weights, config=config, revision=revision, allow_download=allow_download)
        self.model = loaded.model
        self.sha256 = loaded.sha256
        self.origin = loaded.origin
        self.resize = resize
        self.network = ""

    def freeze(self) -> None:
        """Called by a subclass once its model is final: no gradients, eval mode for good."""
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> "ViTFeatures":
        return super().train(False)

    @property
    def dim(self) -> int:
        raise NotImplementedError

    @property
    def protocol(self) -> str:
        return self.PROTOCOL.format(resize=RESIZE_NAMES[self.resize])

    @property
    def identity(self) -> FeatureIdentity:
        return FeatureIdentity(self.network, self.sha256, self.protocol, self.dim)


__all__ = ["RESIZE_NAMES", "LoadedNetwork", "NetworkSpec", "ViTFeatures", "check_keys", "load_network",
           "random_published_state_dict", "save_folder", "to_module_names", "to_published_names"]
