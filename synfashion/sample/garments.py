"""Garment drawings for the sample release: one parametric sketch per category, rasterised per view.

The public entry point of the drawing; `release` imports from here. A project's `Geometry` (length, width,
sleeve, flare, a style variant) gives a `Sketch` per category (`sketch`, built in `categories` from the shared
pieces in `components` and the point helpers in `geometry`, into the data model of `model`); a `View` (from the
camera azimuth) and `rasterize` turn it into masks and shading, and `draw_marks` / `draw_hardware` add seams and
hardware (`raster`). Drawing is PIL polygons plus a little numpy at quarter resolution for the shading; no I/O, no
randomness of its own. This module only names the public API: nothing is defined here.
"""

from __future__ import annotations

from .categories import N_VARIANTS, sketch
from .model import Geometry, Sketch, random_geometry
from .raster import Raster, View, draw_hardware, draw_marks, rasterize

__all__ = ["N_VARIANTS", "Geometry", "Raster", "Sketch", "View", "draw_hardware", "draw_marks", "random_geometry",
           "rasterize", "sketch"]
