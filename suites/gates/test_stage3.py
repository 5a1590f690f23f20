"""Stage 3 gate (``-m stage3``): the metric self-checks of the SA-Co / SA-V evaluators (fast), and Stage 3
against Phase 2 and the teacher on the concept world's held-out split (``slow``: the pipeline run
of ``distill_run``, or ``--run-dir``)."""

from __future__ import annotations

import json
import shutil

import pytest

from sam3spec.eval.saco_files import evaluate_saco
from sam3spec.eval.vos import evaluate_vos

pytestmark = pytest.mark.stage3


@pytest.mark.spec("stage3.eval.oracle_cgf1")
def test_ground_truth_scores_perfect_cgf1(gate, concept_world, tmp_path):
    gold = concept_world.paths.saco_eval
    annotations = json.loads(gold[0].read_text())["annotations"]
    results = [
        {"image_id": a["image_id"], "segmentation": a["segmentation"], "score": 1.0} for a in annotations
    ]
    summary = evaluate_saco(list(gold), results).summary()
    gate.check(
        "stage3.eval.oracle_cgf1",
        summary["cgF1"],
        pairs=int(summary["num_pairs"]),
        IL_MCC=round(summary["IL_MCC"], 6),
    )


@pytest.mark.spec("stage3.eval.oracle_jf")
def test_ground_truth_scores_perfect_jf(gate, concept_world, tmp_path):
    annotations = concept_world.paths.sav_val / "Annotations_6fps"
    shutil.copytree(annotations, tmp_path / "pred")
    summary = evaluate_vos(annotations, tmp_path / "pred").summary()
    gate.check("stage3.eval.oracle_jf", summary["J&F"], objects=summary["num_objects"])


def stage3_metrics(gate, distill_run, spec_id: str) -> dict:
    """``metrics.json`` of the run; records ``spec_id`` as not measured (and skips) without Stage 3."""
    path, problem = distill_run
    metrics_path = path / "metrics.json"
    if problem or not metrics_path.is_file():
        reason = problem or f"{metrics_path} not found"
        gate.not_measured(spec_id, reason)
        pytest.skip(reason)
    metrics = json.loads(metrics_path.read_text())
    if "stage3" not in metrics:
        reason = f"{metrics_path} has no Stage 3 figures (a run without Stage 3)"
        gate.not_measured(spec_id, reason)
        pytest.skip(reason)
    return metrics


def stage3_context(path) -> dict:
    return {
        "preset": "efficientsam3-tiny",
        "weights": "trained",
        "data": "concept-world held-out split",
        "run": str(path),
    }


@pytest.mark.slow
@pytest.mark.spec("stage3.cgf1_gain")
def test_stage3_improves_cgf1(gate, distill_run):
    metrics = stage3_metrics(gate, distill_run, "stage3.cgf1_gain")
    before, after = metrics["student"]["cgF1"], metrics["stage3"]["cgF1"]
    gate.check(
        "stage3.cgf1_gain",
        after - before,
        **stage3_context(distill_run[0]),
        note=f"cgF1 Phase 2 {before:.4f} -> Stage 3 {after:.4f}; IL_MCC "
        f"{metrics['student']['IL_MCC']:.4f} -> {metrics['stage3']['IL_MCC']:.4f}",
    )


@pytest.mark.slow
@pytest.mark.spec("stage3.il_mcc_gain_hard_negatives")
def test_stage3_improves_il_mcc_on_hard_negatives(gate, distill_run):
    spec_id = "stage3.il_mcc_gain_hard_negatives"
    metrics = stage3_metrics(gate, distill_run, spec_id)
    kinds = metrics.get("by_kind", {})
    if not kinds.get("student") or not kinds.get("stage3"):
        gate.not_measured(spec_id, "no query-kind breakdown in metrics.json (world without a manifest)")
        pytest.skip("no by_kind")
    subset = "positive+hard_negative"
    before, after = kinds["student"][subset]["IL_MCC"], kinds["stage3"][subset]["IL_MCC"]
    pairs = int(kinds["stage3"][subset]["num_pairs"])
    gate.check(
        spec_id,
        after - before,
        **stage3_context(distill_run[0]),
        note=f"IL_MCC on {pairs} positive + hard-negative pairs: Phase 2 {before:.4f} -> Stage 3 {after:.4f}",
    )


DIAGNOSIS_TITLE = "stage3: diagnosis (where cgF1 goes, held-out split)"


def attach_diagnosis(gate, metrics: dict) -> None:
    """The run's diagnosis table (teacher, Phase 2 and Stage 3 students) in the report, or why not."""
    from sam3spec.world.pipeline import diagnosis_report

    diagnoses = metrics.get("diagnosis")
    if diagnoses:
        gate.table(DIAGNOSIS_TITLE, diagnosis_report(diagnoses))
    else:
        gate.table(DIAGNOSIS_TITLE, "not measured: the run's metrics.json has no diagnosis (an older run)")


RATIOS = [
    ("stage3.cgf1_ratio", "cgF1"),
    ("stage3.il_mcc_ratio", "IL_MCC"),
    ("stage3.pmf1_ratio", "pmF1"),
    ("stage3.miou_ratio", "mIoU"),
]


@pytest.mark.slow
@pytest.mark.spec(*(spec_id for spec_id, _ in RATIOS))
@pytest.mark.parametrize(("spec_id", "key"), RATIOS)
def test_stage3_reaches_the_teacher(gate, distill_run, spec_id, key):
    metrics = stage3_metrics(gate, distill_run, spec_id)
    attach_diagnosis(gate, metrics)
    teacher, student = metrics["teacher"][key], metrics["stage3"][key]
    if teacher is None or student is None:  # e.g. no GT instance on the split: pmF1 not defined
        reason = f"{key} is not defined on this split (teacher {teacher}, Stage 3 student {student})"
        gate.not_measured(spec_id, reason, **stage3_context(distill_run[0]))
        pytest.skip(reason)
    if not teacher:  # a teacher that scored 0 is no reference (never a silent pass)
        reason = f"the teacher's {key} is 0 (Stage 3 student {student:.4f}): the ratio is undefined"
        gate.not_measured(spec_id, reason, **stage3_context(distill_run[0]))
        pytest.skip(reason)
    gate.check(
        spec_id,
        student / teacher,
        **stage3_context(distill_run[0]),
        note=f"teacher {key} {teacher:.4f}, Stage 3 student {student:.4f}",
    )
