"""`synfashion sample`: a generated release in the official layout, so demos and tests run the real code path.

Writes `OUT/<Category display name>/<project>_<texture>_<view>.<ext>` and `OUT/metadata.jsonl` (one row per image,
sorted by file_name). Per category some projects (distinct parametric geometry and style, see
`garments`), each re-textured with procedural fabrics (`textures`); a share of the texture slots
reuses a texture of a neighbouring project, within small groups, so the project-texture graph has many small
components as the split logic expects. Each textured garment is rendered in 4 views (front, back, two random
azimuths) with simple shading on a pure white background.

Everything is decided up front from the seed (`_plan`), and each image depends only on its own plan entry, so the
same config gives byte-identical files whatever the worker count. This module does not scan or build datasets.
"""

from __future__ import annotations

import io
import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageChops

from ..cliutil import option
from ..fs.atomic import write_bytes_atomic
from ..parallel import parallel_map
from .garments import N_VARIANTS, Geometry, View, draw_hardware, draw_marks, random_geometry, rasterize, sketch
from .textures import make_fabric, stable_int, texture_kind
from ..taxonomy import CATEGORIES, DISPLAY_NAMES, VIEWS

IMAGE_FORMATS = ("jpg", "png")
_BUTTONS = ((32, 30, 30), (92, 62, 40), (236, 230, 214), (200, 170, 90), (150, 150, 156), (120, 30, 36))
_METALS = ((196, 196, 202), (206, 170, 92), (88, 88, 94))


@dataclass(frozen=True)
class SampleConfig:
    projects_per_category: int = option("--projects", default=2, type=int, help="projects per category")
    textures_per_project: int = option("--textures", default=2, type=int, help="textures per project")
    width: int = option("--width", default=768, type=int, help="image width in pixels (a multiple of 8)")
    height: int = option("--height", default=1024, type=int, help="image height in pixels (a multiple of 8)")
    image_format: str = option("--format", default="jpg", choices=IMAGE_FORMATS, help="image file format")
    seed: int = option("--seed", default=0, type=int, help="seed of the whole release (same seed, same bytes)")
    categories: tuple[str, ...] = CATEGORIES
    shared_texture_fraction: float = 0.3  # share of (project, texture) slots reusing a texture of another project
    jpeg_quality: int = 92

    def __post_init__(self) -> None:
        for name in ("projects_per_category", "textures_per_project"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"SampleConfig.{name} must be a positive integer, got {value!r}")
        for name in ("width", "height"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 64 or value % 8:
                raise ValueError(f"SampleConfig.{name} must be a multiple of 8 and >= 64, got {value!r}")
        if self.image_format not in IMAGE_FORMATS:
            raise ValueError(f"SampleConfig.image_format must be one of {IMAGE_FORMATS}, got {self.image_format!r}")
        unknown = [c for c in self.categories if c not in CATEGORIES]
        if unknown or not self.categories or len(set(self.categories)) != len(self.categories):
            raise ValueError(f"SampleConfig.categories must be distinct canonical categories, got "
                             f"{unknown or self.categories}; choose from {', '.join(CATEGORIES)}")
        if not 0.0 <= self.shared_texture_fraction <= 1.0:
            raise ValueError(
                f"SampleConfig.shared_texture_fraction must be in [0, 1], got {self.shared_texture_fraction}")
        if not 1 <= self.jpeg_quality <= 100:
            raise ValueError(f"SampleConfig.jpeg_quality must be in 1..100, got {self.jpeg_quality}")


@dataclass(frozen=True)
class SampleSummary:
    root: Path
    num_images: int
    num_projects: int
    num_textures: int
    files: tuple[str, ...]  # relative paths, sorted


@dataclass(frozen=True)
class _Render:
    rel: str
    category: str
    project: str
    texture: str
    view: str
    azimuth: float
    geometry: Geometry


# -------------------------------------------------------------------------------------------------- plan


def _assign_textures(config: SampleConfig, projects: list[str]) -> dict[str, list[str]]:
    """Texture ids per project. Projects are cut, in order, into runs of 2-3 (so a run may straddle two
    neighbouring categories); a shared slot reuses a texture of an earlier project of its run, never beyond it.
    Components of the texture graph therefore have at most 3 projects. The shared share of slots is
    `shared_texture_fraction`, capped by the slots that can share (the first project of a run cannot)."""
    rng = np.random.default_rng([config.seed, stable_int("texture-sharing")])
    runs: list[list[int]] = []
    i = 0
    while i < len(projects):
        size = int(rng.choice([2, 2, 3]))
        runs.append(list(range(i, min(len(projects), i + size))))
        i += size
    k = config.textures_per_project
    eligible = [(p, s) for run in runs for p in run[1:] for s in range(k)]
    n_shared = min(len(eligible), round(config.shared_texture_fraction * len(projects) * k))
    shared = {eligible[j] for j in rng.choice(len(eligible), n_shared, replace=False)} if n_shared else set()
    out: dict[str, list[str]] = {}
    next_id = 1
    for run in runs:
        for pos, p in enumerate(run):
            mine: list[str] = []
            for s in range(k):
                if (p, s) in shared:
                    pool = [t for q in run[:pos] for t in out[projects[q]] if t not in mine]
                    mine.append(pool[int(rng.integers(len(pool)))])
                else:
                    mine.append(f"t{next_id:04d}")
                    next_id += 1
            out[projects[p]] = mine
    return out


def _plan(config: SampleConfig) -> list[_Render]:
    """Every image to render, decided from the seed alone (independent of workers and of rendering)."""
    projects, category_of, geometry_of = [], {}, {}
    for category in config.categories:
        offset = stable_int("variant", config.seed, category)
        for j in range(1, config.projects_per_category + 1):
            project = f"{category}-p{j:02d}"
            rng = np.random.default_rng([config.seed, stable_int("project", project)])
            projects.append(project)
            category_of[project] = category
            geometry_of[project] = random_geometry(rng, (offset + j) % N_VARIANTS[category])
    textures = _assign_textures(config, projects)
    renders = []
    for project in projects:
        category = category_of[project]
        for texture in textures[project]:
            vrng = np.random.default_rng([config.seed, stable_int("views", project, texture)])
            azimuth = {"front": 0.0, "back": 180.0, "random1": float(vrng.uniform(20, 160)),
                       "random2": float(vrng.uniform(200, 340))}
            for view in VIEWS:
                rel = f"{DISPLAY_NAMES[category]}/{project}_{texture}_{view}.{config.image_format}"
                renders.append(_Render(rel, category, project, texture, view, round(azimuth[view], 1),
                                       geometry_of[project]))
    return renders


# ------------------------------------------------------------------------------------------------ render


def _fabric_image(texture: str, config: SampleConfig, squeeze: float, offset: tuple[int, int],
                  size: tuple[int, int]) -> Image.Image:
    """The texture tiled over the image, foreshortened horizontally like the garment in side views."""
    tile = make_fabric(texture, config.width, config.seed).tile
    T = tile.shape[0]
    if squeeze < 0.999:
        tile = np.asarray(Image.fromarray(tile).resize((max(2, round(T * squeeze)), T), Image.Resampling.BILINEAR))
    th, tw = tile.shape[:2]
    piece = Image.fromarray(np.ascontiguousarray(np.roll(tile, (offset[0] % th, offset[1] % tw), axis=(0, 1))), "RGB")
    out = Image.new("RGB", size)
    for y in range(0, size[1], th):
        for x in range(0, size[0], tw):
            out.paste(piece, (x, y))
    return out


def render_image(r: _Render, config: SampleConfig) -> Image.Image:
    """Fabric x shading inside the garment silhouette, seams and hardware on top, pure white around."""
    w, h = config.width, config.height
    sk = sketch(r.category, r.geometry)
    view = View.from_azimuth(r.azimuth)
    prj = np.random.default_rng([config.seed, stable_int("project-look", r.category, r.project)])
    img_rng = np.random.default_rng([config.seed, stable_int(r.category), stable_int(r.project),
                                     stable_int(r.texture), VIEWS.index(r.view)])
    fold_phase = float(prj.uniform(0, 2 * math.pi)) + (0.6 if view.side == "back" else 0.0) \
        + float(img_rng.uniform(-0.25, 0.25))
    button, metal = _BUTTONS[int(prj.integers(len(_BUTTONS)))], _METALS[int(prj.integers(len(_METALS)))]
    trng = np.random.default_rng([config.seed, stable_int("texture-placement", r.project, r.texture)])
    offset = (int(trng.integers(0, 1 << 16)), int(trng.integers(0, 1 << 16)))

    ras = rasterize(sk, view, w, h, fold_phase)
    # all full-size work happens inside the garment's box (q-aligned, so the shading resizes exactly)
    q, box = ras.q, ras.box
    x0, y0, x1, y1 = box
    size = (x1 - x0, y1 - y0)
    fabric = _fabric_image(r.texture, config, view.squeeze, offset, size)
    trim_color = make_fabric(r.texture, w, config.seed).trim
    if ras.trim is not None:
        fabric.paste(trim_color, mask=ras.trim)
    shade = Image.fromarray((ras.shade * 255 + 0.5).astype(np.uint8), "L").resize(
        size, Image.Resampling.BILINEAR, box=(x0 / q, y0 / q, x1 / q, y1 / q))
    draw_marks(shade, sk, view, ras)
    shade = ImageChops.multiply(shade, ras.tone)
    garment = ImageChops.multiply(fabric, Image.merge("RGB", (shade, shade, shade)))
    out = Image.new("RGB", (w, h), (255, 255, 255))
    out.paste(garment, (x0, y0), mask=ras.mask)
    draw_hardware(out, sk, view, ras, trim=trim_color, button=button, metal=metal)
    return out


def _encode(img: Image.Image, config: SampleConfig) -> bytes:
    buf = io.BytesIO()
    if config.image_format == "jpg":
        img.save(buf, format="JPEG", quality=config.jpeg_quality, subsampling=2, optimize=False, progressive=False)
    else:
        img.save(buf, format="PNG", compress_level=4)
    return buf.getvalue()


def _write_one(args: tuple[str, _Render, SampleConfig]) -> str:
    root, r, config = args
    # no fsync: the sample is regenerable, and 2,000 fsyncs cost more than rendering it
    write_bytes_atomic(Path(root, r.rel), _encode(render_image(r, config), config), durable=False)
    return r.rel


def generate_sample(
    out_dir: str | Path, config: SampleConfig = SampleConfig(), *, workers: int = 1, progress: bool = True
) -> SampleSummary:
    """Render the sample release into `out_dir` (created if needed; files of the same names are replaced).

    >>> s = generate_sample("/tmp/sf", SampleConfig(width=96, height=128, categories=("hat",)), progress=False)
    >>> s.files[0]
    'Hat/hat-p01_t0001_back.jpg'
    """
    root = Path(out_dir)
    renders = _plan(config)
    jobs = [(str(root), r, config) for r in renders]
    files = tuple(sorted(parallel_map(_write_one, jobs, workers=workers, chunksize=8,
                                      description="rendering sample", progress=progress)))
    rows = [
        {"file_name": r.rel, "project": r.project, "texture": r.texture, "view": r.view, "azimuth_deg": r.azimuth,
         "texture_kind": texture_kind(r.texture, config.seed)}
        for r in sorted(renders, key=lambda r: r.rel)
    ]
    sidecar = "".join(json.dumps(row) + "\n" for row in rows).encode()
    write_bytes_atomic(root / "metadata.jsonl", sidecar, durable=False)
    return SampleSummary(
        root=root, num_images=len(files), num_projects=len({r.project for r in renders}),
        num_textures=len({r.texture for r in renders}), files=files,
    )
