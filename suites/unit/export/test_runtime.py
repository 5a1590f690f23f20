"""The .pte predictor has the eager predictor's API and, given the same computation, its answers.

The program here is a stand-in that runs the eager export wrappers behind ``PteProgram``'s
interface, so the predictor's plumbing (padding, text, geometry, post-processing) is tested
without lowering; the runtime gate runs a real ``.pte``.
"""

from __future__ import annotations

import numpy as np
import pytest

from sam3spec.export.runtime import PtePredictor
from sam3spec.export.text_table import build_text_table
from sam3spec.predictor import ImagePredictor


@pytest.fixture(scope="module")
def image():
    rng = np.random.default_rng(0)
    return rng.integers(0, 255, size=(90, 120, 3), dtype=np.uint8)


@pytest.mark.parametrize(
    "prompt",
    [
        {"text": "red circle"},
        {"boxes": [[10, 10, 60, 50]]},
        {"points": [[30, 40], [80, 20]], "point_labels": [1, 0]},
        {"text": "blue square", "boxes": [[5, 5, 100, 80]], "box_labels": [0]},
    ],
)
def test_same_predictions_as_eager(tiny_student, plain_modules, eager_program, image, prompt):
    eager, pte = ImagePredictor(tiny_student), PtePredictor(eager_program(plain_modules))
    eager.set_image(image)
    pte.set_image(image)
    expected, actual = eager.predict(threshold=0.0, **prompt), pte.predict(threshold=0.0, **prompt)
    np.testing.assert_allclose(actual.scores, expected.scores, atol=1e-5)
    np.testing.assert_allclose(actual.boxes_xyxy, expected.boxes_xyxy, atol=1e-3)
    assert abs(actual.presence - expected.presence) < 1e-5
    assert (actual.masks == expected.masks).mean() > 0.999


def test_errors_match_the_eager_predictor(plain_modules, eager_program, image):
    predictor = PtePredictor(eager_program(plain_modules))
    with pytest.raises(RuntimeError, match="set_image"):
        predictor.predict(text="red circle")
    predictor.set_image(image)
    with pytest.raises(ValueError, match="empty prompt"):
        predictor.predict()
    with pytest.raises(ValueError, match="slots"):
        predictor.predict(points=[[1, 1]] * 5)


def test_text_table_skips_encode_text(plain_modules, eager_program, image, tmp_path):
    from sam3spec.models.text_encoder import Tokenizer

    tokenizer = Tokenizer(plain_modules.student.config.text)
    table = build_text_table(
        ["red circle", "blue square", "red circle"], tokenizer, plain_modules.encode_text, "tiny"
    )
    assert table.phrases == ["red circle", "blue square"]
    path = table.save(tmp_path / "table.safetensors")
    program = eager_program(plain_modules)
    predictor = PtePredictor(program, text_table=path)
    predictor.set_image(image)
    with_table = predictor.predict(text="red circle", threshold=0.0)
    assert "encode_text" not in program.calls and predictor.model.text_lookups == 1
    predictor.predict(text="green star", threshold=0.0)
    assert "encode_text" in program.calls
    reference = PtePredictor(eager_program(plain_modules))
    reference.set_image(image)
    np.testing.assert_allclose(
        with_table.scores, reference.predict(text="red circle", threshold=0.0).scores, atol=2e-3
    )
