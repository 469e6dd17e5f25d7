"""DKI model cards (YAML validated with huggingface_hub, license stated plainly) and the PIL loss curve."""

from __future__ import annotations

import math

import pytest
from PIL import Image

from cards.common import validate_model_card
from cards.model_card import DKICardInfo, render_dki_card
from r2r.dki.plot import loss_curve, smooth

SYN = {"description": "SynFashion org/synfashion [train]", "kind": "synfashion", "synfashion": True,
       "hub_id": "org/synfashion", "filters": {"split": "train", "categories": ["hoodie"]}, "num_images": 320}
PHOTOS = {"description": "image folder photos/", "kind": "folder", "synfashion": False, "hub_id": None,
          "filters": {}, "num_images": 40}


def _info(**kw) -> DKICardInfo:
    base = dict(method="negative-embedding", artifact="learned_embeds.safetensors",
                base_model="stable-diffusion-v1-5/stable-diffusion-v1-5", data=SYN, steps=2000, batch_size=8,
                learning_rate=2e-3, resolution=512, mixed_precision="bf16", final_loss=0.1234,
                eval_loss_before=0.2, eval_loss_after=0.15, token="<rendered>", num_vectors=4,
                prompts=("a <rendered> image",))
    base.update(kw)
    return DKICardInfo(**base)


def test_negative_card_from_synfashion_states_the_license():
    text = render_dki_card(_info())
    data = validate_model_card(text).data.to_dict()
    assert data["license"] == "cc-by-nc-nd-4.0"
    assert data["base_model"] == "stable-diffusion-v1-5/stable-diffusion-v1-5"
    assert data["datasets"] == ["org/synfashion"]
    assert {"textual_inversion", "synfashion", "diffusers"} <= set(data["tags"])
    assert "derived from CC BY-NC-ND 4.0 data" in text and "NonCommercial" in text
    assert "load_textual_inversion" in text and 'negative_prompt="<rendered>"' in text
    assert "Steps: 2000" in text and "0.12340" in text and "0.20000 / 0.15000" in text
    assert "![loss curve](loss_curve.png)" in text and "categories=['hoodie']" in text
    assert "@inproceedings{hu2024fashionr2r" in text


@pytest.mark.parametrize("method", ["lora", "full"])
def test_positive_cards(method, tmp_path):
    info = _info(method=method, artifact="pytorch_lora_weights.safetensors" if method == "lora" else "unet/",
                 data=PHOTOS, token=None, num_vectors=None, lora_rank=8 if method == "lora" else None,
                 lora_alpha=8.0 if method == "lora" else None, ema=True, base_model="model", base_model_is_local=True,
                 prompts=())
    text = render_dki_card(info)
    data = validate_model_card(text).data.to_dict()
    assert data["license"] == "other" and "datasets" not in data
    assert ("lora" in data["tags"]) == (method == "lora")
    assert "not SynFashion" in text and "exponential moving average" in text
    assert "set `base_model` to its Hub id" in text
    assert ("load_lora_weights" in text) == (method == "lora")


def test_loss_curve_png(tmp_path):
    path = loss_curve([1.0, 0.8, float("nan"), 0.5, 0.55, 0.4], tmp_path / "c.png")
    img = Image.open(path)
    assert img.format == "PNG" and img.size == (800, 400)
    assert len(set(img.convert("L").getdata())) > 2  # something was drawn
    loss_curve([0.3], tmp_path / "one.png")
    loss_curve([], tmp_path / "none.png")
    loss_curve([float("inf")], tmp_path / "inf.png")
    assert smooth([1.0, 1.0, 1.0]) == pytest.approx([1.0, 1.0, 1.0])
    assert all(math.isfinite(x) for x in smooth([2.0, 0.0]))
