"""Reading SynFashion (and real-photo folders) for torch: one transform, three sources, correct splitting.

Entry points, each returning a `SynDataLoader` (a torch DataLoader) of dicts {"image": CHW float in [-1, 1],
"key", "source", ...metadata}:

- `synfashion_loader(folder_or_hub_id, Selection(...), TRAIN_512, LoaderConfig(...), streaming=False)`
- `webdataset_loader(folder_or_urls, Selection(...), TRAIN_512, LoaderConfig(...), epochs=1)`
- `image_folder_loader(root, ...)` and `hf_image_loader(dataset_or_id, image_column=..., caption_column=...)`

`ImageTransform(TransformConfig(...))` (presets TRAIN_512, EVAL_512, TRANSLATE_768x1024) is the transform the
training and translation code share; `decode_image` is its decoder. This package never writes data.

Datasets are data, whoever wrote them: shard paths from a manifest stay inside the folder and never reach a shell,
Hub URLs are streamed in-process with the token in a header (`loaders.http`), and malformed metadata or shards are
errors that name the shard, row or member, key and field (`SampleMetadataError`, `ShardFormatError`), or counted
skips with `on_error="skip"`.
"""

from .decode import decode_image, to_rgb
from .distributed import DistInfo
from .errors import (
    LoaderError,
    SampleDecodeError,
    SampleMetadataError,
    ShardFormatError,
    ShardReadError,
    SkippedSample,
    UnsafeSourceError,
)
from .folder import HFImageDataset, ImageFolderDataset, hf_image_loader, image_folder_loader
from .hf import SynFashionDataset, SynFashionStream, open_synfashion, synfashion_dataset, synfashion_loader
from .loader import LoaderConfig, SynDataLoader, collate
from .samplers import BalancedSampler, EpochSampler
from .selection import Selection, eval_subset_keys
from .transforms import (
    EVAL_512,
    PRESETS,
    TRAIN_512,
    TRANSLATE_768x1024,
    ImageTransform,
    TransformConfig,
    to_float,
    to_uint8,
)
from .wds import WebDatasetStream, resolve_shards, webdataset_dataset, webdataset_loader

__all__ = [
    "BalancedSampler",
    "DistInfo",
    "EVAL_512",
    "EpochSampler",
    "HFImageDataset",
    "ImageFolderDataset",
    "ImageTransform",
    "LoaderConfig",
    "LoaderError",
    "PRESETS",
    "SampleDecodeError",
    "SampleMetadataError",
    "Selection",
    "ShardFormatError",
    "ShardReadError",
    "SkippedSample",
    "SynDataLoader",
    "SynFashionDataset",
    "SynFashionStream",
    "TRAIN_512",
    "TRANSLATE_768x1024",
    "TransformConfig",
    "UnsafeSourceError",
    "WebDatasetStream",
    "collate",
    "decode_image",
    "eval_subset_keys",
    "hf_image_loader",
    "image_folder_loader",
    "open_synfashion",
    "resolve_shards",
    "synfashion_dataset",
    "synfashion_loader",
    "to_float",
    "to_rgb",
    "to_uint8",
    "webdataset_dataset",
    "webdataset_loader",
]
