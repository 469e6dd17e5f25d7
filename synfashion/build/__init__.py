"""Building a dataset folder: plan shards, write every output through the shard writers, finalize manifest and card.

`core.py` is the path every dataset takes (a planned build + a byte source -> outputs -> manifest, card);
`release.py` feeds it a scanned release (`synfashion build`), r2r's translate-dataset feeds it staged bytes
(`staging.py`); `state.py` holds resume and ownership, `plan.py` the shard plan, `output_jobs.py` one output file.
"""

from ..manifest import MANIFEST
from .core import FORMATS, OutputSettings, PlannedBuild, assemble_manifest, finalize, write_outputs
from .release import DEFAULT_SHARD_SIZE, BuildConfig, BuildResult, RejectedInputsError, ReleaseFiles, build_dataset
from .state import STATE_DIR, BuildError, BuildState, fingerprint_of

__all__ = ["DEFAULT_SHARD_SIZE", "FORMATS", "MANIFEST", "STATE_DIR", "BuildConfig", "BuildError", "BuildResult",
           "BuildState", "OutputSettings", "PlannedBuild", "RejectedInputsError", "ReleaseFiles", "assemble_manifest",
           "build_dataset", "finalize", "fingerprint_of", "write_outputs"]
