#!/usr/bin/env bash
# The prepared GPU check (issue 15): translation, DKI training and translate-dataset benchmarks in one command under
# one time budget, one JSON file + logs in $OUT (./gpu-check-out when OUT is unset), a short table printed last.
#
#   bash scripts/gpu_check.sh                  # on the GPU machine, from the repository root (budget 480 s)
#   bash scripts/gpu_check.sh --budget 300     # a shorter run: steps that would not fit are skipped, and say so
#   bash scripts/gpu_check.sh --tiny           # CPU smoke test: tiny model, small sizes (tests/test_gpu_check.py)
#
# Packages the GPU image lacks (diffusers, datasets, webdataset, ...) come as wheels in .whl/, downloaded beforehand
# on a CPU machine by scripts/gpu_wheels.sh; they are installed into /tmp/site (no venv, no index, no deps) and put
# first on PYTHONPATH. Where diffusers is already installed (a developer's venv), nothing is installed.
# The device-tool invocation is in docs/PERFORMANCE.md ("GPU check").
set -uo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
OUT="${OUT:-./gpu-check-out}"
mkdir -p "$OUT"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 HF_HUB_DISABLE_TELEMETRY=1 TOKENIZERS_PARALLELISM=false

# find_spec, not import: importing diffusers costs seconds (torch with it), and this only asks whether it is there
if ! "$PY" -c "import importlib.util as u, sys; sys.exit(any(u.find_spec(m) is None for m in ('diffusers', 'datasets', 'webdataset')))" 2>/dev/null; then
  if ! compgen -G ".whl/*.whl" >/dev/null; then
    echo "gpu_check.sh: diffusers/datasets/webdataset are not importable and there is no .whl/ folder:" \
         "run scripts/gpu_wheels.sh on a CPU machine first, and carry .whl (docs/PERFORMANCE.md)" >&2
    exit 2
  fi
  echo "installing $(ls .whl/*.whl | wc -l) wheels from .whl/ into /tmp/site"
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    >"$OUT/install.log" 2>&1 || { echo "gpu_check.sh: wheel install failed (see $OUT/install.log)" >&2; exit 2; }
  export PYTHONPATH="/tmp/site:$PYTHONPATH"
fi
exec "$PY" scripts/gpu_check.py --out "$OUT" "$@"
