"""Publish a DKI training folder (`r2r train-negative` / `train-positive` output) as a Hub model repo, in one commit.

What goes up is what the run recorded as its outputs (`OUT/.r2r-dki/run.json`, r2r/dki/outdir.py), each file
re-hashed against that record first: the safetensors artifacts (`learned_embeds.safetensors`, the LoRA's
`pytorch_lora_weights.safetensors` or a full pipeline's folders: the names diffusers' `load_textual_inversion`,
`load_lora_weights` and `from_pretrained` look for), the model card README.md, the loss curve and the training
record. Never the run's private state (`.r2r-dki/`), and checkpoints (`checkpoints/`, whose optimizer and RNG states
are torch.save pickles) or TensorBoard logs only when asked. A file changed since training, a run that has not
finished, an artifact that fails the loaders' checks (r2r/models/check.py), a card without `license:` or a record
naming local absolute paths (an older r2r's: this one records paths relative to the run or by name,
`outputs.public_path`) is refused before anything is sent.

The commit itself is synfashion's (`synfashion.hub.push.push_files`): private by default, `--public` prints a licence
warning (the SynFashion one when the card says the weights derive from CC BY-NC-ND 4.0 renders), the token is never
printed, errors name the repo and the fix, an interrupted push resends only what did not arrive. This module
trains nothing and writes nothing locally.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from synfashion.fs.filehash import file_sha256

from .checkpoint import STATE_FILE, TrainerState, checkpoint_problem, list_checkpoints, run_of
from .errors import DKIError
from .launch import LOG_DIR
from .outdir import STATE_DIR, TrainingFolder

REPO_TYPE = "model"
SYNFASHION_LICENSE = "cc-by-nc-nd-4.0"
# Paths a DKI push may have put in a repo: a re-push deletes those the new folder lacks (never other files).
MANAGED = ("learned_embeds.safetensors", "pytorch_lora_weights.safetensors", "loss_curve.png", "training_run.json",
           "model_index.json", "unet/", "vae/", "text_encoder/", "tokenizer/", "scheduler/", "checkpoints/",
           f"{LOG_DIR}/")

SYNFASHION_WARNING = """\
WARNING: this makes {repo} PUBLIC. The card's license is {license}.
These weights were trained on SynFashion renders, which are licensed CC BY-NC-ND 4.0 (Attribution, NonCommercial,
NoDerivatives). Whether trained weights are a derivative under NoDerivatives is not settled: the model card says
to treat them as one and to ask the rights holders (Style3D Research / the FashionR2R authors) before publishing.
NonCommercial applies to them in any case: no commercial use."""

OTHER_WARNING = """\
WARNING: this makes {repo} PUBLIC. The card's license is {license}.
These weights were trained on your own images: their licences, and the base model's, decide whether you may
publish them. Set the card's `license:` to the right identifier first if it is still `other`."""


@dataclass(frozen=True)
class ModelFolder:
    """A finished DKI training folder, checked: what to publish (path in repo -> (local path, sha256))."""

    folder: Path
    method: str  # "negative" | "positive"
    run_id: str
    license: str
    files: dict[str, tuple[Path, str]]
    left_out: tuple[str, ...]  # what is in the folder and not published (for the summary)

    @property
    def artifact(self) -> str:
        if "learned_embeds.safetensors" in self.files:
            return "embedding"
        if "pytorch_lora_weights.safetensors" in self.files:
            return "lora"
        return "pipeline"


def _card_license(card: Path) -> str | None:
    from huggingface_hub import ModelCard

    from cards.common import CardError, parse_card

    try:
        return parse_card(card.read_text(encoding="utf-8"), ModelCard).data.to_dict().get("license") or None
    except CardError as e:  # malformed YAML header
        raise DKIError(f"{card}: {e}; train again or fix the card") from None


def _check_artifacts(folder: Path, names: set[str]) -> None:
    """The loaders' own checks (r2r/models/check.py): safetensors only, complete, floating point, finite."""
    from ..models import ModelFileError, check_pipeline_folder, read_embedding, resolve_lora

    try:
        if "learned_embeds.safetensors" in names:
            read_embedding(folder / "learned_embeds.safetensors")
        if "pytorch_lora_weights.safetensors" in names:
            resolve_lora(folder / "pytorch_lora_weights.safetensors")
        if "model_index.json" in names:
            check_pipeline_folder(folder)
    except (ModelFileError, FileNotFoundError) as e:
        raise DKIError(f"not pushed: {e}") from None


def collect(folder: str | Path, *, include_checkpoints: bool = False, include_logs: bool = False) -> ModelFolder:
    """Check a DKI training folder and list what a push publishes (see the module docstring)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DKIError(f"{folder} is not a folder: pass the --out folder of r2r train-negative / train-positive")
    record = TrainingFolder(folder, "", []).read_record()
    if record is None:
        raise DKIError(f"{folder} has no training run record ({STATE_DIR}/run.json): it is not the output folder of "
                       "r2r train-negative / train-positive (or was written by an older r2r)")
    outputs: dict = record.get("outputs") or {}
    pending = sorted(name for name, entry in outputs.items() if entry.get("pending"))
    if pending:
        raise DKIError(f"{folder}: the training run was still writing {', '.join(pending[:3])} when it stopped; "
                       "finish it (run the same command with --resume) before pushing")
    for needed in ("README.md", "training_run.json"):
        if needed not in outputs:
            raise DKIError(f"{folder}: the run has not finished ({needed} was never written); finish it with "
                           "--resume before pushing")
    files: dict[str, tuple[Path, str]] = {}
    for name, entry in sorted(outputs.items()):
        if name.startswith(f"{LOG_DIR}/") and not include_logs:
            continue
        path = folder / name
        if not path.is_file():
            raise DKIError(f"{path}: recorded as an output of the run but missing; train again (--overwrite) or "
                           "restore it")
        digest = file_sha256(path)
        if path.stat().st_size != entry.get("size") or digest != entry.get("sha256"):
            raise DKIError(f"{path} changed since training (its size or sha256 differs from the run record); "
                           "push only what the run wrote: restore it or train again")
        files[name] = (path, digest)
    license_id = _card_license(folder / "README.md")
    if license_id is None:
        raise DKIError(f"{folder / 'README.md'} has no `license:` in its YAML header: a DKI model card must carry "
                       f"its license ({SYNFASHION_LICENSE} for weights trained on SynFashion); train again")
    _check_artifacts(folder, set(files))
    paths = local_paths(folder / "training_run.json")
    if paths:  # the user's layout is never published
        raise DKIError(f"not pushed: {folder / 'training_run.json'} (and the card's data line) name local paths as an "
                       f"older r2r recorded them, e.g. {paths[0]}; train again with this r2r (it records paths "
                       "relative to the run folder, or by name)")
    left_out = [f"{STATE_DIR}/"]
    mine = [path for _, path in list_checkpoints(folder) if run_of(path) == record["run_id"]]
    if include_checkpoints:
        for path in mine:
            problem = checkpoint_problem(path)
            if problem:
                raise DKIError(f"{path}: {problem}; pass the folder without --include-checkpoints, or remove that "
                               "checkpoint")
            state = TrainerState.from_file(path / STATE_FILE)
            for name in [*state.files, STATE_FILE]:
                rel = f"checkpoints/{path.name}/{name}"
                files[rel] = (path / name, file_sha256(path / name))
    elif mine:
        left_out.append(f"checkpoints/ ({len(mine)} checkpoint(s): --include-checkpoints)")
    if not include_logs and any(n.startswith(f"{LOG_DIR}/") for n in outputs):
        left_out.append(f"{LOG_DIR}/ (TensorBoard: --include-logs)")
    return ModelFolder(folder, record.get("method", ""), record["run_id"], license_id, files, tuple(left_out))


def load_hint(repo_id: str, artifact: str, revision: str | None = None) -> str:
    rev = f', revision="{revision}"' if revision and revision != "main" else ""
    pinned = f"{repo_id}@{revision}" if rev else repo_id
    if artifact == "embedding":
        return (f'pipe.load_textual_inversion("{repo_id}"{rev}), or r2r translate-images --negative-embedding '
                f"{pinned} ...")
    if artifact == "lora":
        return f'pipe.load_lora_weights("{repo_id}"{rev}), or r2r translate-images --lora {pinned} ...'
    return (f'StableDiffusionPipeline.from_pretrained("{repo_id}"{rev}), or r2r translate-dataset --model {repo_id}'
            + (f" --model-revision {revision}" if rev else "") + " ...")


def local_paths(record_file: Path) -> list[str]:
    """Absolute local paths the training record names (what an r2r older than `outputs.public_path` recorded: the
    paths as they were typed at training). A record this r2r writes names none."""
    import json

    from .outputs import PATH_FIELDS

    try:
        record = json.loads(record_file.read_text())
    except (OSError, ValueError):
        return []
    found: list[str] = []

    def walk(value, key=None) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                walk(v, k)
        elif isinstance(value, list):
            for v in value:
                walk(v, key)
        elif isinstance(value, str) and (key in PATH_FIELDS or key == "description"):
            found.extend(word for word in value.split() if word.startswith(("/", "~"))
                         or (len(word) > 2 and word[1:3] == ":\\"))

    walk(record)
    return sorted(set(found))


def push_model(folder: str | Path, repo_id: str, *, private: bool = True, allow_public: bool = False,
               revision: str | None = None, token: str | None = None, commit_message: str | None = None,
               include_checkpoints: bool = False, include_logs: bool = False, endpoint: str | None = None,
               console=None, progress: bool = True):
    """Push a finished DKI training folder to the model repo `repo_id` (created private if needed) as one commit.

    Returns synfashion's `PushResult`. Bad folders raise DKIError; Hub failures raise `synfashion.hub.HubError`
    subclasses (a RuntimeError), each one line naming the repo and the fix.
    """
    from rich.console import Console

    from synfashion.hub.errors import LicenseGuardError
    from synfashion.hub.push import LicenseGuard, check_repo_id, local_file, push_files

    console = console or Console(stderr=True, soft_wrap=True)
    check_repo_id(repo_id)
    found = collect(folder, include_checkpoints=include_checkpoints, include_logs=include_logs)
    synfashion = found.license == SYNFASHION_LICENSE
    guard = LicenseGuard(
        refuse_public=("refusing to make {repo} public without an explicit flag: "
                       + ("these weights were trained on SynFashion renders (CC BY-NC-ND 4.0). " if synfashion else
                          "the licences of the training images and the base model decide whether you may. ")
                       + "Pass --public once you have read the model card's license section."),
        existing_public=("model repo {repo} already exists and is PUBLIC: pushing these DKI weights there publishes "
                         "them. Make the repo private on the Hub, or pass --public after reading the model card's "
                         "license section."),
        warning=SYNFASHION_WARNING if synfashion else OTHER_WARNING,
    )
    if not private and not allow_public:
        raise LicenseGuardError(guard.refuse_public.format(repo=repo_id))
    console.print(f"{found.folder}: {len(found.files)} file(s) to publish ({found.method} DKI, {found.artifact}, "
                  f"license {found.license}); not published: {', '.join(found.left_out)}", highlight=False)
    files = {rel: local_file(path, digest) for rel, (path, digest) in found.files.items()}
    message = commit_message or f"Upload {found.method} DKI {found.artifact} (r2r run {found.run_id[:8]})"
    result = push_files(files, repo_id, repo_type=REPO_TYPE, guard=guard, license_id=found.license,
                        managed_prefixes=MANAGED, private=private, allow_public=allow_public, revision=revision,
                        token=token, commit_message=message, endpoint=endpoint, console=console, progress=progress)
    console.print(f"load it with {load_hint(repo_id, found.artifact, revision)}", highlight=False)
    return result
