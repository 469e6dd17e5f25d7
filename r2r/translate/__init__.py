"""Translation runs on `R2RPipeline`: `translate-images` (a folder of renders -> PNGs, `folder.py`) and
`translate-dataset` (a built SynFashion split -> a built translated dataset through synfashion's build core,
`dataset.py`). `job.py` holds both jobs' settings (torch-free: the commands in r2r/commands/translate.py build
them), `engine.py` is what both runs share (decoding as the loaders do, the size policy, output checks, PNG),
`source.py` reads the datasets a translation starts from."""

from __future__ import annotations

from .folder import TranslateReport, find_images, translate_folder
from .job import DatasetJob, TranslateJob

__all__ = ["DatasetJob", "TranslateJob", "TranslateReport", "find_images", "translate_folder"]
