"""Checks on model files and model arguments before a library loads them, so bad input reads as one clear line.

Why: diffusers, transformers and safetensors report a pickle renamed `.safetensors` as "header too large", a
truncated download as "incomplete metadata", a folder of `.bin` files as "no file named ... found", a mistyped
local path as "Repo id must use alphanumeric chars" and an uncached Hub id in offline mode as a 60-line
traceback. The checks here read only file headers (and the small artifacts: embeddings, LoRA weights, whole) and
say which file is wrong and what to do. Translation (r2r/models.py), DKI training (r2r/dki/) and
`R2RPipeline.from_pretrained` share them.

A DKI artifact may also be a Hub model repo id (`owner/name`, optionally `owner/name@revision`), as `r2r push-model`
publishes them: `hub_artifact` finds the file diffusers would load (learned_embeds.safetensors,
pytorch_lora_weights.safetensors, else the repo's one top-level .safetensors file), downloads it with
huggingface_hub into the usual cache (pinned to the commit the revision names at that moment; from the cache alone
in offline mode), and the checks above then run on the cached file as on a local one. The repo id and commit are
remembered for the run's record (`fetched_artifact`).

This module never unpickles anything: it recognises pickles by their first bytes and refuses them.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

# Components of an SD-1.5 pipeline folder that hold weights (the others are configs / vocabularies).
WEIGHT_COMPONENTS = ("unet", "vae", "text_encoder")
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl")
FILE_SUFFIXES = (".safetensors", *PICKLE_SUFFIXES)  # an argument ending so names a file, never a repo
# The file of each artifact kind diffusers looks for in a repo (TEXT_INVERSION_NAME_SAFE, LORA_WEIGHT_NAME_SAFE).
ARTIFACT_FILES = {"embedding": "learned_embeds.safetensors", "lora": "pytorch_lora_weights.safetensors"}
_HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*(/[A-Za-z0-9][\w.-]*)?(@[\w./-]+)?")
_HEADER_LIMIT = 100 * 2**20  # safetensors refuses larger headers too


class ModelFileError(ValueError):
    """A model argument or file that cannot be loaded; the message names it and the problem (one line).

    Missing things (a folder, model_index.json) are FileNotFoundError instead, as Python names them."""


def looks_like_path(name: str) -> bool:
    """Whether `name` was meant as a local path rather than a Hub id (`org/name` or `name`).

    Hub ids have at most one '/', never start with '.', '/' or '~' and never hold a backslash; anything else
    that does not exist is a missing folder, not a malformed repo id.
    """
    return (name.startswith((".", "/", "~")) or name.endswith("/") or "\\" in name or name.count("/") > 1
            or os.path.isabs(name))


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


def _offline() -> bool:
    from huggingface_hub import constants

    return bool(constants.HF_HUB_OFFLINE)


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
        snapshot = cached_snapshot(model, revision)
        if snapshot is None:
            raise ModelFileError(
                f"{model}: not in the local Hugging Face cache, and offline mode is on (HF_HUB_OFFLINE=1); download "
                f"it once with network access (hf download {model}), or pass a local model folder")
        for c in WEIGHT_COMPONENTS:
            if (snapshot / c).is_dir():
                check_weights_folder(snapshot / c, f"the cached model's {c}")
    return None


_MODEL_COMMITS: dict[tuple[str, str | None], str] = {}


def hub_model_commit(model: str, revision: str | None = None) -> str:
    """The commit a Hub model id (at `revision`) names, asked once per process and then fixed, so the identity a run
    records and the snapshot it loads agree, and do not depend on what the cache held before. Offline: the cached
    snapshot's commit (an uncached id is an error)."""
    if looks_like_path(model):  # ./x, /x, ~/x: a folder that is missing, never a Hub id
        raise FileNotFoundError(f"model folder not found: {model}")
    key = (model, revision)
    if key not in _MODEL_COMMITS:
        if _offline():
            snapshot = cached_snapshot(model, revision)
            if snapshot is None:
                raise ModelFileError(
                    f"{model}: not in the local Hugging Face cache, and offline mode is on (HF_HUB_OFFLINE=1); "
                    f"download it once with network access (hf download {model}), or pass a local model folder")
            _MODEL_COMMITS[key] = snapshot.name
        else:
            from huggingface_hub import HfApi

            api = HfApi()
            with _hub_errors(model, model, revision, "pipeline", api.endpoint):
                _MODEL_COMMITS[key] = api.model_info(model, revision=revision).sha
    return _MODEL_COMMITS[key]


def cached_snapshot(repo_id: str, revision: str | None = None) -> Path | None:
    """The cached snapshot folder of a Hub model that has its model_index.json, or None."""
    from huggingface_hub import try_to_load_from_cache

    try:
        found = try_to_load_from_cache(repo_id, "model_index.json", revision=revision)
    except Exception:  # noqa: BLE001 - a malformed id is simply "not cached"
        return None
    return Path(found).parent if isinstance(found, str) else None


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


# --------------------------------------------------------------------------------------------------- Hub artifacts
@dataclass(frozen=True)
class HubArtifact:
    """A DKI artifact fetched from a Hub model repo: which repo, revision asked, commit got, file, cached path."""

    repo_id: str
    revision: str | None
    commit: str
    filename: str
    path: Path

    def record(self) -> dict:
        return {"repo_id": self.repo_id, "revision": self.revision, "commit": self.commit, "file": self.filename}


_FETCHED: dict[tuple[str, str], HubArtifact] = {}


def is_hub_artifact(arg: str | Path) -> bool:
    """Whether an artifact argument names a Hub repo: not an existing path, not path-looking, not a file name."""
    text = str(arg)
    if Path(text).expanduser().exists() or looks_like_path(text) or text.endswith(FILE_SUFFIXES):
        return False
    return _HUB_ID.fullmatch(text) is not None


def split_revision(arg: str) -> tuple[str, str | None]:
    """`owner/name@revision` -> ("owner/name", "revision"); no "@" -> (arg, None)."""
    repo_id, _, revision = arg.partition("@")
    return repo_id, revision or None


def artifact_path(arg: str | Path, kind: str) -> Path:
    """The local path of an artifact argument: the argument itself, or the cached file of a Hub repo id."""
    return hub_artifact(str(arg), kind).path if is_hub_artifact(arg) else Path(arg)


def fetched_artifact(arg: str | None, kind: str) -> HubArtifact | None:
    """What `hub_artifact` fetched for `arg` in this process (None for local paths, or before any fetch)."""
    return _FETCHED.get((kind, str(arg))) if arg else None


def hub_artifact(arg: str, kind: str) -> HubArtifact:
    """Download (or, offline, find in the cache) the `kind` artifact ("embedding", "lora") of a Hub repo id.

    The file: diffusers' name for the kind, else the repo's single top-level .safetensors file. Errors are one
    ModelFileError line naming the repo (not found or private, a repo with only pickles, offline and not cached).
    """
    key = (kind, arg)
    if key in _FETCHED:
        return _FETCHED[key]
    repo_id, revision = split_revision(arg)
    what = {"embedding": "negative embedding", "lora": "LoRA"}[kind]
    if _offline():
        found = _cached_artifact(repo_id, revision, kind)
        if found is None:
            raise ModelFileError(
                f"{arg}: not a local path, and as a Hub repo its {what} is not in the local Hugging Face cache while "
                f"offline mode is on (HF_HUB_OFFLINE=1); download it once with network access (hf download "
                f"{repo_id}), or pass a local file")
        artifact = found
    else:
        artifact = _download_artifact(arg, repo_id, revision, kind, what)
    _FETCHED[key] = artifact
    return artifact


def _choose_file(names: list[str], kind: str, arg: str, what: str) -> str:
    top = sorted(n for n in names if "/" not in n)
    if ARTIFACT_FILES[kind] in top:
        return ARTIFACT_FILES[kind]
    safe = [n for n in top if n.endswith(".safetensors")]
    if len(safe) == 1:
        return safe[0]
    if safe:
        raise ModelFileError(f"{arg}: the repo holds several .safetensors files ({', '.join(safe[:4])}) and no "
                             f"{ARTIFACT_FILES[kind]}; download the {what} you mean and pass the file")
    pickles = [n for n in top if n.endswith(PICKLE_SUFFIXES)]
    if pickles:
        raise ModelFileError(f"{arg}: the repo holds only pickled weights ({', '.join(pickles[:4])}); only safetensors "
                             "are loaded, pickles are refused (unpickling can run code)")
    raise ModelFileError(f"{arg}: the repo holds no {what} ({ARTIFACT_FILES[kind]} or another .safetensors file at "
                         "its top level)")


@contextlib.contextmanager
def _hub_errors(arg: str, repo_id: str, revision: str | None, what: str, endpoint: str) -> Iterator[None]:
    """The Hub's failures while reading a model repo as one ModelFileError naming the argument and the cause."""
    from huggingface_hub.errors import HfHubHTTPError, RepositoryNotFoundError, RevisionNotFoundError

    try:
        yield
    except RevisionNotFoundError:
        raise ModelFileError(f"{arg}: model repo {repo_id} has no revision {revision!r}") from None
    except RepositoryNotFoundError:
        raise ModelFileError(f"{arg}: not a local path, and no model repo {repo_id} on {endpoint} (or it is "
                             "private and the token, HF_TOKEN or `hf auth login`, cannot read it)") from None
    except HfHubHTTPError as e:
        status = e.response.status_code if e.response is not None else "?"
        raise ModelFileError(f"{arg}: {endpoint} answered {status} while fetching the {what} of "
                             f"{repo_id}") from None
    except (OSError, _transport_error()) as e:  # no network, a refused connection, a proxy, a timeout
        first = next((line.strip() for line in str(e).splitlines() if line.strip()), type(e).__name__)
        raise ModelFileError(f"{arg}: cannot reach {endpoint} to fetch the {what} of {repo_id} ({first}); "
                             "check the network, or pass a local file") from None


def _download_artifact(arg: str, repo_id: str, revision: str | None, kind: str, what: str) -> HubArtifact:
    from huggingface_hub import HfApi, hf_hub_download

    api = HfApi()
    with _hub_errors(arg, repo_id, revision, what, api.endpoint):
        info = api.model_info(repo_id, revision=revision)
        filename = _choose_file([s.rfilename for s in info.siblings or []], kind, arg, what)
        path = hf_hub_download(repo_id, filename, revision=info.sha)
    return HubArtifact(repo_id, revision, info.sha, filename, Path(path))


def _transport_error() -> type[BaseException]:
    try:  # the HTTP library huggingface_hub uses (httpx2 in 2.x)
        from huggingface_hub.utils import httpx as http
    except ImportError:  # pragma: no cover
        import httpx as http  # type: ignore[no-redef]
    return http.TransportError


def _cached_artifact(repo_id: str, revision: str | None, kind: str) -> HubArtifact | None:
    """The cached file of diffusers' name for `kind` (offline: the repo listing is not available)."""
    from huggingface_hub import try_to_load_from_cache

    filename = ARTIFACT_FILES[kind]
    try:
        found = try_to_load_from_cache(repo_id, filename, revision=revision)
    except Exception:  # noqa: BLE001 - a malformed id is simply "not cached"
        return None
    if not isinstance(found, str):
        return None
    path = Path(found)
    return HubArtifact(repo_id, revision, path.parent.name, filename, path)  # .../snapshots/<commit>/<file>


@contextlib.contextmanager
def loading(what: str, also: tuple[type[BaseException], ...] = ()) -> Iterator[None]:
    """Turn a loader's OSError / SafetensorError (after the checks above), and the types in `also`, into one line
    naming `what`."""
    from synfashion.fs.space import NoSpaceError

    try:
        yield
    except (ModelFileError, NoSpaceError):
        raise
    except Exception as e:
        if not (isinstance(e, (OSError, *also)) or type(e).__name__ == "SafetensorError"):
            raise
        first = next((line.strip() for line in str(e).splitlines() if line.strip()), type(e).__name__)
        raise ModelFileError(f"cannot load {what}: {first}") from None
