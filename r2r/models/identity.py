"""Identity: what a `ModelSpec` loads, as the run's record says it (config fingerprint, weight sizes, artifact hashes,
the commit a Hub id names). Third of the four steps (resolve -> check -> identity -> load); it loads no weights.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict
from pathlib import Path

from synfashion.fs.filehash import file_sha256

from ..config import ModelSpec
from .check import resolve_lora
from .resolve import fetched_artifact, hub_artifact, hub_model_commit, is_hub_artifact


def _folder_identity(root: Path) -> dict:
    """A pipeline folder's config fingerprint, weight file sizes and the diffusers version that saved it."""
    configs = sorted([root / "model_index.json", *root.glob("*/config.json")])
    index = json.loads((root / "model_index.json").read_text())
    return {
        "config_sha256": hashlib.sha256(b"".join(p.read_bytes() for p in configs if p.is_file())).hexdigest(),
        "weights": {str(p.relative_to(root)): p.stat().st_size for p in sorted(root.glob("*/*.safetensors"))},
        "diffusers_version_saved": index.get("_diffusers_version"),
    }


def model_identity(spec: ModelSpec) -> dict:
    """What is loaded: the spec, the model's config fingerprint and weight sizes, artifact hashes; for a Hub id, the
    commit its revision names (a branch moves, a commit does not), whatever the cache held before."""
    ident: dict = {"spec": asdict(spec)}
    root = Path(spec.model)
    if root.is_dir():
        ident["model_path"] = str(root.resolve())
        ident.update(_folder_identity(root))
    else:  # the commit fixes every file; asked before loading, and the load uses it (load_pipeline)
        ident["hub_id"] = spec.model
        ident["hub_commit"] = hub_model_commit(spec.model, spec.revision)
        ident["spec"]["revision"] = None  # the commit says it: `--revision main` and none are the same setting
    for key, kind in (("negative_embedding", "embedding"), ("lora", "lora")):
        value = getattr(spec, key)
        if not value:
            continue
        if is_hub_artifact(value):  # repo id + the commit that was downloaded, and the file's hash
            artifact = fetched_artifact(value, kind) or hub_artifact(value, kind)
            ident["spec"][key] = artifact.repo_id  # `owner/name@<commit>` is `owner/name` at that commit
            ident[f"{key}_hub"] = artifact.record()
            ident[f"{key}_sha256"] = file_sha256(artifact.path)
        elif Path(value).is_file():
            ident[f"{key}_sha256"] = file_sha256(Path(value))
        elif key == "lora" and Path(value).is_dir():  # the weights file the folder holds: its bytes, not its name
            ident[f"{key}_sha256"] = file_sha256(resolve_lora(value))
    return ident
