"""A model's answers in the image's pixels: the evaluator's geometry for a letterboxed student on a
non-square image is the image predictor's, and the COCO results are SAM 3's dumps."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from pycocotools import mask as mask_utils

from sam3spec.eval.predictions import PhrasePrediction, coco_results, predict_phrases
from sam3spec.eval.saco_files import evaluate_saco
from sam3spec.eval.student_view import StudentTeacherView
from sam3spec.predictor import ImagePredictor

PHRASES = ["red circle", "blue square"]


@pytest.fixture(scope="module")
def student():
    from sam3spec.models.build import build_student
    from sam3spec.models.image_encoder import randomise_batch_norms

    torch.manual_seed(0)
    return randomise_batch_norms(build_student("efficientsam3-tiny").eval())


@pytest.mark.parametrize("shape", [(48, 80), (90, 60)])
def test_student_view_matches_the_image_predictor_on_non_square_images(student, shape) -> None:
    image = np.random.default_rng(0).integers(0, 255, (*shape, 3), dtype=np.uint8)
    ours = predict_phrases(StudentTeacherView(student), image, PHRASES, min_score=0.0)
    predictor = ImagePredictor(student)
    predictor.set_image(image)
    for phrase, mine in zip(PHRASES, ours, strict=True):
        reference = predictor.predict(text=phrase, threshold=0.0)  # best first; ours in query order
        order = np.argsort(-mine.scores, kind="stable")
        assert mine.masks.shape[1:] == shape
        np.testing.assert_allclose(mine.scores[order], reference.scores, atol=1e-6)
        assert (mine.masks[order] != reference.masks).mean() < 1e-3  # bilinear rounding at edges only
        boxes = mine.boxes_xywh[order]
        xyxy = np.concatenate([boxes[:, :2], boxes[:, :2] + boxes[:, 2:]], axis=1)
        np.testing.assert_allclose(xyxy, reference.boxes_xyxy, atol=1e-3)
        assert mine.presence == pytest.approx(reference.presence, abs=1e-6)


def test_coco_results_are_sam3_dumps_and_score_the_box_variant(tmp_path) -> None:
    mask = np.zeros((40, 60), bool)
    mask[10:30, 15:45] = True
    prediction = PhrasePrediction(mask[None], np.array([[15.0, 10.0, 30.0, 20.0]]), np.array([0.9]), 0.95)
    (result,) = coco_results(7, prediction, 0.05, 40, 60)
    assert result["bbox"] == [0.25, 0.25, 0.5, 0.5] and result["area"] == pytest.approx(600 / 2400)
    assert result["segmentation"]["size"] == [40, 60] and result["category_id"] == 1
    encoded = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    encoded["counts"] = encoded["counts"].decode()
    gt = {
        "images": [  # a positive pair and a negative one (IL_MCC needs both)
            {"id": 7, "height": 40, "width": 60, "is_instance_exhaustive": 1},
            {"id": 8, "height": 40, "width": 60, "is_instance_exhaustive": 1},
        ],
        "annotations": [{"id": 1, "image_id": 7, "segmentation": encoded, "bbox": [0.25, 0.25, 0.5, 0.5]}],
    }
    (tmp_path / "gt.json").write_text(json.dumps(gt))
    # Normalised predictions against normalised GT: compared as stored (as SAM 3 does), not rescaled.
    for iou_type in ("bbox", "segm"):
        summary = evaluate_saco([tmp_path / "gt.json"], [result], iou_type).summary()
        assert summary["cgF1"] == pytest.approx(100, abs=0.05), iou_type
