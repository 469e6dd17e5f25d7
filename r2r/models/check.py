"""Check: model files and folders before a library loads them, so bad input reads as one clear line. Second of the
four steps (resolve -> check -> identity -> load).


Why: diffusers, transformers and safetensors report a pickle renamed `.safetensors` as "header too large", a
truncated download as "incomplete metadata", a folder of `.bin` files as "no file named ... found", a mistyped
local path as "Repo id must use alphanumeric chars" and an uncached Hub id in offline mode as a 60-line
traceback. The checks here read only file headers (and the small artifacts: embeddings, LoRA weights, whole) and
say which file is wrong and what to do. Translation, DKI training, downstream and `R2RPipeline.from_pretrained`
share them. This module never unpickles anything: it recognises pickles by their first bytes and refuses them.
"""

from __future__ import annotations

import json
from pathlib import Path

from .errors import ModelFileError
from .resolve import PICKLE_SUFFIXES, _offline, artifact_path, looks_like_path, offline_snapshot

# Components of an SD-1.5 pipeline folder that hold weights (the others are configs / vocabularies).
WEIGHT_COMPONENTS = ("unet", "vae", "text_encoder")
_HEADER_LIMIT = 100 * 2**20  # safetensors refuses larger headers too


def _pickle_kind(head: bytes) -> str | None:
    if head.startswith(b"PK\x03\x04"):
        return "a torch.save (zip + pickle) file"
    if head[:1] == b"\x80":
        return "a pickle file"
    return None


def check_safetensors(path: str | Path, what: str = "weights") -> None:
    """Refuse a file that is not a complete safetensors file (empty, a pickle, truncated, bad header).

    Reads the 8-byte header length and the JSON header only; the tensor bytes are checked for length, not read.
    """
    path = Path(path)
    size = path.stat().st_size
    if size == 0:
        raise ModelFileError(f"{path}: {what} file is empty (0 bytes); copy or download it again")
    with open(path, "rb") as f:
        head = f.read(8)
        pickled = _pickle_kind(head)
        if pickled:
            raise ModelFileError(
                f"{path}: {what} file is {pickled} named .safetensors, not safetensors; pickles are refused "
                "(unpickling can run code). If you trust it, convert it once: python -c \"import torch; "
                "from safetensors.torch import save_file; save_file(torch.load('OLD', weights_only=True), "
                "'NEW.safetensors')\"")
        n = int.from_bytes(head, "little") if len(head) == 8 else 0
        if len(head) < 8 or n < 2 or n > _HEADER_LIMIT:
            raise ModelFileError(f"{path}: {what} file is not a safetensors file (no valid header)")
        if 8 + n > size:
            raise ModelFileError(f"{path}: {what} file is truncated ({size:,} bytes, its header alone needs "
                                 f"{8 + n:,}); copy or download it again")
        try:
            header = json.loads(f.read(n))
            ends = [int(v["data_offsets"][1]) for k, v in header.items() if k != "__metadata__"]
        except (ValueError, TypeError, KeyError, IndexError, AttributeError):
            raise ModelFileError(f"{path}: {what} file is not a safetensors file (unreadable header)") from None
    expected = 8 + n + max(ends, default=0)
    if expected > size:
        raise ModelFileError(f"{path}: {what} file is truncated ({size:,} bytes of {expected:,}); copy or download "
                             "it again")
    from safetensors import safe_open

    try:  # the library's own checks (offsets, dtypes, overlaps): still header-only
        with safe_open(str(path), framework="pt") as sf:
            sf.keys()
    except Exception as e:  # noqa: BLE001 - SafetensorError has no importable base class
        raise ModelFileError(f"{path}: {what} file is not a valid safetensors file ({e})") from None


def load_checked(path: str | Path, what: str) -> dict:
    """The tensors of a small safetensors artifact (embedding, LoRA), checked: floating point and finite."""
    import torch
    from safetensors.torch import load_file

    check_safetensors(path, what)
    state = load_file(str(path))
    for name, t in state.items():
        if not t.is_floating_point():
            raise ModelFileError(f"{path}: {what} tensor {name!r} has dtype {t.dtype}; weights must be floating point")
        if not torch.isfinite(t).all():
            bad = int((~torch.isfinite(t)).sum())
            raise ModelFileError(f"{path}: {what} tensor {name!r} holds {bad} non-finite value(s) (NaN/inf); it "
                                 "would turn every output black. Retrain it (lower the learning rate) or use an "
                                 "earlier checkpoint")
    return state


def read_embedding(path: str | Path, width: int | None = None) -> tuple[str, object]:
    """(token, float tensor [V, D]) of a textual-inversion file `{token: tensor [D] or [V, D]}`, checked."""
    path = artifact_path(path, "embedding")
    if not path.is_file():
        raise FileNotFoundError(f"embedding file not found: {path}")
    if path.suffix != ".safetensors":
        raise ModelFileError(f"{path}: only .safetensors embeddings are loaded (pickled .bin/.pt files are refused); "
                             "convert it with safetensors.torch.save_file({token: tensor}, 'embedding.safetensors')")
    state = load_checked(path, "embedding")
    if len(state) != 1:
        raise ModelFileError(f"{path}: expected one entry {{token: tensor}} (diffusers textual-inversion format), "
                             f"found {len(state)}: {sorted(state)[:8]}")
    token, tensor = next(iter(state.items()))
    if tensor.ndim == 1:
        tensor = tensor[None]
    if tensor.ndim != 2:
        raise ModelFileError(f"{path}: embedding for {token!r} must be [D] or [vectors, D], got {tuple(tensor.shape)}")
    if tensor.shape[0] == 0 or tensor.shape[1] == 0:
        raise ModelFileError(f"{path}: embedding for {token!r} is empty (shape {list(tensor.shape)}); it holds no "
                             "vectors")
    if width is not None and tensor.shape[1] != width:
        raise ModelFileError(f"{path}: embedding width {tensor.shape[1]} does not match the text encoder's width "
                             f"{width}; it was trained for a different base model")
    return token, tensor


def _pickles_in(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.is_file() and p.suffix in PICKLE_SUFFIXES)


def _only_pickles(folder: Path, what: str, convert: str) -> ModelFileError:
    return ModelFileError(
        f"{folder}: {what} holds only pickled weights ({', '.join(_pickles_in(folder)[:4])}); only safetensors are "
        f"loaded, pickles are refused (unpickling can run code). If you trust the files, convert them once: {convert}")


def _convert_model(folder: Path, cls: str) -> str:
    return (f"python -c \"from diffusers import {cls}; {cls}.from_pretrained('{folder}', use_safetensors=False)"
            f".save_pretrained('{folder}-safetensors')\" and load '{folder}-safetensors'")


def check_weights_folder(folder: str | Path, what: str, convert: str | None = None) -> list[Path]:
    """The safetensors weight files of a model folder (config.json + weights), each header-checked.

    `convert`: the command that converts this folder's pickles (default: the one for a UNet folder).
    """
    folder = Path(folder)
    files = sorted(folder.glob("*.safetensors"))
    if not files:
        if _pickles_in(folder):
            raise _only_pickles(folder, what, convert or _convert_model(folder, "UNet2DConditionModel"))
        raise ModelFileError(f"{folder}: {what} holds no weights (*.safetensors)")
    for f in files:
        check_safetensors(f, "weights")
    return files


def check_pipeline_folder(folder: str | Path) -> None:
    """A diffusers SD pipeline folder: model_index.json and safetensors weights in unet/, vae/, text_encoder/."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: not a folder (a diffusers pipeline is a folder with model_index.json)")
    if not (folder / "model_index.json").is_file():
        raise FileNotFoundError(f"{folder}: not a diffusers pipeline folder (no model_index.json)")
    missing = [c for c in WEIGHT_COMPONENTS if not (folder / c).is_dir()]
    if missing:
        raise ModelFileError(f"{folder}: pipeline folder lacks {', '.join(missing)}/ (an SD-1.5 pipeline has "
                             f"{', '.join(WEIGHT_COMPONENTS)})")
    convert = _convert_model(folder, "StableDiffusionPipeline")
    for c in WEIGHT_COMPONENTS:
        check_weights_folder(folder / c, f"the pipeline's {c}", convert)


def resolve_model(model: str, revision: str | None = None) -> Path | None:
    """Check a `--model` argument: a local pipeline folder (checked; returned), or a Hub id (None).

    A path-looking argument that does not exist is "model folder not found", never a Hub-id error. In offline mode
    a Hub id must be in the local cache; its cached snapshot is checked like a local folder.
    """
    local = Path(model).expanduser()
    if local.exists():
        check_pipeline_folder(local)
        return local
    if looks_like_path(model):
        raise FileNotFoundError(f"model folder not found: {model}")
    if _offline():
        snapshot = offline_snapshot(model, revision)
        for c in WEIGHT_COMPONENTS:
            if (snapshot / c).is_dir():
                check_weights_folder(snapshot / c, f"the cached model's {c}")
    return None


def resolve_lora(path: str | Path) -> Path:
    """The LoRA safetensors file of `path` (a file, a folder holding one, or a Hub repo id), checked: finite, floating
    point."""
    p = artifact_path(path, "lora").expanduser()
    if not p.exists():
        raise FileNotFoundError(f"LoRA not found: {p}")
    if p.is_dir():
        named = p / "pytorch_lora_weights.safetensors"
        files = [named] if named.is_file() else sorted(p.glob("*.safetensors"))
        if not files:
            if _pickles_in(p):
                name = _pickles_in(p)[0]
                raise _only_pickles(p, "the LoRA folder",
                                    f"python -c \"import torch; from safetensors.torch import save_file; "
                                    f"save_file(torch.load('{p / name}', weights_only=True), "
                                    f"'{p / 'pytorch_lora_weights.safetensors'}')\"")
            raise ModelFileError(f"{p}: no LoRA weights (*.safetensors) in the folder")
        if len(files) > 1:
            raise ModelFileError(f"{p}: several .safetensors files ({', '.join(f.name for f in files[:4])}); pass "
                                 "the LoRA file itself")
        p = files[0]
    elif p.suffix != ".safetensors":
        raise ModelFileError(f"{p}: only .safetensors LoRA files are loaded (pickles are refused)")
    state = load_checked(p, "LoRA")
    if not state:
        raise ModelFileError(f"{p}: the LoRA file holds no tensors")
    return p
