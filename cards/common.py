"""What every card shares: the citation, the license text, size categories, and local validation.

huggingface_hub's `RepoCard.validate()` asks the Hub's API; offline we validate by round-tripping the YAML through
huggingface_hub's own card classes and checking the fields the Hub and `datasets` rely on.
"""

from __future__ import annotations

from huggingface_hub import DatasetCard, ModelCard

LICENSE = "cc-by-nc-nd-4.0"

CITATION = """@inproceedings{hu2024fashionr2r,
  title     = {FashionR2R: Texture-preserving Rendered-to-Real Image Translation with Diffusion Models},
  author    = {Hu, Rui and He, Qian and He, Gaofeng and Zhuang, Jiedong and Chen, Huang and Liu, Huafeng and Wang, Huamin},
  booktitle = {Advances in Neural Information Processing Systems (NeurIPS)},
  year      = {2024}
}"""

LICENSE_NOTE = """SynFashion is released under **CC BY-NC-ND 4.0** (Attribution, NonCommercial, NoDerivatives).
In plain words:
- **NonCommercial**: no commercial use of the images, including training models for commercial products.
- **NoDerivatives**: you may share the images unchanged, with attribution. If you *remix, transform or build upon*
  them, you may not distribute the modified material. A translated ("rendered-to-real") variant, a re-cropped or
  re-encoded copy, or any image generated from a SynFashion render is such a modification: keep it for your own
  research, and ask the rights holders (Style3D Research / the FashionR2R authors) before publishing it.
- Repackaging into Parquet/WebDataset here keeps every image's original bytes (checked by sha256 in
  `manifest.json`), so this dataset is a verbatim redistribution, not a derivative."""


def size_category(n: int) -> str:
    for bound, label in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M")):
        if n < bound:
            return label
    return "n>1M"


class CardError(ValueError):
    pass


def parse_card(text: str, card_class: type[DatasetCard] | type[ModelCard] = DatasetCard):
    """`card_class(text)` (huggingface_hub parses the YAML header with `yaml.safe_load`); a header that is not YAML,
    carries a tag safe_load refuses (`!!python/object`) or is not a mapping is one `CardError` naming the line and
    the problem, never a YAML traceback. Cards come from strangers (a pulled repo, a folder)."""
    import yaml

    try:
        return card_class(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"line {mark.line + 2}, column {mark.column + 1}: " if mark is not None else ""  # + the '---' line
        problem = " ".join(str(getattr(e, "problem", None) or e).split())
        raise CardError(f"the YAML header cannot be read ({where}{problem})") from None
    except ValueError as e:
        raise CardError(f"the YAML header cannot be read ({' '.join(str(e).split())})") from None


def validate_dataset_card(text: str, *, required: tuple[str, ...] = ("license", "pretty_name", "configs")) -> DatasetCard:
    """Parse with huggingface_hub's DatasetCard and check the metadata fields the Hub and datasets read."""
    card = parse_card(text, DatasetCard)
    data = card.data.to_dict()
    missing = [k for k in required if not data.get(k)]
    if missing:
        raise CardError(f"dataset card is missing YAML field(s): {', '.join(missing)}")
    for cfg in data.get("configs", []):
        if "config_name" not in cfg or "data_files" not in cfg:
            raise CardError(f"dataset card config {cfg!r} needs config_name and data_files")
    return card


def validate_model_card(text: str, *, required: tuple[str, ...] = ("license", "base_model")) -> ModelCard:
    card = parse_card(text, ModelCard)
    data = card.data.to_dict()
    missing = [k for k in required if not data.get(k)]
    if missing:
        raise CardError(f"model card is missing YAML field(s): {', '.join(missing)}")
    return card
