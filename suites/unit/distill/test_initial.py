"""The student a stage starts from: what its pretrained tower files gave is printed and written
into the run folder (``pretrained_report.json``)."""

from __future__ import annotations

import json

import torch
from safetensors.torch import save_file

from sam3spec.config import override
from sam3spec.distill import RunOptions, runtime
from sam3spec.distill.tasks import ImageTask, Setup
from sam3spec.models.build import build_student
from sam3spec.world.stages import PHASE1_WORLD


def test_pretrained_tower_reports_are_printed_and_saved(tmp_path, capsys) -> None:
    stage = override(PHASE1_WORLD, {"resolution": 64})
    backbone = build_student(stage.student_config()).image_encoder.backbone.state_dict()
    dropped = sorted(backbone)[0]
    weights = {key: value for key, value in backbone.items() if key != dropped}
    weights["head.fc.weight"] = torch.zeros(2, 2)  # a classifier head: ignored, and reported so
    weights["extra.weight"] = torch.zeros(1)  # no place in the backbone
    path = tmp_path / "repvit.safetensors"
    save_file(weights, str(path))
    out = tmp_path / "run"
    options = RunOptions(tmp_path, out, pretrained_backbone=path)
    setup = Setup(
        stage, options, runtime.Processes(), torch.device("cpu"), runtime.Precision(None, False), "k"
    )
    ImageTask.build_student(setup)
    printed = capsys.readouterr().out
    assert (
        f"pretrained weights {path}: loaded {len(backbone) - 1}, missing 1, unexpected 1, ignored 1"
        in printed
    )
    assert f"missing: {dropped}" in printed and "unexpected: extra.weight" in printed
    (entry,) = json.loads((out / "pretrained_report.json").read_text())["towers"]
    assert entry == {
        "source": str(path),
        "loaded": len(backbone) - 1,
        "missing": [dropped],
        "unexpected": ["extra.weight"],
        "ignored": ["head.fc.weight"],
        "adapted": [],
    }
