#!/usr/bin/env bash
# Set up .venv from nothing (CPU torch wheel first, so no CUDA build is pulled) and run the test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/_venv.sh
python -m pytest -q "$@"
