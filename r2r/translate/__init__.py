"""Translation runs on `R2RPipeline`: `translate-images` (a folder of renders -> PNGs, `folder.py`) and
`translate-dataset` (a built SynFashion split -> a built translated dataset through synfashion's build core,
`dataset.py`). `engine.py` is what both share (decoding as the loaders do, the size policy, output checks, PNG),
`source.py` reads the datasets a translation starts from, `cli.py` parses their arguments."""

from __future__ import annotations

import argparse

from .folder import TranslateJob, TranslateReport, find_images, translate_folder


def register(subparsers: argparse._SubParsersAction) -> None:
    from . import cli, folder

    folder.register(subparsers)
    cli.register_dataset(subparsers)


__all__ = ["TranslateJob", "TranslateReport", "find_images", "register", "translate_folder"]
