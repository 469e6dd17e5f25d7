"""`synfashion sample`: a generated release in the official layout, so demos and tests run the real code path.

`OUT/<Category display name>/<project>_<texture>_<view>.<ext>` plus `OUT/metadata.jsonl`, for all 20 categories:
per category some projects (distinct parametric geometry), each re-textured with several procedural fabrics (some
shared with another project, as in the real release), each rendered in 4 views with simple shading on a pure white
background. The same config gives byte-identical files, whatever the worker count.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter

from .atomic import write_bytes_atomic
from .parallel import parallel_map
from .sample_garments import Geometry, draw_garment
from .sample_textures import make_texture, stable_int, texture_kind
from .taxonomy import CATEGORIES, DISPLAY_NAMES, VIEWS


@dataclass(frozen=True)
class SampleConfig:
    projects_per_category: int = 2
    textures_per_project: int = 2
    width: int = 768
    height: int = 1024
    image_format: str = "jpg"  # "jpg" or "png"
    seed: int = 0
    categories: tuple[str, ...] = CATEGORIES
    shared_texture_fraction: float = 0.3  # share of texture slots that reuse a texture of a neighbouring project
    jpeg_quality: int = 92

    def __post_init__(self) -> None:
        if self.projects_per_category < 1 or self.textures_per_project < 1:
            raise ValueError("projects_per_category and textures_per_project must be >= 1")
        if self.width < 64 or self.height < 64 or self.width % 8 or self.height % 8:
            raise ValueError(f"sample size must be multiples of 8 and >= 64, got {self.width}x{self.height}")
        if self.image_format not in ("jpg", "png"):
            raise ValueError(f"image_format must be 'jpg' or 'png', got {self.image_format!r}")
        unknown = set(self.categories) - set(CATEGORIES)
        if unknown or not self.categories:
            raise ValueError(f"unknown categories {sorted(unknown)}; choose from {', '.join(CATEGORIES)}")
        if not 0.0 <= self.shared_texture_fraction <= 1.0:
            raise ValueError("shared_texture_fraction must be in [0, 1]")


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


def _plan(config: SampleConfig) -> list[_Render]:
    """Projects, texture assignment (with sharing) and views, decided up front from the seed alone."""
    renders: list[_Render] = []
    next_texture = 1
    previous: list[str] = []  # textures of the previous project (sharing stays local: small split groups)
    for category in config.categories:
        for j in range(1, config.projects_per_category + 1):
            project = f"{category}-p{j:02d}"
            prng = np.random.default_rng([config.seed, stable_int("project", project)])
            geometry = Geometry(
                length=float(prng.uniform(0.85, 1.08)), width=float(prng.uniform(0.85, 1.15)),
                sleeve=float(prng.uniform(0.75, 1.2)), flare=float(prng.uniform(0.9, 1.3)),
            )
            textures: list[str] = []
            for k in range(config.textures_per_project):
                share = prng.random() < config.shared_texture_fraction
                candidates = [t for t in previous if t not in textures]
                if share and candidates:
                    textures.append(candidates[int(prng.integers(len(candidates)))])
                else:
                    textures.append(f"t{next_texture:04d}")
                    next_texture += 1
            previous = textures
            for texture in textures:
                vrng = np.random.default_rng([config.seed, stable_int("views", project, texture)])
                azimuths = {"front": 0.0, "back": 180.0, "random1": float(vrng.uniform(25, 155)),
                            "random2": float(vrng.uniform(205, 335))}
                for view in VIEWS:
                    rel = f"{DISPLAY_NAMES[category]}/{project}_{texture}_{view}.{config.image_format}"
                    renders.append(_Render(rel, category, project, texture, view, round(azimuths[view], 1), geometry))
    return renders


def _soft(mask_img: Image.Image, radius: float) -> np.ndarray:
    """Gaussian-blurred mask in [0, 1], blurred at quarter resolution (4x4 fewer pixels; it is smooth anyway)."""
    w, h = mask_img.size
    small = mask_img.resize((max(1, w // 4), max(1, h // 4)), Image.Resampling.BILINEAR)
    small = small.filter(ImageFilter.GaussianBlur(radius=max(0.5, radius / 4)))
    return np.asarray(small.resize((w, h), Image.Resampling.BILINEAR), np.float32) * (1 / 255)


def render_image(r: _Render, config: SampleConfig) -> Image.Image:
    """Texture x shading inside the silhouette, seams darkened, soft ambient occlusion at the edges."""
    w, h = config.width, config.height
    mask_img, details_img = draw_garment(r.category, r.geometry, r.azimuth, w, h)
    mask = np.asarray(mask_img, np.float32) * (1 / 255)
    occlusion = _soft(mask_img, w / 90)
    details = np.asarray(details_img, np.float32) * (1 / 255)
    fabric = make_texture(r.texture, w, h, config.seed)
    # separable lighting: a cylinder across x, a top light along y, a few soft vertical folds growing to the hem
    xn = (np.arange(w, dtype=np.float32) / w - 0.5)[None, :]
    yn = (np.arange(h, dtype=np.float32) / h)[:, None]
    rng = np.random.default_rng([config.seed, stable_int("folds", r.project, r.view)])
    folds = sum(0.05 * np.sin(xn * f * 2 * np.pi + p) for f, p in zip(rng.uniform(3, 9, 3), rng.uniform(0, 6.3, 3)))
    side = 0.06 * float(np.sign(np.cos(np.radians(r.azimuth))))
    light = (0.92 - 0.35 * xn**2 + side * xn) - 0.12 * yn + folds * (0.3 + yn)
    # 2-D work first, then one multiply and one add over the 3 channels
    shade = light * (0.55 + 0.45 * occlusion) * (1.0 - 0.45 * details) * mask
    background = 255.0 * (1.0 - mask) + 0.5  # pure white, as the release's foreground masks expect; +0.5 rounds
    out = fabric * shade[..., None]
    out += background[..., None]
    np.clip(out, 0, 255, out=out)
    return Image.fromarray(out.astype(np.uint8), "RGB")


def _encode(img: Image.Image, config: SampleConfig) -> bytes:
    buf = io.BytesIO()
    if config.image_format == "jpg":
        img.save(buf, format="JPEG", quality=config.jpeg_quality, optimize=False, progressive=False)
    else:
        img.save(buf, format="PNG", compress_level=6)
    return buf.getvalue()


def _write_one(args: tuple[str, _Render, SampleConfig]) -> str:
    root, r, config = args
    write_bytes_atomic(Path(root, r.rel), _encode(render_image(r, config), config))
    return r.rel


def generate_sample(
    out_dir: str | Path, config: SampleConfig = SampleConfig(), *, workers: int = 1, progress: bool = True
) -> SampleSummary:
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
    write_bytes_atomic(root / "metadata.jsonl", "".join(json.dumps(row) + "\n" for row in rows).encode())
    return SampleSummary(
        root=root, num_images=len(files), num_projects=len({r.project for r in renders}),
        num_textures=len({r.texture for r in renders}), files=files,
    )
