"""Translation runs: `translate-images` (a folder of renders -> PNGs) and `translate-dataset` (a built split -> a
built translated dataset), both on `R2RPipeline`."""

from .folder import TranslateJob, TranslateReport, find_images, register, translate_folder

__all__ = ["TranslateJob", "TranslateReport", "find_images", "register", "translate_folder"]
