"""Models and their DKI artifacts, in four steps that go one way: resolve -> check -> identity -> load.

- `resolve`: what `--model` / `--lora` / `--negative-embedding` / `--unet` name, a local path or a Hub repo at a
  commit (the project's one "path or Hub id" rule, `synfashion.hub.refs`)
- `check`: the files, before any library reads them (safetensors only, complete, finite, the right layout)
- `identity`: what a `ModelSpec` loads, for the run's record
- `load`: the `R2RPipeline` with its DKI artifacts
`errors.ModelFileError` is the one error of the four. The pipeline loader, `push-model` and DKI training call these;
the downstream classifier loader uses the same path-or-id rule.
"""

import importlib

# Lazy: `check` and `resolve` import no torch, and callers that only check files (DKI checkpoints, push-model,
# downstream) must not pay for diffusers; `load` imports torch and the pipeline when first used.
_EXPORTS = {
    "ARTIFACT_FILES": ".resolve",
    "DTYPES": ".load",
    "HubArtifact": ".resolve",
    "ModelFileError": ".errors",
    "WEIGHT_COMPONENTS": ".check",
    "artifact_path": ".resolve",
    "cached_snapshot": ".resolve",
    "check_pipeline_folder": ".check",
    "check_safetensors": ".check",
    "check_weights_folder": ".check",
    "dtype_kwargs": ".load",
    "fetched_artifact": ".resolve",
    "hub_artifact": ".resolve",
    "hub_model_commit": ".resolve",
    "is_hub_artifact": ".resolve",
    "load_checked": ".check",
    "load_negative_embedding": ".load",
    "load_pipeline": ".load",
    "loading": ".errors",
    "looks_like_path": ".resolve",
    "model_identity": ".identity",
    "offline_snapshot": ".resolve",
    "read_embedding": ".check",
    "read_embedding_file": ".load",
    "resolve_device": ".load",
    "resolve_dtype": ".load",
    "resolve_lora": ".check",
    "resolve_model": ".check",
    "split_revision": ".resolve",
    "ModelSpec": "..config",
}


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'r2r.models' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name], __name__), name)


__all__ = sorted(_EXPORTS)
