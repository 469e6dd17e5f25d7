"""The two translation jobs as plain settings: `TranslateJob` (`translate-images`) and `DatasetJob`
(`translate-dataset`), each field's default written once, with the option that sets it.

Why a module of its own: `r2r/commands/translate.py` builds these from arguments without importing torch (the
work, in folder.py and dataset.py, does), and `r2r ablate` takes the translation settings it shares with
translate-dataset from `DatasetJob` (`reuse`). No behaviour beyond validation.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from synfashion.cliutil import comma_text, comma_tuple, comma_tuple_or_none, format_size, option, parse_size, reuse

from ..config import ModelSpec, RIGParams
from .sizes import SizePolicy

DEFAULT_SHARD_SIZE = 256 * 2**20  # estimated PNG bytes per shard (see dataset.py's _estimated_png_bytes)


@dataclass(frozen=True)
class TranslateJob:
    input: Path = option("--input", type=Path, help="folder of rendered images (searched recursively)")
    output: Path = option("--output", type=Path, help="output folder")
    model: ModelSpec
    params: RIGParams = RIGParams()
    batch_size: int = option("--batch-size", default=1, type=int, help="images per pipeline call (same-size images)")
    seed: int = option("--seed", default=0, type=int, help="seed recorded with the run (RIG itself draws no noise)")
    # translate again even where an output exists, and accept changed settings
    overwrite: bool = option("--overwrite", default=False, help="translate again where outputs exist")
    size: SizePolicy = SizePolicy()  # sizes not divisible by 8: rejected by name, padded, or one size for all


@dataclass(frozen=True)
class DatasetJob:
    """One translate-dataset run. `splits`, `categories`, `limit` (per split) choose the source records."""

    source: str = option("source",
                         help="built SynFashion folder, Hub dataset id (namespace/name), or WebDataset folder")
    out: Path = option("out", type=Path,
                       help="output folder (resumed if it holds an interrupted run of these settings)")
    model: ModelSpec
    params: RIGParams = RIGParams()
    splits: tuple[str, ...] = option("--split", default=("test",), dest="splits", append=True,
                                     help="split to translate (repeatable; default {default})")
    categories: tuple[str, ...] | None = option("--categories", default=None, parse=comma_tuple_or_none,
                                                help="comma-separated categories to keep (default all)")
    limit: int | None = option("--limit", default=None, type=int,
                               help="at most N images per split (a fixed hash-chosen subset)")
    batch_size: int = reuse(TranslateJob, "batch_size")
    seed: int = reuse(TranslateJob, "seed")
    size: SizePolicy = SizePolicy()
    allow_rejected: bool = option("--allow-rejected", default=False,
                                  help="translate the rest when some images cannot be (each is listed in the "
                                       "manifest)")
    shard_size: int = option("--shard-size", default=DEFAULT_SHARD_SIZE, parse=parse_size, show=format_size,
                             help="estimated PNG bytes per shard")
    formats: tuple[str, ...] = option("--formats", default=("parquet", "webdataset"), parse=comma_tuple,
                                      show=comma_text, help="comma-separated: parquet, webdataset")
    num_workers: int = option("--num-workers", default=2, type=int, help="image decoding processes")
    overwrite: bool = option("--overwrite", default=False,
                             help="replace an earlier translated dataset of other settings in OUT (only its own "
                                  "files)")
    revision: str | None = option("--revision", default=None,
                                  help="Hub revision (branch, tag or commit) of a Hub source")
    evaluation: dict | None = None  # an `r2r evaluate` result, shown in the card
    rank: int = 0
    world_size: int = 1
    finalize_only: bool = option("--finalize", default=False,
                                 help="only write the manifest and card once every rank has finished (after --rank "
                                      "runs)")

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise ValueError(f"batch size must be >= 1, got {self.batch_size}")
        if self.limit is not None and self.limit < 1:
            raise ValueError(f"--limit must be >= 1, got {self.limit}")
        if not 0 <= self.rank < self.world_size:
            raise ValueError(f"need 0 <= rank < world size, got rank {self.rank} of {self.world_size}")
        if self.overwrite and self.world_size > 1:
            raise ValueError("--overwrite clears the folder: run it in one process, not in a distributed run")
