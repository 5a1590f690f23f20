"""What ``export_student`` leaves on disk, with the lowering and the runtime replaced by stand-ins
(the real ones take minutes; the export gate runs them): files are staged beside the program and
renamed at the end, a failed parity leaves an earlier program and its manifest as they were, and a
stale companion of an earlier export goes."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
import torch

from sam3spec.export import parity, pipeline, profile, runtime
from sam3spec.export.parity import ParityReport
from sam3spec.export.pipeline import ExportInputs, ParityError, export_student
from sam3spec.export.recipes import get_export_recipe

PROGRAM = b"\x40\x00\x00\x00ET12 new program"


def _report(mask_iou: float) -> ParityReport:
    return ParityReport(6, mask_iou, 0.99, 0.1, 0.1, 0.1, 0.99, 0.99, None, mask_iou, 0.99, 0.1, "eager")


@pytest.fixture
def stand_ins(monkeypatch):
    """Lowering returns :data:`PROGRAM`; the runtime, breakdown and parity are stand-ins whose
    mask IoU the test sets (``stand_ins.mask_iou``)."""
    state = SimpleNamespace(mask_iou=1.0)
    lowered = SimpleNamespace(
        buffer=PROGRAM,
        modules=None,
        methods=("decode",),
        delegation={},
        metadata={},
        quantization=[],
        seconds={},
    )
    monkeypatch.setattr(pipeline, "export_model", lambda *args, **kwargs: lowered)
    monkeypatch.setattr(profile, "pte_breakdown", lambda path: SimpleNamespace(to_json=lambda: {}))
    monkeypatch.setattr(runtime, "PteProgram", lambda path: object())
    monkeypatch.setattr(parity, "check_parity", lambda *args, **kwargs: _report(state.mask_iou))
    return state


def _export(student, out, **options):
    inputs = ExportInputs([torch.zeros(3, student.config.image_size, student.config.image_size)], [], ["x"])
    return export_student(
        student, out, get_export_recipe("xnnpack", "fp32"), inputs, log=lambda line: None, **options
    )


@pytest.fixture(scope="module")
def student():
    from sam3spec.models.build import build_student

    return build_student("efficientsam3-tiny").eval()


def test_a_failed_parity_keeps_the_earlier_export(tmp_path, stand_ins, student):
    out = tmp_path / "model.pte"
    out.write_bytes(b"earlier program")
    (tmp_path / "model.json").write_text('{"earlier": true}')
    stand_ins.mask_iou = 0.5
    with pytest.raises(ParityError, match="model.parity-failed.json"):
        _export(student, out)
    assert out.read_bytes() == b"earlier program"
    assert json.loads((tmp_path / "model.json").read_text()) == {"earlier": True}
    failed = json.loads((tmp_path / "model.parity-failed.json").read_text())
    assert failed["written"] is False and failed["parity"]["passed"] is False
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "model.json",
        "model.parity-failed.json",
        "model.pte",
    ]


def test_a_written_export_replaces_every_companion(tmp_path, stand_ins, student):
    out = tmp_path / "model.pte"
    (tmp_path / "model.text_table.safetensors").write_bytes(b"stale table of an earlier program")
    (tmp_path / "model.parity-failed.json").write_text("{}")
    manifest = _export(student, out, text_table=False)
    assert out.read_bytes() == PROGRAM and manifest["written"] is True
    assert json.loads((tmp_path / "model.json").read_text())["pte_bytes"] == len(PROGRAM)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.json", "model.pte"]
