"""The SynFashion dataset card (README.md of a built folder), rendered from the build manifest.

Everything in it is computed from the manifest (counts, splits, configs), so the card cannot drift from the data.
"""

from __future__ import annotations

import yaml
from huggingface_hub import DatasetCardData

from synfashion.schema import GARMENTS_CONFIG, RENDERS_CONFIG, SPLITS, garments_features, renders_features
from synfashion.taxonomy import CATEGORIES, DISPLAY_NAMES, VIEWS

from .common import CITATION, LICENSE, LICENSE_NOTE, size_category, validate_dataset_card


def _configs(splits: list[str], garments: bool, has_parquet: bool) -> list[dict]:
    if not has_parquet:  # a WebDataset-only build: datasets' webdataset builder reads the tars
        return [{"config_name": RENDERS_CONFIG, "default": True,
                 "data_files": [{"split": s, "path": f"webdataset/{s}/*.tar"} for s in splits]}]
    names = [RENDERS_CONFIG] + ([GARMENTS_CONFIG] if garments else [])
    return [
        {
            "config_name": name,
            **({"default": True} if name == RENDERS_CONFIG else {}),
            "data_files": [{"split": s, "path": f"data/{name}/{s}-*.parquet"} for s in splits],
        }
        for name in names
    ]


def _dataset_info(manifest: dict, splits: list[str], garments: bool) -> list[dict]:
    info = []
    for name, features in ((RENDERS_CONFIG, renders_features()), (GARMENTS_CONFIG, garments_features())):
        if name == GARMENTS_CONFIG and not garments:
            continue
        shards = [s for s in manifest["shards"] if s["config"] == name and s["format"] == "parquet"]
        split_info = []
        for s in splits:
            mine = [x for x in shards if x["split"] == s]
            split_info.append(
                {"name": s, "num_examples": sum(x["num_samples"] for x in mine), "num_bytes": sum(x["num_bytes"] for x in mine)}
            )
        info.append({"config_name": name, "features": features._to_yaml_list(), "splits": split_info})
    return info


def _table(header: list[str], rows: list[list]) -> str:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(out)


def render_synfashion_card(manifest: dict, *, pretty_name: str = "SynFashion") -> str:
    counts = manifest["counts"]
    splits = [s for s in SPLITS if counts["per_split"].get(s)]
    has_parquet = "parquet" in manifest["parameters"]["formats"]
    garments = has_parquet and manifest["parameters"].get("garments", True)
    data = DatasetCardData(
        license=LICENSE,
        pretty_name=pretty_name,
        task_categories=["image-to-image", "image-classification"],
        tags=["fashion", "garments", "synthetic", "rendered", "3d", "sim2real", "webdataset"],
        size_categories=[size_category(counts["total"])],
    )
    meta = data.to_dict()
    meta["configs"] = _configs(splits, garments, has_parquet)
    if has_parquet:
        meta["dataset_info"] = _dataset_info(manifest, splits, garments)
    header = yaml.safe_dump(meta, sort_keys=False, allow_unicode=True)

    cat_rows = [
        [DISPLAY_NAMES[c], c] + [counts["per_split_category"][s].get(c, 0) for s in splits] for c in CATEGORIES
    ]
    view_rows = [[v] + [counts["per_split_view"][s].get(v, 0) for s in splits] for v in VIEWS]
    rejected = manifest.get("rejected", [])
    notes = manifest.get("splits", {}).get("notes", [])
    fractions = manifest["parameters"]["split_fractions"]
    body = f"""
# {pretty_name}

SynFashion is a dataset of **rendered garment images** made with Style3D Studio for the rendered-to-real
translation work *FashionR2R: Texture-preserving Rendered-to-Real Image Translation with Diffusion Models*
(NeurIPS 2024). The full release holds about 10k images of 20 garment categories:
375 3D projects (distinct garment geometry), re-textured with 500 fabric textures collected from the Internet,
each textured garment rendered in 4 views (front, back and two random views), cropped to the garment and
resized to 768x1024. Some images show a digital human without a complete face.

This build: **{counts["total"]} images**, {counts["projects"]} projects, {counts["textures"]} textures,
{counts["garments"]} textured garments (source folder `{manifest["source"]["name"]}`, builder
synfashion {manifest["builder_version"]}).

## Loading

```python
from datasets import load_dataset
ds = load_dataset("<namespace>/<this-repo>")                  # config "renders": one row per image
garments = load_dataset("<namespace>/<this-repo>", "garments")  # one row per textured garment, 4 view columns
stream = load_dataset("<namespace>/<this-repo>", split="train", streaming=True)
```
WebDataset shards of the same samples are under `webdataset/<split>/` (`<key>.<ext>` + `<key>.json`).
The `image` column holds each file's **original bytes** (no re-encoding); `orientation` is its EXIF orientation
tag, which readers should apply.

## Splits

Splits are assigned per *group* of 3D projects joined by shared textures, so **no 3D project and no texture
appears in more than one split** (`synfashion verify` checks this). A group's split is a salted hash of its
project ids (fractions {fractions}), so adding new projects does not move existing ones.
{len(rejected)} input file(s) were rejected at build time (listed with reasons in `manifest.json`).
{"".join(f"{chr(10)}- note: {n}" for n in notes)}

{_table(["split", "images"], [[s, counts["per_split"][s]] for s in splits])}

### Categories

{_table(["category", "label"] + splits, cat_rows)}

### Views

{_table(["view"] + splits, view_rows)}

## License

{LICENSE_NOTE}

## Integrity

`manifest.json` lists every shard and every sample with its sha256, and every rejected input with its reason.
Run `synfashion verify <folder>` after download to re-hash everything and re-check the split rule.

## Citation

```bibtex
{CITATION}
```
"""
    text = f"---\n{header}---\n{body}"
    validate_dataset_card(text)
    return text
