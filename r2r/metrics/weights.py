"""Where the metric networks' weights come from, and the one safe way they are read.

Three published files, each in its own key layout: pytorch-fid's FID Inception v3 (`pt_inception-2015-12-05-
6726825d.pth`), torchvision's ImageNet AlexNet (`alexnet-owt-7be5be79.pth`, of which only `features.*` is used) and
lpips' v0.1 AlexNet linear heads (`weights/v0.1/alex.pth` in the lpips package, cached under the name other tools
give the same bytes, `LPIPS_v0.1_alex-df73285e.pth`). A network's weights come from, in this order: an explicit
path or state dict; the torch hub cache (`torch.hub.get_dir()/checkpoints/<file name>`); the published URL when
downloads are allowed (torch.hub's downloader, sha256 checked, into that cache). Files are read with
`torch.load(weights_only=True)` or safetensors, never unpickled otherwise. Every load reports the file's sha256,
which `r2r evaluate` records. `random_state_dict` makes seeded random tensors in the same layouts (tests, demos,
parity measurements); results computed with them are meaningless as numbers and are labelled so.
"""

from __future__ import annotations

import functools
import hashlib
import io
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from .alexnet import AlexNetTrunk, LPIPSHeads
from .identity import tensors_sha256
from .inception import FIDInceptionV3

RANDOM = "random"


@dataclass(frozen=True)
class WeightSpec:
    """One published weight file: what it is, its names, and how to check it."""

    what: str
    file_name: str  # the published name, used in the torch hub cache
    url: str
    flag: str  # the `r2r evaluate` option that takes a path to it
    hash_prefix: str  # torch hub convention: the sha256 prefix in the file name
    sha256: str | None = None  # the full digest, where known
    prefix: str = ""  # only keys starting with this are part of the network (AlexNet: "features.")

    def matches(self, digest: str) -> bool:
        return digest == self.sha256 if self.sha256 else digest.startswith(self.hash_prefix)


INCEPTION = WeightSpec(
    what="FID Inception v3 (TensorFlow 2015-12-05)",
    file_name="pt_inception-2015-12-05-6726825d.pth",
    url="https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/pt_inception-2015-12-05-6726825d.pth",
    flag="--inception-weights",
    hash_prefix="6726825d",
)
ALEXNET = WeightSpec(
    what="AlexNet trunk (torchvision ImageNet weights)",
    file_name="alexnet-owt-7be5be79.pth",
    url="https://download.pytorch.org/models/alexnet-owt-7be5be79.pth",
    flag="--alexnet-weights",
    hash_prefix="7be5be79",
    prefix="features.",
)
LPIPS_ALEX_HEADS = WeightSpec(
    what="LPIPS v0.1 AlexNet linear heads",
    file_name="LPIPS_v0.1_alex-df73285e.pth",
    url="https://github.com/richzhang/PerceptualSimilarity/raw/master/lpips/weights/v0.1/alex.pth",
    flag="--lpips-heads",
    hash_prefix="df73285e",
    # measured on lpips 0.1.4's wheel (lpips/weights/v0.1/alex.pth)
    sha256="df73285e35b22355a2df87cdb6b70b343713b667eddbda73e1977e0c860835c0",
)
SPECS: dict[str, WeightSpec] = {"inception": INCEPTION, "alexnet": ALEXNET, "lpips_heads": LPIPS_ALEX_HEADS}


@dataclass
class LoadedWeights:
    state_dict: dict[str, torch.Tensor]
    sha256: str  # of the file; "random" for generated tensors; "tensors:<sha256>" for an in-memory state dict
    origin: str  # path, "hub cache <path>", "downloaded <url> -> <path>", "state dict", "random (seed N)"
    tensors_digest: str | None = None  # tensors_sha256(state_dict) where already known (seeded random weights)

    def record(self, spec: WeightSpec) -> dict:
        return {"network": spec.what, "published_file": spec.file_name, "sha256": self.sha256, "origin": self.origin,
                "published": spec.matches(self.sha256)}


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def read_state_dict(path: str | Path) -> tuple[dict[str, torch.Tensor], str]:
    """(state dict, sha256 of the file): safetensors by suffix, else `torch.load(weights_only=True)`."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"weight file {path} does not exist")
    data = path.read_bytes()
    digest = _sha256(data)
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load as load_safetensors

            state = load_safetensors(data)
        else:
            state = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any reader failure is one clear error naming the file
        raise ValueError(f"{path}: not a readable weight file ({type(e).__name__}: {e}); expected a state dict "
                         "saved by torch (read with weights_only=True) or a .safetensors file") from None
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"{path}: does not hold a state dict of tensors")
    return dict(state), digest


def hub_cache_path(spec: WeightSpec) -> Path:
    return Path(torch.hub.get_dir()) / "checkpoints" / spec.file_name


def _download(spec: WeightSpec, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:  # torch.hub writes to a temp file, checks the sha256 prefix, then moves it into place
        torch.hub.download_url_to_file(spec.url, str(dst), hash_prefix=spec.hash_prefix, progress=True)
    except Exception as e:  # noqa: BLE001 - offline, HTTP errors, hash mismatch: one message with the way out
        raise FileNotFoundError(
            f"the {spec.what} weights are not available: download of {spec.url} failed ({type(e).__name__}: {e}). "
            f"Put the published file at {dst}, or pass {spec.flag} PATH (or --random-weights for a smoke test)"
        ) from None


def load_weights(spec: WeightSpec, source=None, *, allow_download: bool = True) -> LoadedWeights:
    """The weights of `spec` from `source` (a path, a state dict, or None: hub cache, then download)."""
    if isinstance(source, LoadedWeights):
        loaded = source
    elif isinstance(source, dict):
        loaded = LoadedWeights(dict(source), tensors_sha256(source), "state dict")
    elif source is not None:
        state, digest = read_state_dict(source)
        loaded = LoadedWeights(state, digest, str(source))
    else:
        cached = hub_cache_path(spec)
        if not cached.is_file():
            if not allow_download:
                raise FileNotFoundError(
                    f"the {spec.what} weights are not in the torch hub cache ({cached}) and downloads are off; "
                    f"put the published file there (from {spec.url}), or pass {spec.flag} PATH "
                    "(or --random-weights for a smoke test)"
                )
            _download(spec, cached)
            origin = f"downloaded {spec.url} -> {cached}"
        else:
            origin = f"hub cache {cached}"
        state, digest = read_state_dict(cached)
        if not spec.matches(digest):
            raise ValueError(f"{cached}: sha256 {digest} is not that of the published {spec.file_name}; "
                             f"remove the file or pass {spec.flag} PATH explicitly")
        loaded = LoadedWeights(state, digest, origin)
    if spec.prefix:
        kept = {k: v for k, v in loaded.state_dict.items() if k.startswith(spec.prefix)}
        if not kept:
            raise ValueError(f"{loaded.origin}: no '{spec.prefix}*' keys; not the {spec.what} in torchvision's layout")
        loaded = LoadedWeights(kept, loaded.sha256, loaded.origin)
    check_layout(spec, loaded.state_dict, where=loaded.origin)
    return loaded


def empty_module(spec: WeightSpec) -> nn.Module:
    """The network `spec` describes, on the meta device: its state dict is the published layout (names, shapes,
    dtypes), with no memory and no initialisation spent (building the FID Inception with its default init costs
    ~0.7 s of a 2-core CPU, paid on every load for a layout check)."""
    builders: dict[str, Callable[[], nn.Module]] = {
        INCEPTION.file_name: FIDInceptionV3, ALEXNET.file_name: AlexNetTrunk, LPIPS_ALEX_HEADS.file_name: LPIPSHeads,
    }
    with torch.device("meta"):
        return builders[spec.file_name]()


def check_layout(spec: WeightSpec, state: dict[str, torch.Tensor], *, where: str = "") -> None:
    """Refuse a state dict whose keys or shapes are not the published layout, naming what differs."""
    expected = {k: tuple(v.shape) for k, v in empty_module(spec).state_dict().items()}
    # BatchNorm files converted before torch 0.4.1 lack num_batches_tracked; torch fills it in on load
    missing = sorted(k for k in expected if k not in state and not k.endswith("num_batches_tracked"))
    unexpected = sorted(k for k in state if k not in expected)
    wrong = sorted(f"{k} {tuple(state[k].shape)} (expected {expected[k]})"
                   for k in state if k in expected and tuple(state[k].shape) != expected[k])
    if missing or unexpected or wrong:
        parts = [f"{label}: {', '.join(items[:5])}{' ...' if len(items) > 5 else ''}"
                 for label, items in (("missing", missing), ("unexpected", unexpected), ("wrong shape", wrong))
                 if items]
        origin = f"{where}: " if where else ""
        raise ValueError(f"{origin}not the {spec.what} in its published key layout ({'; '.join(parts)})")


def random_state_dict(spec: WeightSpec, seed: int = 0) -> dict[str, torch.Tensor]:
    """Seeded random tensors in `spec`'s layout, scaled so activations stay finite and informative (He-normal
    convolutions, BatchNorm near identity, non-negative LPIPS heads). AlexNet: the trunk only (no classifier).
    Drawn once per process and (spec, seed), a copy each call: drawing Inception's 24M numbers takes ~0.1 s on a
    CPU, and every random-weight `r2r evaluate` in one process (ablate's variants, tests) asks for the same ones."""
    return {k: v.clone() for k, v in _drawn(spec, seed)[0].items()}


@functools.lru_cache(maxsize=None)
def _drawn(spec: WeightSpec, seed: int) -> tuple[dict[str, torch.Tensor], str]:
    """(the tensors, their tensors_sha256): kept for the process, never handed out (callers get copies)."""
    gen = torch.Generator().manual_seed(seed)
    out: dict[str, torch.Tensor] = {}
    for key, ref in empty_module(spec).state_dict().items():
        shape = ref.shape
        if key.endswith("num_batches_tracked"):
            out[key] = torch.zeros((), dtype=torch.long)
        elif spec is LPIPS_ALEX_HEADS:
            out[key] = torch.rand(shape, generator=gen) * 0.2
        elif key.endswith("running_var"):
            out[key] = 1.0 + 0.1 * torch.rand(shape, generator=gen)
        elif key.endswith(("running_mean", "bn.bias")) or (spec is ALEXNET and key.endswith(".bias")):
            out[key] = 0.05 * torch.randn(shape, generator=gen)
        elif key.endswith("bn.weight"):
            out[key] = 1.0 + 0.05 * torch.randn(shape, generator=gen)
        elif key == "fc.bias":
            out[key] = torch.zeros(shape)
        elif key == "fc.weight":
            out[key] = 0.01 * torch.randn(shape, generator=gen)
        else:  # convolution weights: He-normal keeps the ReLU activations' scale from layer to layer
            fan_in = shape[1] * shape[2] * shape[3]
            out[key] = torch.randn(shape, generator=gen) * (2.0 / fan_in) ** 0.5
    return out, tensors_sha256(out)


def save_state_dict(state: dict[str, torch.Tensor], path: str | Path) -> str:
    """Write a state dict (safetensors by suffix, else torch's zip format) atomically; returns its sha256."""
    from synfashion.fs.atomic import write_bytes_atomic

    path = Path(path)
    if path.suffix == ".safetensors":
        from safetensors.torch import save as save_safetensors

        data = save_safetensors({k: v.contiguous() for k, v in state.items()})
    else:
        buf = io.BytesIO()
        torch.save(state, buf)
        data = buf.getvalue()
    write_bytes_atomic(path, data, durable=False)
    return _sha256(data)


def random_weights(spec: WeightSpec, seed: int) -> LoadedWeights:
    return LoadedWeights(random_state_dict(spec, seed), RANDOM, f"random (seed {seed})", _drawn(spec, seed)[1])
