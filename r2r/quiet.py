"""Drop library log messages that are known to be harmless for r2r, by logger and message, nothing broader.

Why: every `r2r` command printed transformers' "`CLIPImageProcessor` requires torchvision (not installed);
falling back to `CLIPImageProcessorPil`" (diffusers' SD pipeline module imports the image processor class of the
safety checker's feature extractor, which r2r never builds: it loads pipelines with `feature_extractor=None`, and
torchvision must not be installed beside the CPU torch). Users read such lines as a broken install. The filter
sits on the one logger that emits them and matches the message's own words, so any other warning of that logger,
and every other logger, still gets through. Also dropped: diffusers' notice that a UNet-only LoRA has no
text-encoder keys (it says itself that this is safe to ignore; r2r's LoRAs are UNet-only), and its log line of a
failed LoRA load, which repeats the exception raised right after it. (The other common warning, transformers'
`mean_resizing` notice when a textual inversion grows the token table, is avoided at its source in r2r/models/load.py
instead of filtered.)

Installing needs no import of transformers: loggers are looked up by name.
"""

from __future__ import annotations

import logging
import re

# (logger name, regular expression the message must match) of messages r2r drops.
HARMLESS: tuple[tuple[str, str], ...] = (
    ("transformers.utils.import_utils",
     r"^`\w+ImageProcessor` requires torchvision \(not installed\); falling back to `\w+ImageProcessorPil`"),
    # a UNet-only LoRA (what `r2r train-positive` writes) has no text-encoder part; diffusers says so at every load,
    # adding "this is safe to ignore if LoRA state dict didn't originally have any CLIPTextModel related params"
    ("diffusers.loaders.lora_base", r"^No LoRA keys associated to CLIPTextModel found with the prefix='text_encoder'"),
    # diffusers logs a failed LoRA load and then raises the same error; the raise is what r2r reports (one line)
    ("diffusers.loaders.peft", r"^Loading \w+ was unsuccessful with the following error: \n"),
)


class _DropMatching(logging.Filter):
    def __init__(self, pattern: str):
        super().__init__()
        self.pattern = re.compile(pattern)

    def filter(self, record: logging.LogRecord) -> bool:
        return not self.pattern.search(record.getMessage())


def silence_harmless_warnings() -> None:
    """Install the filters of HARMLESS (idempotent)."""
    for name, pattern in HARMLESS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, _DropMatching) and f.pattern.pattern == pattern for f in logger.filters):
            logger.addFilter(_DropMatching(pattern))


def quiet_dataset_bars() -> None:
    """No "Generating test split" bars while evaluated datasets are opened again (report, study-page): nothing is
    generated there."""
    import datasets

    datasets.disable_progress_bars()
