"""``sam3spec eval model --model program.pte``: a ``.pte`` is scored by the evaluator's code path
for two-call predictors, and answers as the eager student does (the program is the eager
stand-in of ``test_runtime.py``; the runtime gate runs a real one)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

import sam3spec.export.runtime as runtime
from sam3spec.eval.model_eval import load_model
from sam3spec.eval.predictions import predict_pairs
from sam3spec.eval.student_view import StudentTeacherView


def test_pte_model_predicts_like_the_eager_student(
    tiny_student, plain_modules, eager_program, tmp_path, monkeypatch
) -> None:
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (48, 80, 3), dtype=np.uint8)).save(tmp_path / "a.png")
    pairs = [
        {
            "id": i,
            "file_name": "a.png",
            "text_input": t,
            "height": 48,
            "width": 80,
            "is_instance_exhaustive": 1,
        }
        for i, t in enumerate(["red circle", "blue square"])
    ]
    (tmp_path / "gt.json").write_text(json.dumps({"images": pairs, "annotations": []}))
    (tmp_path / "model.pte").write_bytes(b"stand-in")
    monkeypatch.setattr(runtime, "PteProgram", lambda path: eager_program(plain_modules))
    model, kind = load_model(tmp_path / "model.pte")
    assert kind == "pte"
    results, presence = predict_pairs(model, tmp_path / "gt.json", tmp_path, min_score=0.0)
    eager, eager_presence = predict_pairs(
        StudentTeacherView(tiny_student), tmp_path / "gt.json", tmp_path, min_score=0.0
    )
    assert len(results) == len(eager) and presence.keys() == eager_presence.keys()
    for pair in presence:  # same answers per pair (queries in another order: best first)
        mine = [r for r in results if str(r["image_id"]) == pair]
        theirs = [r for r in eager if str(r["image_id"]) == pair]
        assert {r["segmentation"]["size"][1] for r in mine} == {80}
        np.testing.assert_allclose(
            sorted(r["score"] for r in mine), sorted(r["score"] for r in theirs), atol=1e-4
        )
        np.testing.assert_allclose(
            sorted(r["area"] for r in mine), sorted(r["area"] for r in theirs), atol=0.02
        )
        assert presence[pair] == pytest.approx(eager_presence[pair], abs=1e-4)


def test_missing_pte_is_named(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match="none.pte: no such .pte file"):
        load_model(tmp_path / "none.pte")
