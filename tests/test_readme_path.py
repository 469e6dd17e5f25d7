"""README.md as one session (issue 23): every ```bash and ```python block, in the README's order, run as written in
one temporary folder by the `synfashion`, `r2r` and `python` a user has on PATH, so the README can never again
describe a chain that does not work.

The substitutions are those the README's "The path through this README" lists (small images, the tiny model on a
CPU, random metric weights, a tiny classifier, the local server's namespace); each must still match the README, so a
changed command is noticed here, not skipped. One more, for time only: the stand-in photo folder is cut to 16
photos (Inception runs on each of them, on a CPU). A block after a `<!-- not run by tests/test_readme_path.py: why
-->` line is left out (several GPUs, raters' votes, the set-up scripts). The README's second terminal is the test's
background process: the `synfashion hub-server` line is started by the test, and the line the server prints must
be the README's `export` line, the port aside; Ctrl-C then stops the server cleanly.

The path it checks end to end: packaged dataset -> loaded -> DKI trained (and the negative one pushed) -> dataset
translated -> evaluated -> report -> published to the local Hub server and loaded back by repo id -> downstream
classifier trained on the translated renders (read back from the Hub) and tested on the photos.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from synfashion.testing.hub_server import DEFAULT_USER
from tests.warm_commands import WarmServer

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
NOT_RUN = "<!-- not run by tests/test_readme_path.py"
README_PORT = "8808"  # the port in the README's export line (synfashion hub-server's default)

# (README text, what the CPU path runs instead): only what "The path through this README" lists, plus the cut.
SUBSTITUTIONS: tuple[tuple[str, str], ...] = (
    ("synfashion sample ./release ", "synfashion sample ./release --width 96 --height 128 --workers 1 "),
    ("synfashion sample ./real-photos --projects 1 --textures 1 --seed 1",
     "synfashion sample ./real-photos --projects 1 --textures 1 --seed 1 --width 72 --height 96 --workers 1\n"
     # 16 photos: 4 categories x 4 views
     "find ./real-photos -name '*.jpg' -print0 | sort -z | tail -z -n +17 | xargs -0 rm"),
    ("M=stable-diffusion-v1-5/stable-diffusion-v1-5", "M=./tiny-sd"),
    ('--placeholder-token "<rendered>" --steps 3000',
     '--placeholder-token "<rendered>" --steps 2 --resolution 64 --category dress --batch-size 2 --num-workers 0'),
    ("--out pos/ --lora-rank 16", "--out pos/ --lora-rank 4 --steps 2 --resolution 64 --batch-size 2 --num-workers 0"),
    ("--steps 50 --guidance 7.5 --tac-ratio 0.9 --tac-layers 256 --batch-size 8 --dtype bfloat16 --device cuda",
     "--steps 10 --guidance 7.5 --tac-ratio 0.9 --tac-layers 256 --batch-size 8 --dtype float32 --device cpu "
     "--resize 48x64"),
    ("--lora pos/ --batch-size 8 --dtype bfloat16 --device cuda",
     "--lora pos/ --batch-size 4 --dtype float32 --device cpu --steps 10 --limit 8 --resize 48x64 --num-workers 0"),
    ("--out eval/ours.json ", "--out eval/ours.json --random-weights --kid-subsets 10 --num-workers 0 "),
    ("--model microsoft/resnet-18 --epochs 10 --batch-size 64 --device cuda",
     "--arch resnet-tiny --epochs 1 --batch-size 16 --size 48x64 --num-workers 0 --device cpu"),
    ("<namespace>", DEFAULT_USER),
)


def blocks(text: str) -> list[tuple[str, str]]:
    """(language, code) of every ```bash / ```python block not marked as left out, in order."""
    out = []
    for m in re.finditer(r"```(bash|python)\n(.*?)```", text, re.S):
        before = text[:m.start()].rstrip().splitlines()
        if before and before[-1].startswith(NOT_RUN):
            continue
        out.append((m.group(1), m.group(2)))
    return out


def session_script(text: str, endpoint: str) -> str:
    """The README's blocks as one bash script (python blocks as here-documents), substitutions applied."""
    for old, _ in SUBSTITUTIONS:
        assert old in text, f"the README no longer holds {old!r}: update README or SUBSTITUTIONS together"
    parts = ["set -euo pipefail", "export PS4='+ README (${SECONDS}s): '", "set -x"]
    for lang, code in blocks(text):
        for old, new in SUBSTITUTIONS:
            code = code.replace(old, new)
        code = code.replace(f"http://127.0.0.1:{README_PORT}", endpoint)
        if lang == "python":
            parts.append(f"python - <<'README_PY'\n{code}README_PY")
        else:  # the server runs in the test's background: the README's second terminal
            parts.append("\n".join(": started by the test" if line.startswith("synfashion hub-server") else line
                                   for line in code.splitlines()))
    return "\n".join(parts) + "\n"


def test_every_block_is_run_or_says_why_not():
    text = README.read_text()
    every = re.findall(r"```(?:bash|python)\n", text)
    assert len(blocks(text)) >= 12 and len(every) - len(blocks(text)) <= 9
    assert any("synfashion hub-server" in code for _, code in blocks(text))
    for marker in re.findall(r"<!-- not run by tests/test_readme_path.py:?(.*?)-->", text):
        assert marker.strip(), "a block left out says why"


@pytest.mark.slow
@pytest.mark.timeout(600)  # about 45 s on a quiet 2-core machine, 160 s beside the other worker under load
def test_the_readme_path_runs_as_written(tmp_path):
    text = README.read_text()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGING"))}
    env.update(PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}", HF_HUB_OFFLINE="1",
               HF_HUB_DISABLE_TELEMETRY="1", HF_HOME=str(tmp_path / "hf"),  # a new user's empty cache
               PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1")
    work = tmp_path / "session"
    work.mkdir()
    # stdin: never the test process's own (under pytest-xdist it is the worker's channel to the controller)
    server = subprocess.Popen(["synfashion", "hub-server", "--port", "0", "--root", str(tmp_path / "hub")], cwd=work,
                              env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True)
    try:
        printed = [server.stdout.readline() for _ in range(3)]
        export = next((line.strip() for line in printed if line.startswith("export ")), None)
        assert export is not None, printed
        endpoint = re.search(r"HF_ENDPOINT=(\S+)", export).group(1)
        readme_export = next(line for line in text.splitlines() if line.startswith("export HF_ENDPOINT="))
        assert readme_export.replace(f"http://127.0.0.1:{README_PORT}", endpoint) == export

        script = session_script(text, endpoint)
        (tmp_path / "session.sh").write_text(script)
        # One warm interpreter serves the commands (tests/warm_commands.py: torch and diffusers imported once, not
        # once a command). It runs with the README's export line in force; the script does not: a command before
        # that line runs with the test's offline environment, so the server refuses it (its HF_* differ) and it runs
        # as a fresh process, exactly as a user's would
        online_env = {**env, **dict(kv.split("=", 1) for kv in export.split()[1:])}
        with WarmServer(online_env, cwd=work) as online:
            clients = online.clients(tmp_path / "bin")
            session_env = {**env, "PATH": f"{clients.bin}{os.pathsep}{env['PATH']}"}
            t0 = time.perf_counter()
            proc = subprocess.run(["bash", str(tmp_path / "session.sh")], cwd=work, env=session_env,
                                  capture_output=True, stdin=subprocess.DEVNULL, text=True, timeout=540)
        log = proc.stdout + proc.stderr
        (tmp_path / "session.log").write_text(log)
        assert proc.returncode == 0, f"the README path stopped (see {tmp_path / 'session.log'}):\n{log[-6000:]}"
    finally:
        server.send_signal(signal.SIGINT)  # Ctrl-C: a clean stop
        out, err = server.communicate(timeout=30)
    assert server.returncode == 0 and "hub server stopped" in err and "Traceback" not in err, err

    # packaged, loaded, DKI trained and pushed
    assert (work / "synfashion-hf" / "manifest.json").is_file()
    assert re.search(r"DatasetDict\(\{\s*train", log), "load_dataset printed its splits"
    for artifact in ("neg/learned_embeds.safetensors", "pos/pytorch_lora_weights.safetensors"):
        assert (work / artifact).stat().st_mode & 0o044, f"{artifact} is readable by others (not 0600)"
    # translated (train and test splits), evaluated, reported
    manifest = json.loads((work / "synfashion-r2r" / "manifest.json").read_text())
    held = {split for split, n in manifest["counts"]["per_split"].items() if n}
    assert manifest["kind"] == "translated" and held == {"train", "test"}
    assert json.loads((work / "eval" / "ours.json").read_text())["n"] == 8
    assert (work / "report" / "report.html").is_file() and (work / "dress-report" / "report.html").is_file()
    # published and read back by repo id: the pull verified, and downstream trained on the Hub copy
    assert (work / "synfashion-copy" / "manifest.json").is_file()
    results = json.loads((work / "downstream" / "results.json").read_text())
    assert set(results["variants"]) == {"rendered", "translated"}
    assert results["variants"]["translated"]["source"] == f"{DEFAULT_USER}/synfashion-r2r"
    assert results["test_sets"]["real"]["images"] == 16
    assert "Traceback" not in log
    print(f"README path: {time.perf_counter() - t0:.0f}s")
