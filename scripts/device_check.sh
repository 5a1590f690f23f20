#!/usr/bin/env bash
# The GPU readiness check (python -m sam3spec.bench.device): the seed student's Phase 1 step (bf16,
# eager / torch.compile, teacher targets cached / online, DDP over NCCL with one process) and the
# student's and SAM 3's inference throughput, written to OUT_DIR/device_check.json for
# `sam3spec report` / `pytest --ingest`. Stopped after 8 minutes (DEVICE_CHECK_LIMIT seconds); the
# JSON keeps every figure measured by then.
#
#   bash scripts/device_check.sh OUT_DIR            # on a CUDA machine
#   bash scripts/device_check.sh OUT_DIR --tiny     # tiny sizes on the CPU (CI): GPU figures "no GPU"
#
# Python: PYTHON, else this checkout's .venv, else python3. Needs torch, timm, transformers and
# open_clip_torch (docs/BENCHMARKS.md, "GPU readiness check").
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
if [ $# -lt 1 ] || [[ $1 == -* ]]; then
  echo "usage: bash scripts/device_check.sh OUT_DIR [--tiny] [--teacher SAM3_DIR] [--deadline SECONDS]" >&2
  exit 2
fi
out=$1
shift
python=${PYTHON:-}
if [ -z "$python" ]; then
  if [ -x "$root/.venv/bin/python" ]; then python=$root/.venv/bin/python; else python=python3; fi
fi
mkdir -p "$out"
export PYTHONPATH="$root${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
exec timeout --kill-after=20 "${DEVICE_CHECK_LIMIT:-480}" "$python" -m sam3spec.bench.device --out "$out" "$@"
