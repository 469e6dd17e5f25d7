#!/usr/bin/env bash
# Run on a CPU machine with PyPI access, before a GPU check: downloads into .whl/ the manylinux x86_64 cp312 wheels
# that scripts/gpu_check.sh installs on the GPU machine (Python 3.12; torch, transformers, accelerate, peft,
# huggingface_hub, safetensors, pyarrow, rich, numpy, pandas, fsspec, xxhash ... already there, but not these).
# Each wheel is pinned to the version in this project's venv (VENV, default .venv), so the GPU runs what the tests ran.
#
#   bash scripts/gpu_wheels.sh                 # VENV=/path/to/venv to read the versions from another venv
#
# The device tool carries .whl/ with `carry: [".whl"]` (64 MiB limit for the whole working tree; this set is ~6 MiB).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${VENV:-.venv}"
PY="$VENV/bin/python"
[ -x "$PY" ] || { echo "gpu_wheels.sh: no venv at $VENV (set VENV=...)" >&2; exit 2; }

# What the GPU image lacks, found by walking the venv's dependency tree from pyproject's dependencies and removing
# what the image's package list holds (/work/.library/device/KINDS.md, 2026-11-17):
#   diffusers (-> importlib-metadata -> lazy-importer), datasets (-> dill, multiprocess), webdataset (-> braceexpand).
# And one the image has but whose version may break a pin of ours: datasets requires fsspec<=2026.9.0.
PACKAGES=(diffusers datasets webdataset braceexpand dill multiprocess importlib-metadata lazy-importer fsspec)
# Packages the GPU image holds (names only; a carried wheel's requirements must be met by these or by the set).
GPU_HAS="accelerate aiohttp anyio certifi charset-normalizer click filelock fsspec h11 hf-xet httpcore httpx
huggingface-hub idna jinja2 markupsafe numpy packaging pandas peft pillow psutil pyarrow pyyaml regex requests rich
safetensors setuptools tokenizers torch tqdm transformers typing-extensions urllib3 xxhash zipp"

mkdir -p .whl
rm -f .whl/*.whl
pins=()
for name in "${PACKAGES[@]}"; do
  version=$("$PY" -c "import importlib.metadata as m, sys; print(m.version(sys.argv[1]))" "$name" 2>/dev/null) \
    || { echo "gpu_wheels.sh: $name is not installed in $VENV" >&2; exit 2; }
  pins+=("$name==$version")
done
echo "downloading: ${pins[*]}"
"$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
  --platform manylinux2014_x86_64 --platform manylinux1_x86_64 -d .whl "${pins[@]}" \
  2> >(grep -v "^WARNING: Location .* is ignored" >&2)  # local index mirrors that this machine may list

# Every requirement of every carried wheel (no extras, Linux, Python 3.12) must be carried or on the GPU image.
"$PY" - "$GPU_HAS" <<'PY'
import re, sys, zipfile
from pathlib import Path
from packaging.requirements import Requirement

norm = lambda n: re.sub(r"[-_.]+", "-", n).lower()
env = {"python_version": "3.12", "python_full_version": "3.12.3", "sys_platform": "linux", "platform_system": "Linux",
       "platform_machine": "x86_64", "os_name": "posix", "implementation_name": "cpython", "extra": ""}
wheels = sorted(Path(".whl").glob("*.whl"))
carried = {norm(w.name.split("-")[0]) for w in wheels}
have = carried | {norm(n) for n in sys.argv[1].split()}
missing = []
for w in wheels:
    with zipfile.ZipFile(w) as z:
        meta = next(n for n in z.namelist() if n.endswith(".dist-info/METADATA"))
        for line in z.read(meta).decode().splitlines():
            if line.startswith("Requires-Dist:"):
                req = Requirement(line.split(":", 1)[1].strip())
                if (req.marker is None or req.marker.evaluate(env)) and norm(req.name) not in have:
                    missing.append(f"{w.name} needs {req}")
if missing:
    sys.exit("gpu_wheels.sh: requirements neither carried nor on the GPU image:\n  " + "\n  ".join(missing))
total = sum(w.stat().st_size for w in wheels)
print(f"{len(wheels)} wheels, {total / 2**20:.1f} MiB in .whl/ (device transfer limit: 64 MiB for the whole tree)")
for w in wheels:
    print(f"  {w.stat().st_size / 2**20:6.2f} MiB  {w.name}")
if total > 32 * 2**20:
    sys.exit("gpu_wheels.sh: over 32 MiB: too close to the device tool's 64 MiB limit")
PY
