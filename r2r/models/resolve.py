"""Resolve: what `--model`, `--negative-embedding`, `--lora` and `--unet` name, as a local path or a Hub repo pinned
to a commit. First of the four steps (resolve -> check -> identity -> load); nothing here reads a weight.

The "path or Hub id" rule is the project's one (`synfashion.hub.refs`): `./x`, `~/x`, `/x`, `a/b/c` are paths (a
missing one is "not found", never a Hub lookup). A DKI artifact may be a Hub model repo id (`owner/name`, optionally
`owner/name@revision`), as `r2r push-model` publishes them: `hub_artifact` finds the file diffusers would load
(learned_embeds.safetensors, pytorch_lora_weights.safetensors, else the repo's one top-level .safetensors file),
downloads it with huggingface_hub into the usual cache (pinned to the commit the revision names at that moment;
from the cache alone in offline mode). The repo id and commit are remembered for the run's record
(`fetched_artifact`). Hub failures are one line (`synfashion.hub.refs.hub_read_error`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from synfashion.hub.errors import hub_read_error
from synfashion.hub.refs import HUB_ID, looks_like_path, split_revision

from .errors import ModelFileError


PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl")
FILE_SUFFIXES = (".safetensors", *PICKLE_SUFFIXES)  # an argument ending so names a file, never a repo
# The file of each artifact kind diffusers looks for in a repo (TEXT_INVERSION_NAME_SAFE, LORA_WEIGHT_NAME_SAFE).
ARTIFACT_FILES = {"embedding": "learned_embeds.safetensors", "lora": "pytorch_lora_weights.safetensors"}


def _offline() -> bool:
    from huggingface_hub import constants

    return bool(constants.HF_HUB_OFFLINE)


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
            _MODEL_COMMITS[key] = offline_snapshot(model, revision).name
        else:
            from huggingface_hub import HfApi

            api = HfApi()
            with _hub_errors(model, model, revision, "pipeline"):
                _MODEL_COMMITS[key] = api.model_info(model, revision=revision).sha
    return _MODEL_COMMITS[key]


def offline_snapshot(model: str, revision: str | None = None) -> Path:
    """The cached snapshot of a Hub model id in offline mode; an uncached one is one ModelFileError line."""
    snapshot = cached_snapshot(model, revision)
    if snapshot is None:
        raise ModelFileError(
            f"{model}: not in the local Hugging Face cache, and offline mode is on (HF_HUB_OFFLINE=1); download it "
            f"once with network access (hf download {model}), or pass a local model folder")
    return snapshot


def cached_snapshot(repo_id: str, revision: str | None = None) -> Path | None:
    """The cached snapshot folder of a Hub model that has its model_index.json, or None."""
    from huggingface_hub import try_to_load_from_cache

    try:
        found = try_to_load_from_cache(repo_id, "model_index.json", revision=revision)
    except Exception:  # noqa: BLE001 - a malformed id is simply "not cached"
        return None
    return Path(found).parent if isinstance(found, str) else None

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
        """What a run records: the repo, the commit and the file. Not the revision as asked: `owner/name` and
        `owner/name@<that commit>` load the same bytes, so they are the same setting."""
        return {"repo_id": self.repo_id, "commit": self.commit, "file": self.filename}


_FETCHED: dict[tuple[str, str], HubArtifact] = {}


def is_hub_artifact(arg: str | Path) -> bool:
    """Whether an artifact argument names a Hub repo: not an existing path, not path-looking, not a file name."""
    text = str(arg)
    if Path(text).expanduser().exists() or looks_like_path(text) or text.endswith(FILE_SUFFIXES):
        return False
    return HUB_ID.fullmatch(text) is not None


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
def _hub_errors(arg: str, repo_id: str, revision: str | None, what: str) -> Iterator[None]:
    """The Hub's failures while reading a model repo as one ModelFileError naming the argument and the cause."""
    try:
        yield
    except ModelFileError:
        raise
    except Exception as e:  # noqa: BLE001 - mapped when it is a Hub/network failure, else re-raised
        line = hub_read_error(e, typed=arg, repo_id=repo_id, repo_type="model", revision=revision, what=what)
        if line is None:
            raise
        raise ModelFileError(line) from None


def _download_artifact(arg: str, repo_id: str, revision: str | None, kind: str, what: str) -> HubArtifact:
    from huggingface_hub import HfApi, hf_hub_download

    api = HfApi()
    with _hub_errors(arg, repo_id, revision, what):
        info = api.model_info(repo_id, revision=revision)
        filename = _choose_file([s.rfilename for s in info.siblings or []], kind, arg, what)
        # by the revision as asked (the default branch when none), not by info.sha: the cache then records which
        # commit that revision named (refs/<revision>), so offline mode finds the file by the same argument
        path = Path(hf_hub_download(repo_id, filename, revision=revision))
    commit = path.parent.name  # .../snapshots/<commit>/<file>: the commit the download resolved
    return HubArtifact(repo_id, revision, commit, filename, path)


def _cached_artifact(repo_id: str, revision: str | None, kind: str) -> HubArtifact | None:
    """The cached file of diffusers' name for `kind` (offline: the repo listing is not available)."""
    from huggingface_hub import try_to_load_from_cache

    filename = ARTIFACT_FILES[kind]
    try:
        found = try_to_load_from_cache(repo_id, filename, revision=revision)
    except Exception:  # noqa: BLE001 - a malformed id is simply "not cached"
        return None
    if not isinstance(found, str):
        found = _only_cached_snapshot(repo_id, filename) if revision is None else None
        if found is None:
            return None
    path = Path(found)
    return HubArtifact(repo_id, revision, path.parent.name, filename, path)  # .../snapshots/<commit>/<file>


def _only_cached_snapshot(repo_id: str, filename: str) -> str | None:
    """`filename` of the one cached commit of a repo that holds it, when the cache does not say which commit the
    default branch names (it was downloaded as `owner/name@<commit>`); several cached commits: ambiguous, an error."""
    from huggingface_hub import constants
    from huggingface_hub.file_download import repo_folder_name

    snapshots = Path(constants.HF_HUB_CACHE) / repo_folder_name(repo_id=repo_id, repo_type="model") / "snapshots"
    found = sorted(p for p in snapshots.glob(f"*/{filename}") if p.is_file())
    if len(found) > 1:
        raise ModelFileError(
            f"{repo_id}: offline, the local Hugging Face cache holds {filename} of {len(found)} commits and no record "
            f"of which one the default branch names; pin one: {repo_id}@{found[0].parent.name}")
    return str(found[0]) if found else None
