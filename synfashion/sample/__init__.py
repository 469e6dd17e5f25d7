"""The generated sample release: the official layout with procedural garments (`garments`) and fabrics (`textures`)."""

from .release import SampleConfig, SampleSummary, generate_sample, render_image

__all__ = ["SampleConfig", "SampleSummary", "generate_sample", "render_image"]
