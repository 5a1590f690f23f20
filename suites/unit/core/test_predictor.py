"""ImagePredictor: shapes in the image frame, prompt types, and clear errors for bad input."""

import numpy as np
import pytest
import torch

from sam3spec.config import TINY_PRESET
from sam3spec.models.build import build_student
from sam3spec.predictor import ImagePredictor, image_to_tensor


@pytest.fixture(scope="module")
def predictor():
    torch.manual_seed(0)
    predictor = ImagePredictor(build_student(TINY_PRESET))
    image = np.random.default_rng(0).integers(0, 256, (90, 150, 3), dtype=np.uint8)  # not square
    predictor.set_image(image)
    return predictor


@pytest.mark.parametrize(
    "prompt",
    [
        {"text": "red circle"},
        {"boxes": [[10, 10, 60, 50]]},
        {"boxes": [[10, 10, 60, 50], [70, 20, 140, 80]], "box_labels": [1, 0]},
        {"points": [[30, 40]], "point_labels": [1]},
        {"text": "circle", "boxes": [[10, 10, 60, 50]]},
    ],
)
def test_outputs_in_image_frame(predictor, prompt):
    result = predictor.predict(**prompt, threshold=0.0)  # random weights: keep everything
    queries = predictor.model.config.detr.num_queries
    assert result.masks.shape == (queries, 90, 150) and result.masks.dtype == bool
    assert result.boxes_xyxy.shape == (queries, 4)
    assert (result.boxes_xyxy[:, [0, 2]] <= 150).all() and (result.boxes_xyxy[:, [1, 3]] <= 90).all()
    assert np.all(np.diff(result.scores) <= 0) and 0 <= result.presence <= 1
    assert np.isfinite(result.scores).all()


def test_threshold_filters(predictor):
    assert len(predictor.predict(text="circle", threshold=1.01).scores) == 0


@pytest.mark.parametrize(
    "prompt, error, message",
    [
        ({}, ValueError, "empty prompt"),
        ({"text": "   "}, ValueError, "empty prompt"),
        ({"boxes": [[10, 10, float("nan"), 50]]}, ValueError, "NaN"),
        ({"boxes": [[10, 10, 400, 50]]}, ValueError, "boxes: expected x0 < x1 <= 150"),
        ({"boxes": [[50, 10, 10, 50]]}, ValueError, "boxes: expected"),
        ({"points": [[10, 200]]}, ValueError, "points: expected"),
        ({"points": [[10, 20]], "point_labels": [2]}, ValueError, "point_labels"),
    ],
)
def test_bad_prompts(predictor, prompt, error, message):
    with pytest.raises(error, match=message):
        predictor.predict(**prompt)


def test_predict_before_set_image():
    with pytest.raises(RuntimeError, match="set_image"):
        ImagePredictor(build_student(TINY_PRESET)).predict(text="x")


@pytest.mark.parametrize(
    "image, error, message",
    [
        (np.zeros((10, 10, 4), np.uint8), ValueError, "H x W x 3"),
        (np.zeros((10, 10, 3), np.float32), TypeError, "uint8"),
        (torch.zeros(1, 10, 10), ValueError, r"\[3, H, W\]"),
        (torch.full((3, 4, 4), 2.0), ValueError, r"\[0, 1\]"),
        (torch.zeros(3, 4, 4, dtype=torch.int32), TypeError, "uint8 or float"),
        ("image.png", TypeError, "numpy array, PIL image or torch tensor"),
        (np.zeros((0, 10, 3), np.uint8), ValueError, "empty image"),
    ],
)
def test_bad_images(image, error, message):
    with pytest.raises(error, match=message):
        image_to_tensor(image)
