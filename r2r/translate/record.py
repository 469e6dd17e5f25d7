"""What a translation run records about itself, for both commands: the library versions (how two runs' settings
differ is `synfashion.settings.differences`, the one comparison). No torch at import."""

from __future__ import annotations

import platform


def versions() -> dict:
    import diffusers
    import torch
    import transformers

    from synfashion import __version__ as synfashion_version

    return {"torch": torch.__version__, "diffusers": diffusers.__version__, "transformers": transformers.__version__,
            "python": platform.python_version(), "synfashion": synfashion_version}
