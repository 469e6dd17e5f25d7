"""The README's r2r Python API example runs as written, on a tiny model folder with a LoRA and a negative embedding
(the Hub id, the artifact paths and the device are the only substitutions)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import save_file

from r2r.tiny import save_random_lora, save_tiny_model

README = Path(__file__).resolve().parents[1] / "README.md"

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # see conftest.py


def _python_api_block() -> str:
    text = README.read_text()
    section = text[text.index("### Python API"):]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)




def test_readme_python_example_runs(tmp_path, monkeypatch):
    model = save_tiny_model(tmp_path / "tiny-sd")
    save_random_lora(model, tmp_path / "pos")
    (tmp_path / "neg").mkdir()
    save_file({"<rendered>": torch.randn(2, 32, generator=torch.Generator().manual_seed(1))},
              str(tmp_path / "neg" / "learned_embeds.safetensors"))
    (tmp_path / "renders").mkdir()
    rgb = np.random.default_rng(0).integers(0, 255, (64, 48, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(tmp_path / "renders" / "front.png")

    code = _python_api_block()
    hub_id = "stable-diffusion-v1-5/stable-diffusion-v1-5"
    assert hub_id in code and '"cuda"' in code
    code = code.replace(hub_id, str(model)).replace('"cuda"', '"cpu"')
    monkeypatch.chdir(tmp_path)  # the example's relative paths: pos/, neg/, renders/
    scope: dict = {}
    exec(compile(code, "README.md (Python API)", "exec"), scope)
    pipe = scope["pipe"]
    assert pipe.negative_token == "<rendered>" and "unet" in pipe.get_list_adapters()
    out = Image.open(tmp_path / "front-real.png")
    assert out.size == (48, 64) and np.asarray(out).std() > 0
