#!/usr/bin/env bash
# Create .venv/ (Python 3.11) and install sam3spec with its pinned dependencies, once.
# Re-running reuses .venv/ and reinstalls only when pyproject.toml changed.
set -euo pipefail
cd "$(dirname "$0")/.."
python_bin=${PYTHON:-$(command -v python3.11 || command -v python3)}
if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv with $python_bin"
  "$python_bin" -m venv .venv
fi
stamp=.venv/.sam3spec-installed
want=$(.venv/bin/python -c 'import hashlib; print(hashlib.sha256(open("pyproject.toml", "rb").read()).hexdigest())')
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "setup: installing sam3spec and its dependencies into .venv (first time: several minutes)"
  # pip's "Location ... is ignored" lines (local mirrors without some packages) are noise here.
  .venv/bin/python -m pip install --quiet --disable-pip-version-check -e ".[dev]" 2>&1 \
    | { grep -v "^WARNING: Location" || true; }
  echo "$want" > "$stamp"
fi
