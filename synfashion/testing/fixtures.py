"""A tiny folder in the layout of `synfashion build`'s output, made without the build, for Hub tests and demos.

Card (YAML configs renders/garments, license), manifest.json (shards with sizes and sha256), Parquet shards
under data/{config}/{split}-{i:05d}-of-{n:05d}.parquet and WebDataset tars under webdataset/{split}/. The rows
are valid against synfashion.schema's features (written with their Arrow schema, as the build does), with small
real JPEG/PNG bytes; `seed` and the shard counts let a test make a second, different build of the same dataset
(e.g. fewer train shards) to exercise a re-push. It passes `synfashion verify`, but it is not the build: the
end-to-end tests push a real build as well.
"""

from __future__ import annotations

import hashlib
import io
import json
import random
import tarfile
from pathlib import Path

import yaml

SPLITS = ("train", "validation", "test")


def _image(seed: int, fmt: str) -> bytes:
    from PIL import Image

    rng = random.Random(seed)
    img = Image.new("RGB", (24, 32), tuple(rng.randrange(256) for _ in range(3)))
    for _ in range(40):
        img.putpixel((rng.randrange(24), rng.randrange(32)), tuple(rng.randrange(256) for _ in range(3)))
    buf = io.BytesIO()
    img.save(buf, format=fmt)
    return buf.getvalue()


def _tar(path: Path, members: list[tuple[str, bytes]]) -> None:
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tf:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size, info.mtime = len(data), 0
            tf.addfile(info, io.BytesIO(data))


def make_built_folder(out: str | Path, *, seed: int = 0, train_shards: int = 2, rows_per_shard: int = 3) -> Path:
    """Write a small built-dataset folder into `out` (created) and return it."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from synfashion.schema import garments_features, renders_features
    from synfashion.taxonomy import CATEGORIES, VIEWS

    out = Path(out)
    shards: list[dict] = []
    samples: list[dict] = []

    def record(rel: str, fmt: str, config: str, split: str, n: int) -> None:
        data = (out / rel).read_bytes()
        shards.append({"path": rel, "format": fmt, "config": config, "split": split, "num_samples": n,
                       "num_bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()})

    counter = 0
    locations: list[tuple[str, str]] = []  # per sample: its renders Parquet file and its tar
    for split in SPLITS:
        n_shards = train_shards if split == "train" else 1
        rows_all = []
        for i in range(n_shards):
            rows = []
            for _ in range(rows_per_shard):
                counter += 1
                fmt, ext = ("PNG", "png") if counter % 3 == 0 else ("JPEG", "jpg")
                data = _image(seed * 10_000 + counter, fmt)
                category = CATEGORIES[counter % len(CATEGORIES)]
                key = f"{category}__{split}-p{seed}-{counter:03d}__t{counter:03d}__front"
                meta = {
                    "key": key, "category": CATEGORIES.index(category), "project": f"{split}-p{seed}-{counter:03d}",
                    "texture": f"t{counter:03d}", "view": "front", "width": 24, "height": 32, "mode": "RGB",
                    "format": fmt, "orientation": 1, "sha256": hashlib.sha256(data).hexdigest(),
                    "num_bytes": len(data), "source_path": f"{category}/{key}.{ext}",
                }
                rows.append({"image": {"bytes": data, "path": f"{key}.{ext}"}, **meta, "view": VIEWS.index("front")})
                samples.append({**meta, "category": category, "split": split})
            rel = f"data/renders/{split}-{i:05d}-of-{n_shards:05d}.parquet"
            (out / rel).parent.mkdir(parents=True, exist_ok=True)
            pq.write_table(pa.Table.from_pylist(rows, schema=renders_features().arrow_schema), out / rel)
            record(rel, "parquet", "renders", split, len(rows))
            tar_rel = f"webdataset/{split}/{split}-{i:05d}.tar"
            (out / tar_rel).parent.mkdir(parents=True, exist_ok=True)
            members = []
            for r, sample in zip(rows, samples[-len(rows):]):
                ext = r["image"]["path"].rsplit(".", 1)[-1]
                members += [(f"{r['key']}.{ext}", r["image"]["bytes"]),
                            (f"{r['key']}.json", json.dumps(sample, sort_keys=True).encode())]
            _tar(out / tar_rel, members)
            record(tar_rel, "webdataset", "renders", split, len(rows))
            locations += [(rel, tar_rel)] * len(rows)
            rows_all += rows
        garments = {k: [] for k in garments_features()}
        for r in rows_all:
            garments["key"].append(r["key"].rsplit("__", 1)[0])
            for k in ("category", "project", "texture"):
                garments[k].append(r[k])
            for view in VIEWS:
                garments[view].append(r["image"] if view == "front" else None)
                garments[f"{view}_sha256"].append(r["sha256"] if view == "front" else None)
        rel = f"data/garments/{split}-00000-of-00001.parquet"
        (out / rel).parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.Table.from_pydict(garments, schema=garments_features().arrow_schema), out / rel)
        record(rel, "parquet", "garments", split, len(rows_all))

    meta = {
        "license": "cc-by-nc-nd-4.0",
        "pretty_name": "SynFashion (test fixture)",
        "configs": [
            {"config_name": name, **({"default": True} if name == "renders" else {}),
             "data_files": [{"split": s, "path": f"data/{name}/{s}-*.parquet"} for s in SPLITS]}
            for name in ("renders", "garments")
        ],
    }
    card = ("---\n" + yaml.safe_dump(meta, sort_keys=False) + "---\n\n# SynFashion (test fixture)\n\n"
            "License: CC BY-NC-ND 4.0 (no derivatives, non-commercial).\n")
    (out / "README.md").write_text(card, encoding="utf-8")
    from synfashion.manifest import Manifest, ShardEntry, compute_counts
    from synfashion.schema import release_layout

    for sample, (split_rel, tar_rel) in zip(samples, locations):
        sample["shards"] = {"parquet": split_rel, "webdataset": tar_rel}
    Manifest(
        samples=samples, shards=[ShardEntry(**s) for s in shards], counts=compute_counts(samples),
        parameters={"formats": ["parquet", "webdataset"], "garments": True}, builder_version="fixture",
        source={"name": f"fixture-{seed}"}, fingerprint=f"fixture-{seed}",
        features=release_layout().features(),
    ).write(out)
    return out


def write_renders_folder(out: str | Path, rows: list[dict], samples: list[dict], *, features=None, split: str = "test",
                         kind: str = "synfashion", source: dict | None = None) -> Path:
    """A one-shard built folder: `rows` (renders rows, e.g. `schema.renders_row(record, bytes)`, plus any extra
    columns `features` declares) as data/renders/{split}-00000-of-00001.parquet, and a typed manifest listing
    `samples`. For tests and benchmarks that need a precise handful of rows (a translated dataset's `source_key`
    columns, chosen keys) rather than a sample release built end to end."""
    from synfashion.manifest import Manifest, ShardEntry
    from synfashion.schema import renders_features
    from synfashion.writers import ParquetShardWriter

    out = Path(out)
    rel = f"data/renders/{split}-00000-of-00001.parquet"
    with ParquetShardWriter(out / rel, features or renders_features()) as w:
        for row in rows:
            w.write(row)
    data = (out / rel).read_bytes()
    shard = ShardEntry(rel, "parquet", "renders", split, len(rows), len(data), hashlib.sha256(data).hexdigest())
    Manifest(samples=samples, shards=[shard], parameters={"formats": ["parquet"]}, kind=kind,
             source=source or {}).write(out)
    return out
