"""Stage 3 gate (``-m stage3``). So far the metric self-checks of issue 6's evaluators; the
training-dependent Stage 3 specs (cgF1 / IL_MCC gains, ratio to the teacher) are added with Stage 3."""

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
    gate.check("stage3.eval.oracle_cgf1", summary["cgF1"], pairs=int(summary["num_pairs"]),
               IL_MCC=round(summary["IL_MCC"], 6))  # fmt: skip


@pytest.mark.spec("stage3.eval.oracle_jf")
def test_ground_truth_scores_perfect_jf(gate, concept_world, tmp_path):
    annotations = concept_world.paths.sav_val / "Annotations_6fps"
    shutil.copytree(annotations, tmp_path / "pred")
    summary = evaluate_vos(annotations, tmp_path / "pred").summary()
    gate.check("stage3.eval.oracle_jf", summary["J&F"], objects=summary["num_objects"])
