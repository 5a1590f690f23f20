#!/usr/bin/env bash
# The tests CI gates on: unit suites and the fast stage gates (everything not marked slow).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python -m pytest suites -m "not slow" -q -p no:cacheprovider "$@"
