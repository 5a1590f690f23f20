"""Phase 2 gate (``-m phase2``): the distilled student against its teacher on the held-out split.

Evaluated on a run directory's artefacts (``metrics.json`` = ``{"teacher": {...}, "student":
{...}}``, ``phase2/init_report.json``, ``pipeline.json``): the concept-world main job's by default
(the ``distill_run`` fixture, minutes on a CPU, hence ``slow``), or a real run's with ``--run-dir``.
"""

from __future__ import annotations

import json

import pytest

pytestmark = [pytest.mark.phase2, pytest.mark.slow]


def context(run) -> dict:
    stage = json.loads((run / "phase2" / "stage.json").read_text())["stage"]
    world = (run / "world" / "world.json").is_file()
    return {
        "preset": stage["student"],
        "weights": "trained",
        "data": "concept-world" if world else "real",
        "resolution": stage["resolution"],
    }


def usable(gate, distill_run, spec_id: str):
    """The run's path; records the spec as not measured (and skips) when there is no run."""
    path, problem = distill_run
    if problem:
        gate.not_measured(spec_id, problem)
        pytest.skip(problem)
    return path


def metrics(run) -> dict:
    return json.loads((run / "metrics.json").read_text())


@pytest.mark.spec("phase2.miou_ratio", "phase2.presence_f1_ratio")
@pytest.mark.parametrize(
    ("spec_id", "key"), [("phase2.miou_ratio", "mIoU"), ("phase2.presence_f1_ratio", "presence_f1")]
)
def test_student_reaches_the_teacher(gate, distill_run, spec_id, key):
    distill_run = usable(gate, distill_run, spec_id)
    figures = metrics(distill_run)
    teacher, student = figures["teacher"][key], figures["student"][key]
    if not teacher:  # a teacher that learnt nothing cannot be a reference (never a silent pass)
        reason = f"the teacher's {key} is 0 (student {student:.4f}): the ratio is undefined"
        gate.not_measured(spec_id, reason, **context(distill_run))
        pytest.skip(reason)
    note = (
        f"teacher {key} {teacher:.4f}, student {student:.4f} (cgF1 teacher {figures['teacher']['cgF1']:.2f}, "
        f"student {figures['student']['cgF1']:.2f}; {int(figures['student']['num_pairs'])} held-out pairs)"
    )
    gate.check(spec_id, student / teacher, **context(distill_run), note=note)


@pytest.mark.spec("phase2.init_missing_keys")
def test_phase2_started_from_phase1(gate, distill_run):
    distill_run = usable(gate, distill_run, "phase2.init_missing_keys")
    report = json.loads((distill_run / "phase2" / "init_report.json").read_text())
    gate.check(
        "phase2.init_missing_keys",
        len(report["missing"]) + len(report["mismatched"]),
        **context(distill_run),
        note=f"from {report['from']}: {report['summary']}",
    )


@pytest.mark.spec("phase2.pipeline_minutes")
def test_main_job_time(gate, distill_run):
    distill_run = usable(gate, distill_run, "phase2.pipeline_minutes")
    record_path = distill_run / "pipeline.json"
    if not record_path.is_file():
        gate.not_measured("phase2.pipeline_minutes", "not a concept-world pipeline run (no pipeline.json)")
        pytest.skip("no pipeline.json")
    record = json.loads(record_path.read_text())
    parts = ", ".join(f"{name} {seconds:.0f} s" for name, seconds in record["seconds"].items())
    gate.check("phase2.pipeline_minutes", record["total_seconds"] / 60, **context(distill_run), note=parts)
