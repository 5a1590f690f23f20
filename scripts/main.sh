#!/usr/bin/env bash
# The main job: run every stage gate on the embedded concept world and write the performance
# report reports/${REPORT:-concept-world}.md (+ .json). Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
report=${REPORT:-concept-world}
set +e
.venv/bin/python -m pytest suites/gates -p no:cacheprovider --report "$report" -q "$@"
status=$?
set -e
echo "main: report at reports/$report.md (pytest exit $status)"
exit $status
