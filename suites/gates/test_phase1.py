"""Phase 1 gate (``-m phase1``): feature alignment reduced the feature losses.

Evaluated on a run directory's artefacts (``phase1/summary.json``): the concept-world main job's
by default (produced by the ``distill_run`` fixture, minutes on a CPU, hence ``slow``), or a real
run's with ``--run-dir``.
"""

from __future__ import annotations

import json

import pytest

pytestmark = [pytest.mark.phase1, pytest.mark.slow]


def context(run, summary: dict) -> dict:
    stage = json.loads((run / "phase1" / "stage.json").read_text())["stage"]
    world = (run / "world" / "world.json").is_file()
    return {
        "preset": stage["student"],
        "weights": "trained",
        "data": "concept-world" if world else "real",
        "resolution": stage["resolution"],
        "device": summary.get("device"),
    }


@pytest.mark.spec("phase1.feature_loss_ratio")
def test_feature_losses_fell(gate, distill_run):
    distill_run, problem = distill_run
    if problem:
        gate.not_measured("phase1.feature_loss_ratio", problem)
        pytest.skip(problem)
    summary = json.loads((distill_run / "phase1" / "summary.json").read_text())
    note = (
        f"fpn + encoder feature loss {summary['feature_loss_start']:.4g} -> {summary['feature_loss_end']:.4g} "
        f"(mean of the first / last {summary['window']} of {summary['steps']} steps)"
    )
    gate.check(
        "phase1.feature_loss_ratio", summary["feature_loss_ratio"], **context(distill_run, summary), note=note
    )
