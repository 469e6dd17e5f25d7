"""Building a dataset folder: plan shards, write every output through the shard writers, finalize manifest and card."""

from .release import (
    DEFAULT_SHARD_SIZE, FORMATS, MANIFEST, STATE_DIR, BuildConfig, BuildError, BuildResult, RejectedInputsError,
    build_dataset,
)

__all__ = ["DEFAULT_SHARD_SIZE", "FORMATS", "MANIFEST", "STATE_DIR", "BuildConfig", "BuildError", "BuildResult",
           "RejectedInputsError", "build_dataset"]
