"""Friction of the `r2r` command: every subcommand's --help shows every default; train-negative's placeholder word is
--placeholder-token (--token still works for a release, with a warning); a demo-like run prints neither
transformers' torchvision notice nor its mean_resizing notice."""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from r2r.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def _entries(help_text: str) -> dict[str, str]:
    """Option string -> its help entry (the lines from the option to the next one), whitespace collapsed."""
    entries, current = {}, None
    for line in help_text.splitlines():
        m = re.match(r"^  (-{1,2}[\w-]+)", line)
        if m:
            current = m.group(1)
            entries[current] = line
        elif current and line.startswith("      "):
            entries[current] += " " + line.strip()
        else:
            current = None
    return {k: " ".join(v.split()) for k, v in entries.items()}


def test_every_subcommand_help_shows_every_default():
    subs = _subparsers(build_parser())
    assert {"translate-images", "report", "tiny-model", "train-negative", "train-positive"} <= set(subs)
    checked = 0
    for name, sub in subs.items():
        entries = _entries(sub.format_help())
        for action in sub._actions:
            if not action.option_strings or action.nargs == 0 or action.help == argparse.SUPPRESS:
                continue
            if action.default is None or action.default is argparse.SUPPRESS:
                continue
            entry = entries[action.option_strings[0]]
            shown = "''" if action.default == "" else str(action.default)
            assert f"(default: {shown})" in entry or ("default" in (action.help or "").lower() and "default" in entry),\
                f"r2r {name} {action.option_strings[0]}: {entry!r}"
            checked += 1
    assert checked > 40
    translate = _entries(subs["translate-images"].format_help())
    for option, value in (("--strength", "0.3"), ("--steps", "50"), ("--guidance", "7.5"), ("--tac-ratio", "0.9"),
                          ("--tac-layers", "256"), ("--lora-scale", "1.0")):
        assert f"(default: {value})" in translate[option], translate[option]
    negative = _entries(subs["train-negative"].format_help())
    assert "(default: 2000)" in negative["--steps"] and "(default: 500)" in negative["--checkpoint-every"]
    assert "default 0.002" in negative["--lr"] and "(default: <rendered>)" in negative["--placeholder-token"]


def test_placeholder_token_and_the_deprecated_token_alias(capsys):
    parser = build_parser()
    base = ["train-negative", "--model", "m", "--renders", "r", "--out", "o"]
    assert parser.parse_args(base).token == "<rendered>"
    assert parser.parse_args([*base, "--placeholder-token", "<cg>"]).token == "<cg>"
    assert "deprecated" not in capsys.readouterr().err
    assert parser.parse_args([*base, "--token", "<old>"]).token == "<old>"
    assert "warning: --token is deprecated and will be removed in the next release; use --placeholder-token" in \
        capsys.readouterr().err
    assert "--token" not in _entries(_subparsers(parser)["train-negative"].format_help())  # hidden from --help
    with pytest.raises(SystemExit):  # --resume and --overwrite exclude each other
        parser.parse_args([*base, "--resume", "--overwrite"])


def test_demo_like_run_prints_no_harmless_library_warnings(tmp_path):
    """A fresh interpreter (transformers warns once per process): tiny model, negative DKI, translation with it."""
    script = textwrap.dedent(f"""
        import numpy as np, sys
        from pathlib import Path
        from PIL import Image
        from r2r.cli import main
        root = Path({str(tmp_path)!r})
        (root / "in").mkdir()
        for i in range(2):
            rgb = np.random.default_rng(i).integers(0, 255, (64, 64, 3), dtype=np.uint8)
            Image.fromarray(rgb).save(root / "in" / f"{{i}}.png")
        from r2r.tiny import TinyModelConfig, save_tiny_model
        save_tiny_model(root / "tiny", TinyModelConfig(unet_channels=(16, 32), unet_layers_per_block=1))
        assert main(["train-negative", "--model", str(root / "tiny"), "--renders", str(root / "in"), "--out",
                     str(root / "neg"), "--steps", "1", "--resolution", "64", "--batch-size", "2",
                     "--num-workers", "0", "--no-progress"]) == 0
        assert main(["translate-images", "--model", str(root / "tiny"), "--input", str(root / "in"), "--output",
                     str(root / "out"), "--negative-embedding", str(root / "neg" / "learned_embeds.safetensors"),
                     "--steps", "4", "--strength", "0.5", "--no-progress"]) == 0
    """)
    env = {"PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "HF_HUB_DISABLE_TELEMETRY": "1", "PATH": "/usr/bin:/bin",
           "OMP_NUM_THREADS": "1"}  # tiny tensors: threads only spin on a shared CPU (no library reads it to warn)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    err = done.stderr
    assert "translated 2" in err
    assert "torchvision" not in err and "mean_resizing" not in err and "multivariate normal" not in err, err


def test_the_filters_drop_only_the_named_messages():
    import logging

    import r2r  # noqa: F401  (installs the filters)

    def passes(name: str, msg: str) -> bool:
        return bool(logging.getLogger(name).filter(logging.LogRecord(name, logging.WARNING, "", 0, msg, None, None)))

    torchvision = ("`CLIPImageProcessor` requires torchvision (not installed); falling back to `CLIPImageProcessorPil` "
                   "for backward compatibility.")
    assert not passes("transformers.utils.import_utils", torchvision)
    assert passes("transformers.utils.import_utils", "some other import problem")
    assert passes("transformers.modeling_utils", torchvision)  # another logger: untouched
    assert not passes("diffusers.loaders.lora_base", "No LoRA keys associated to CLIPTextModel found with the "
                                                     "prefix='text_encoder'. This is safe to ignore if ...")
    assert passes("diffusers.loaders.lora_base", "No LoRA keys associated to UNet2DConditionModel found")
