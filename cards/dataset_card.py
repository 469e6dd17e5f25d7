"""Dataset cards (README.md of a built folder): SynFashion itself, and a translated variant of it.

Everything in a card is computed from the build's manifest document (counts, splits, configs, features, and for a
variant its source, model and settings), so a card cannot drift from its data. This module imports nothing of
`synfashion`: the manifest is plain data, and the category display names come from the caller. That keeps the
packages in one direction (synfashion -> cards).
"""

from __future__ import annotations

import datasets
import yaml
from huggingface_hub import DatasetCardData

from .common import CITATION, LICENSE, LICENSE_NOTE, size_category, validate_dataset_card

SPLITS = ("train", "validation", "test")
LABELS_NOTE = ("In Parquet, `category` and `view` are ClassLabel ids (their names are in the features); in the tars' "
               "JSON and in `manifest.json` they are the names themselves, since a tar carries no features.")
RENDERS = "renders"


def _splits(manifest: dict) -> list[str]:
    per_split = manifest["counts"]["per_split"]
    return [s for s in SPLITS if per_split.get(s)]


def _has_parquet(manifest: dict) -> bool:
    return "parquet" in manifest["parameters"].get("formats", [])


def _parquet_configs(manifest: dict) -> list[str]:
    names = {s["config"] for s in manifest["shards"] if s["format"] == "parquet"} | set(manifest.get("features", {}))
    return sorted(names, key=lambda n: (n != RENDERS, n))


def _configs(manifest: dict, splits: list[str]) -> list[dict]:
    if not _has_parquet(manifest):  # a WebDataset-only build: datasets' webdataset builder reads the tars
        return [{"config_name": RENDERS, "default": True,
                 "data_files": [{"split": s, "path": f"webdataset/{s}/*.tar"} for s in splits]}]
    return [
        {"config_name": name, **({"default": True} if name == RENDERS else {}),
         "data_files": [{"split": s, "path": f"data/{name}/{s}-*.parquet"} for s in splits]}
        for name in _parquet_configs(manifest)
    ]


def _dataset_info(manifest: dict, splits: list[str]) -> list[dict]:
    info = []
    for name in _parquet_configs(manifest):
        features = _features(manifest, name)
        shards = [s for s in manifest["shards"] if s["config"] == name and s["format"] == "parquet"]
        split_info = [
            {"name": s, "num_examples": sum(x["num_samples"] for x in shards if x["split"] == s),
             "num_bytes": sum(x["num_bytes"] for x in shards if x["split"] == s)}
            for s in splits
        ]
        info.append({"config_name": name, "features": features._to_yaml_list(), "splits": split_info})
    return info


def _features(manifest: dict, config: str) -> datasets.Features:
    """A config's features from the manifest's [column, spec] pairs (a list keeps the column order)."""
    return datasets.Features.from_dict(dict(manifest["features"][config]))


def _table(header: list[str], rows: list[list]) -> str:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(out)


def _describe_feature(feature) -> str:
    if isinstance(feature, datasets.Image):
        return "image (original file bytes)"
    if isinstance(feature, datasets.ClassLabel):
        return f"class label ({feature.num_classes} names)"
    if isinstance(feature, datasets.Value):
        return feature.dtype
    return type(feature).__name__


def _fields_section(manifest: dict) -> str:
    """A "Data Fields" table per Parquet config, generated from its features."""
    if not _has_parquet(manifest):
        return ""
    parts = []
    for name in _parquet_configs(manifest):
        features = _features(manifest, name)
        rows = [[f"`{col}`", _describe_feature(f)] for col, f in features.items()]
        parts.append(f"**{name}**\n\n" + _table(["column", "type"], rows))
    return "### Data fields\n\n" + "\n\n".join(parts) + "\n"


def _category_names(manifest: dict) -> list[str]:
    features = dict(manifest.get("features", {}).get(RENDERS) or [])
    if "names" in features.get("category", {}):
        return list(features["category"]["names"])
    counts = manifest["counts"]["per_split_category"]
    return sorted({c for per in counts.values() for c in per})


def _count_tables(manifest: dict, splits: list[str], display_names: dict[str, str]) -> str:
    counts = manifest["counts"]
    cat_rows = [[display_names.get(c, c), c] + [counts["per_split_category"][s].get(c, 0) for s in splits]
                for c in _category_names(manifest)]
    views = sorted({v for s in splits for v in counts["per_split_view"][s]},
                   key=lambda v: (["front", "back", "random1", "random2"] + [v]).index(v))
    view_rows = [[v] + [counts["per_split_view"][s].get(v, 0) for s in splits] for v in views]
    return (_table(["split", "images"], [[s, counts["per_split"][s]] for s in splits])
            + "\n\n### Categories\n\n" + _table(["category", "label"] + splits, cat_rows)
            + "\n\n### Views\n\n" + _table(["view"] + splits, view_rows))


def _finish(header: str, body: str) -> str:
    """YAML front matter + body + the citation, validated with huggingface_hub's DatasetCard."""
    text = f"---\n{header}---\n{body}\n## Citation\n\n```bibtex\n{CITATION}\n```\n"
    validate_dataset_card(text)
    return text


def _front_matter(manifest: dict, splits: list[str], data: DatasetCardData) -> str:
    meta = data.to_dict()
    meta["configs"] = _configs(manifest, splits)
    if _has_parquet(manifest):
        meta["dataset_info"] = _dataset_info(manifest, splits)
    return yaml.safe_dump(meta, sort_keys=False, allow_unicode=True)


def render_dataset_card(manifest: dict, *, display_names: dict[str, str] | None = None,
                        pretty_name: str | None = None, evaluation: dict | None = None) -> str:
    """The card of a built folder: SynFashion's, or a translated variant's (manifest kind "translated")."""
    if manifest.get("kind") == "translated":
        return render_translated_card(manifest, display_names=display_names, pretty_name=pretty_name,
                                      evaluation=evaluation)
    return render_synfashion_card(manifest, display_names=display_names, pretty_name=pretty_name or "SynFashion")


def render_synfashion_card(manifest: dict, *, display_names: dict[str, str] | None = None,
                           pretty_name: str = "SynFashion") -> str:
    counts = manifest["counts"]
    splits = _splits(manifest)
    configs = _parquet_configs(manifest) if _has_parquet(manifest) else []
    data = DatasetCardData(
        license=LICENSE, pretty_name=pretty_name, task_categories=["image-to-image", "image-classification"],
        tags=["fashion", "garments", "synthetic", "rendered", "3d", "sim2real", "webdataset"],
        size_categories=[size_category(counts["total"])],
    )
    header = _front_matter(manifest, splits, data)
    rejected = manifest.get("rejected", [])
    notes = manifest.get("splits", {}).get("notes", [])
    fractions = manifest["parameters"].get("split_fractions")
    garments_line = ('garments = load_dataset("<namespace>/<this-repo>", "garments")  # one row per textured garment,'
                     ' 4 view columns\n') if "garments" in configs else ""
    body = f"""
# {pretty_name}

SynFashion is a dataset of **rendered garment images** made with Style3D Studio for the rendered-to-real
translation work *FashionR2R: Texture-preserving Rendered-to-Real Image Translation with Diffusion Models*
(NeurIPS 2024). The full release holds about 10k images of 20 garment categories:
375 3D projects (distinct garment geometry), re-textured with 500 fabric textures collected from the Internet,
each textured garment rendered in 4 views (front, back and two random views), cropped to the garment and
resized to 768x1024. Some images show a digital human without a complete face.

This build: **{counts["total"]} images**, {counts["projects"]} projects, {counts["textures"]} textures,
{counts["garments"]} textured garments (source folder `{manifest["source"].get("name")}`, builder
synfashion {manifest["builder_version"]}).

## Loading

```python
from datasets import load_dataset
ds = load_dataset("<namespace>/<this-repo>")                  # config "renders": one row per image
{garments_line}stream = load_dataset("<namespace>/<this-repo>", split="train", streaming=True)
```
WebDataset shards of the same samples are under `webdataset/<split>/` (`<key>.<ext>` + `<key>.json`).
The `image` column holds each file's **original bytes** (no re-encoding); `orientation` is its EXIF orientation
tag, which readers should apply. {LABELS_NOTE}

{_fields_section(manifest)}
## Splits

Splits are assigned per *group* of 3D projects joined by shared textures, so **no 3D project and no texture
appears in more than one split** (`synfashion verify` checks this). A group's split comes from a salted hash of
its project ids (fractions {fractions}), stratified by category: where the hash alone would leave a category out
of a split, or far from its fraction, the fewest groups of that category move. Adding projects to a category
leaves other categories' groups where they are.
{len(rejected)} input file(s) were rejected at build time (listed with reasons in `manifest.json`).
{"".join(f"{chr(10)}- note: {n}" for n in notes)}

{_count_tables(manifest, splits, display_names or {})}

## License

{LICENSE_NOTE}

## Integrity

`manifest.json` lists every shard and every sample with its sha256, and every rejected input with its reason.
Run `synfashion verify <folder>` after download to re-hash everything and re-check the split rule.

"""
    return _finish(header, body)


DERIVATIVE_NOTE = """**This dataset is a derivative of SynFashion, which is licensed CC BY-NC-ND 4.0**
(Attribution, NonCommercial, NoDerivatives). Every image here was generated from a SynFashion render, so it is
*modified material* under that licence:
- **NoDerivatives**: you may make it for your own research, but you may **not share it publicly** (push it as a
  public repo, hand it out) without permission from the rights holders (Style3D Research / the FashionR2R authors).
  Keep the repo private, or obtain that permission first.
- **NonCommercial**: no commercial use, including training models for commercial products.
- The `pairs` config and the `source_sha256` column carry the original renders' bytes or hashes unchanged;
  that does not change the above.
The card's `license` field repeats the source's licence because it binds this variant too."""


def _settings_rows(provenance: dict) -> list[list]:
    params = provenance.get("params", {})
    rows = [[f"`{k}`", f"`{v}`"] for k, v in sorted(params.items())]  # sorted: the manifest's JSON sorts keys
    for k in ("dtype", "device", "batch_size", "seed"):
        if k in provenance:
            rows.append([f"`{k}`", f"`{provenance[k]}`"])
    return rows


def _model_lines(provenance: dict) -> str:
    model = provenance.get("model", {})
    spec = model.get("spec", {})
    lines = [f"- Base model: `{spec.get('model')}`" + (f" (revision `{spec['revision']}`)" if spec.get("revision")
                                                       else "")]
    if model.get("config_sha256"):
        lines.append(f"- Model folder config sha256: `{model['config_sha256']}`")
    for key, what in (("negative_embedding", "Negative (source-domain) embedding"), ("lora", "Positive-domain LoRA"),
                      ("unet", "Positive-domain UNet")):
        if spec.get(key):
            digest = model.get(f"{key}_sha256")
            lines.append(f"- {what}: `{spec[key]}`" + (f", sha256 `{digest}`" if digest else ""))
    versions = provenance.get("versions", {})
    if versions:
        lines.append("- Libraries: " + ", ".join(f"{k} {v}" for k, v in sorted(versions.items())))
    return "\n".join(lines)


def _evaluation_section(evaluation: dict | None) -> str:
    if not evaluation:
        return ("Not evaluated yet. `r2r evaluate --translated <this folder> --real <real photos>` computes the "
                "paper's protocol (KID to real photos, LPIPS and SSIM to the rendered source); pass its JSON to "
                "`r2r translate-dataset --eval-json` to put the table here.")
    rows = []
    for name, label in (("kid_x1000", "KID x 1000 (to real, lower is better)"), ("lpips", "LPIPS (to source)"),
                        ("ssim", "SSIM (to source)")):
        if name in evaluation:
            std = evaluation.get(name.replace("_x1000", "") + "_std_x1000" if name == "kid_x1000"
                                 else f"{name}_std")
            rows.append([label, f"{evaluation[name]:.4f}" + (f" ({std:.4f})" if isinstance(std, (int, float))
                                                             else "")])
    if not rows and "kid" in evaluation:
        rows.append(["KID (to real)", f"{evaluation['kid']:.6f}"])
    n = evaluation.get("n")
    protocol = evaluation.get("protocol", {})
    note = " Weights were random (a smoke test, not a result)." if protocol.get("random_weights") else ""
    return _table(["metric", "value (std)"], rows) + (f"\n\n{n} images." if n else "") + note


def render_translated_card(manifest: dict, *, display_names: dict[str, str] | None = None,
                           pretty_name: str | None = None, evaluation: dict | None = None) -> str:
    counts = manifest["counts"]
    splits = _splits(manifest)
    source = manifest.get("source", {})
    provenance = manifest.get("provenance", {})
    source_id = source.get("repo_id")
    pretty_name = pretty_name or "SynFashion, rendered-to-real (FashionR2R)"
    data = DatasetCardData(
        license=LICENSE, pretty_name=pretty_name, task_categories=["image-to-image", "image-classification"],
        tags=["fashion", "garments", "synthetic", "sim2real", "rendered-to-real", "fashionr2r", "webdataset"],
        size_categories=[size_category(counts["total"])],
        source_datasets=[source_id] if source_id else ["SynFashion"],
    )
    header = _front_matter(manifest, splits, data)
    where = (f"the Hub dataset `{source_id}`" + (f" at revision `{source['revision']}`" if source.get("revision")
                                                  else "") if source_id else f"the built folder `{source.get('name')}`")
    configs = _parquet_configs(manifest) if _has_parquet(manifest) else []
    body = f"""
# {pretty_name}

Rendered SynFashion garments translated into photo-realistic images with **FashionR2R** (NeurIPS 2024): DDIM
inversion of each render and texture-preserving attention control (RIG), with the Domain Knowledge Injection (DKI)
artifacts listed below. Made with the synfashion toolkit {manifest["builder_version"]} from {where} (its manifest
fingerprint `{source.get("fingerprint", "?")}`).

This variant: **{counts["total"]} translated images** of {counts["projects"]} projects; every row keeps its source
row's key, metadata and split, and `source_key` / `source_sha256` join it back to its source byte-exactly.

## Licence: read this before sharing

{DERIVATIVE_NOTE}

## Loading

```python
from datasets import load_dataset
ds = load_dataset("<namespace>/<this-repo>")           # config "renders": translated image + source metadata
{'pairs = load_dataset("<namespace>/<this-repo>", "pairs")  # rendered_image / translated_image side by side' if "pairs" in configs else ""}
```
WebDataset shards of the translated samples are under `webdataset/<split>/` (`<key>.png` + `<key>.json`).
{LABELS_NOTE}
For paired training with diffusers' InstructPix2Pix script: `--original_image_column rendered_image
--edited_image_column translated_image --edit_prompt_column edit_prompt`.

{_fields_section(manifest)}
## How it was made

{_model_lines(provenance)}

Settings (every RIG parameter; the same settings always give the same images with float32 on CPU):

{_table(["setting", "value"], _settings_rows(provenance))}

## Evaluation

{_evaluation_section(evaluation)}

## Splits

Splits are the source's: no translated row changes split, so the source's no-leak rule (no 3D project and no
texture in two splits) holds here too.

{_count_tables(manifest, splits, display_names or {})}

## Integrity

`manifest.json` lists every shard and every sample with its sha256, the source and its fingerprint, and the model.
Run `synfashion verify <folder>` after download.

"""
    return _finish(header, body)
