#!/usr/bin/env bash
# Set up .venv from nothing (CPU torch wheel first, so no CUDA build is pulled) and run the test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/_venv.sh
# The preference and report pages are tested in a real headless browser (tests/test_r2r_study_browser.py). Debian's
# chromium (124 MB download, about 40 s on a fresh 2-core machine) is installed when it is missing and apt can;
# otherwise those tests skip and say why.
if ! command -v chromium >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  { timeout 120 apt-get update -qq && DEBIAN_FRONTEND=noninteractive timeout 300 \
      apt-get install -y -qq --no-install-recommends chromium; } >/dev/null 2>&1 \
    || echo "note: chromium could not be installed; the headless-browser tests will skip"
fi
# One worker process per core (at most 4): each test file runs whole in one worker (--dist loadfile), so a file's
# module fixtures are built once; conftest.py's session fixtures (the tiny models, the sample build) once per worker.
# -rs: say why a test skipped (no chromium, ...). A test that hangs fails on its own (pytest-timeout, pyproject.toml);
# the outer limit catches what that cannot (a worker killed by the kernel leaves pytest-xdist waiting): Ctrl-C at
# 25 minutes, so pytest still prints what failed (--foreground: a Ctrl-C typed at the terminal still reaches pytest).
# --no-loadscope-reorder: files in collection order, the longest first (tests/conftest.py's LONGEST_FILES).
# Bytecode caches on (this machine sets PYTHONDONTWRITEBYTECODE): without them every one of the suite's ~90 Python
# starts compiles the project's modules again (~1 s each) and pytest rewrites every test file's asserts again in each
# worker (~6 s); __pycache__ folders are git-ignored.
unset PYTHONDONTWRITEBYTECODE
timeout --foreground --signal=INT --kill-after=60 1500 python -m pytest -q -rs -n auto --maxprocesses 4 \
  --dist loadfile --no-loadscope-reorder "$@"
