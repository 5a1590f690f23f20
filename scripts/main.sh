#!/usr/bin/env bash
# The main job: set up, then every stage gate on the embedded concept world with the performance
# report reports/${REPORT:-concept-world}.md (+ .json). Extra arguments go to pytest.
#
# The Phase 1 / Phase 2 gates run the distillation pipeline on the concept world when its
# artefacts are missing (runs/concept-world: world -> shipped teacher -> Phase 1 -> Phase 2 ->
# student vs teacher, metrics.json); it is run first here so its progress and its side-by-side
# table are visible, and the gates then reuse it (cached by configuration hash).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
report=${REPORT:-concept-world}
start=$SECONDS
set +e
.venv/bin/python -m sam3spec.cli train pipeline --out runs/concept-world
pipeline_status=$?
echo "main: distillation pipeline exit $pipeline_status after $((SECONDS - start)) s"
# The GPU readiness check at tiny sizes (seconds on a CPU): its JSON goes into the report, the
# figures that need a GPU recorded as not measured ("no GPU"). A full run's JSON from a GPU machine
# (`bash scripts/device_check.sh DIR` there) given as `--ingest DIR/device_check.json` replaces them.
device_json=runs/device-check/device_check.json
rm -f "$device_json"
bash scripts/device_check.sh runs/device-check --tiny || echo "main: device check (tiny) exit $?"
ingest=()
[ -f "$device_json" ] && ingest=(--ingest "$device_json")
# A missed target is a result (listed in the report and summarised below), not a crash: the job
# exits 0 when every gate ran and the report is written. STRICT=1: any missed target fails it.
strict=()
[ "${STRICT:-0}" = 1 ] || strict=(--spec-failures-ok)
.venv/bin/python -m pytest suites/gates -p no:cacheprovider --report "$report" -q "${strict[@]}" "${ingest[@]}" "$@"
status=$?
set -e
echo "main: report at reports/$report.md (pytest exit $status), $((SECONDS - start)) s in all"
exit $status
