#!/usr/bin/env bash
# The tests CI gates on: formatting and lint (ruff), then the unit suites and the fast stage gates
# (everything not marked slow). Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/ruff format --check --quiet . || { echo "test: run '.venv/bin/ruff format .' (files above are not formatted)"; exit 1; }
.venv/bin/ruff check --quiet .
exec .venv/bin/python -m pytest suites -m "not slow" -q -p no:cacheprovider "$@"
