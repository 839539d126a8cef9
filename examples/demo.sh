#!/usr/bin/env bash
# Sets up recsdk in .venv and runs the quickstart: a generated shop tracked into an embedded
# SQLite file, fitted, and recommending with reasons (the README's demo).
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e .
if ! ls recsdk/engine/__pycache__/*.nbi >/dev/null 2>&1; then
    echo "(first run: numba compiles the engine's kernels, about a minute on 2 cores; later runs take seconds)"
fi
.venv/bin/python examples/quickstart.py "$@"
