"""Metrics of an empty concept world say so ("not defined: 0 pairs"), never a perfect 1.0."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sam3spec.cli import main
from sam3spec.world.generate import WorldPaths
from sam3spec.world.pipeline import side_by_side


def empty_world(root: Path) -> Path:
    paths = WorldPaths.of(root)
    for gold in paths.saco_eval:
        gold.parent.mkdir(parents=True, exist_ok=True)
        gold.write_text(json.dumps({"images": [], "annotations": [], "categories": [{"id": 1, "name": "x"}]}))
    paths.sa1b_eval.mkdir(parents=True)
    return root


def test_teacher_eval_on_an_empty_world_reports_not_defined(
    tiny_teacher_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    world, out = empty_world(tmp_path / "world"), tmp_path / "metrics.json"
    code = main(
        ["teacher", "eval", "--world", str(world), "--teacher", str(tiny_teacher_dir), "--dtype", "float32"]
        + ["--json", str(out)]
    )
    assert code == 0
    printed = capsys.readouterr().out
    assert "not defined: 0 pairs" in printed and "1.0000" not in printed
    metrics = json.loads(out.read_text())
    assert metrics["num_pairs"] == 0 and metrics["note"] == "not defined: 0 pairs"
    assert all(metrics[key] is None for key in ("mIoU", "presence_f1", "pmF1", "cgF1", "IL_MCC"))


def test_side_by_side_prints_not_defined() -> None:
    from sam3spec.eval.metrics import summarize

    empty = summarize([])
    table = side_by_side({"teacher": empty, "student": empty})
    assert "| presence_f1 | not defined | not defined |" in table
    assert "teacher: not defined: 0 pairs" in table
