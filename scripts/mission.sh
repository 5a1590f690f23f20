#!/usr/bin/env bash
# The full-size rehearsal of the real job on this machine (docs/REAL_JOB.md): the full-size SAM 3
# in the hub layout (random weights), every stage one step on plain SA-1B / SA-Co / SA-V / Gold
# folders with the seed student, the SA-Co/Gold table, quantize, export; report
# reports/${REPORT:-mission}.md (+ .json) with the mission.* specs (step time, peak memory, cache
# bytes per sample). Its folder ${MISSION_DIR:-runs/mission} keeps every command's log and record:
# a rerun continues after the last command that finished. Extra arguments go to pytest.
#
# MISSION_TEACHER_RESOLUTION (default 504): the teacher's input side (SAM 3's own is 1008; on a
# 2-core CPU that is ~82 s per image). MISSION_THREADS (default 2): torch threads per command.
set -euo pipefail
cd "$(dirname "$0")/.."
export MISSION_DIR=${MISSION_DIR:-runs/mission}
report=${REPORT:-mission}
start=$SECONDS
set +e
.venv/bin/python -m pytest suites/mission -m mission -p no:cacheprovider -q -s --report "$report" \
  --report-stages mission --spec-failures-ok "$@"
status=$?
set -e
echo "mission: report at reports/$report.md (pytest exit $status), $((SECONDS - start)) s in all"
exit $status
