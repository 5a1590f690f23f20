"""The diagnosis table: cgF1 split into IL_MCC and pmF1 per IoU threshold, false positives on
negative and hard-negative pairs, misses by size, the mask-resolution ceiling; hand-built cases."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from pycocotools import mask as mask_utils

from sam3spec.eval.diagnosis import (
    diagnose,
    diagnosis_table,
    mask_grid,
    resolution_ceiling,
    size_bucket,
)
from sam3spec.eval.saco_files import evaluate_saco

SIDE = 100


def rle(mask: np.ndarray) -> dict:
    encoded = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    encoded["counts"] = encoded["counts"].decode("ascii")
    return encoded


def square(top: int, left: int, size: int) -> np.ndarray:
    mask = np.zeros((SIDE, SIDE), bool)
    mask[top : top + size, left : left + size] = True
    return mask


# Pair 1: three objects (small 2 x 2 = 0.04%, medium 10 x 10 = 1%, large 30 x 30 = 9% of the image);
# pair 2: a negative phrase; pair 3: a hard negative; pair 4: another negative.
OBJECTS = [square(5, 5, 2), square(20, 20, 10), square(50, 50, 30)]
KINDS = {1: "positive", 2: "negative", 3: "hard_negative", 4: "negative"}


@pytest.fixture
def gold(tmp_path: Path) -> Path:
    images = [
        {"id": pid, "height": SIDE, "width": SIDE, "file_name": "a.jpg", "text_input": f"p{pid}"}
        | {"is_instance_exhaustive": 1}
        for pid in KINDS
    ]
    annotations = [
        {"id": index + 1, "image_id": 1, "category_id": 1, "iscrowd": 0, "segmentation": rle(mask)}
        | {"area": float(mask.mean()), "bbox": [0.0, 0.0, 0.1, 0.1]}
        for index, mask in enumerate(OBJECTS)
    ]
    path = tmp_path / "gold.json"
    path.write_text(json.dumps({"images": images, "annotations": annotations, "categories": [{"id": 1}]}))
    return path


def result(pair: int, mask: np.ndarray, score: float = 0.9) -> dict:
    return {"image_id": pair, "category_id": 1, "segmentation": rle(mask), "score": score}


def test_a_perfect_prediction_scores_one_at_every_threshold_and_no_false_positive(gold):
    evaluation = evaluate_saco([gold], [result(1, mask) for mask in OBJECTS])
    diagnosis = diagnose(evaluation, (SIDE, SIDE), kinds=KINDS)
    assert list(diagnosis["pmF1_at"]) == [f"{0.5 + 0.05 * i:.2f}" for i in range(10)]
    assert all(value == pytest.approx(1.0, abs=1e-3) for value in diagnosis["pmF1_at"].values())
    assert diagnosis["IL_MCC"] == pytest.approx(1.0, abs=1e-5)
    assert diagnosis["cgF1"] == pytest.approx(100 * diagnosis["pmF1"] * diagnosis["IL_MCC"])
    assert diagnosis["negative"] == {"pairs": 2, "false_positives": 0, "fp_rate": 0.0}
    assert diagnosis["hard_negative"] == {"pairs": 1, "false_positives": 0, "fp_rate": 0.0}
    assert {b: m["missed"] for b, m in diagnosis["misses"].items()} == {"small": 0, "medium": 0, "large": 0}
    assert diagnosis["ceiling"]["mean_iou"] == pytest.approx(1.0)  # full-resolution masks lose nothing


def test_predictions_on_negative_pairs_are_false_positives_by_kind(gold):
    predictions = [result(1, mask) for mask in OBJECTS]
    predictions += [result(2, square(0, 0, 5)), result(3, square(0, 0, 5)), result(4, square(0, 0, 5), 0.4)]
    evaluation = evaluate_saco([gold], predictions)
    diagnosis = diagnose(evaluation, None, kinds=KINDS)
    # Pair 4's prediction scores under 0.5: not a prediction.
    assert diagnosis["negative"] == {"pairs": 2, "false_positives": 1, "fp_rate": 0.5}
    assert diagnosis["hard_negative"] == {"pairs": 1, "false_positives": 1, "fp_rate": 1.0}
    assert diagnosis["IL_MCC"] < 1.0
    # Without query kinds every empty pair is a negative, and hard negatives are not measured.
    unknown = diagnose(evaluation, None)
    assert unknown["negative"] == {"pairs": 3, "false_positives": 2, "fp_rate": pytest.approx(2 / 3)}
    assert "not measured" in unknown["hard_negative"]["note"]
    assert "not measured" in unknown["ceiling"]["note"]


def test_misses_are_counted_by_object_size(gold):
    shifted = np.roll(OBJECTS[1], 6, axis=1)  # the medium object, IoU 4/16 = 0.25 < 0.5
    evaluation = evaluate_saco([gold], [result(1, OBJECTS[2]), result(1, shifted)])
    misses = diagnose(evaluation, None)["misses"]
    assert [size_bucket(float(m.mean())) for m in OBJECTS] == ["small", "medium", "large"]
    assert misses["small"] == {"instances": 1, "missed": 1, "miss_rate": 1.0}
    assert misses["medium"] == {"instances": 1, "missed": 1, "miss_rate": 1.0}
    assert misses["large"] == {"instances": 1, "missed": 0, "miss_rate": 0.0}


def test_a_coarse_mask_grid_caps_small_objects():
    tiny = np.zeros((8, 8), bool)
    tiny[2:4, 2:4] = True  # 2 x 2 pixels; a 2 x 2 grid is 4x coarser
    assert resolution_ceiling(tiny, (2, 2)) < 1.0
    half = np.zeros((8, 8), bool)
    half[:, :4] = True  # exactly one column of cells
    assert resolution_ceiling(half, (2, 2)) == pytest.approx(1.0)
    corner = np.zeros((8, 8), bool)
    corner[:4, :4] = True  # one cell: bilinear resizing rounds its inner corner off (1 of 16 pixels)
    assert resolution_ceiling(corner, (2, 2)) == pytest.approx(15 / 16)
    assert resolution_ceiling(tiny, (8, 8)) == pytest.approx(1.0)
    # Letterboxed: a 50 x 100 image covers half the rows of a square grid.
    assert mask_grid(50, 100, (40, 40), letterbox=True) == (20, 40)
    assert mask_grid(50, 100, (40, 40), letterbox=False) == (40, 40)


def test_the_ceiling_at_the_student_grid_is_below_one(gold):
    evaluation = evaluate_saco([gold], [result(1, mask) for mask in OBJECTS])
    ceiling = diagnose(evaluation, (25, 25))["ceiling"]
    assert ceiling["mask_size"] == [25, 25]
    assert ceiling["by_size"]["small"] < 0.5 < ceiling["by_size"]["large"]
    assert ceiling["mean_iou"] < 1.0


def test_the_table_has_teacher_student_and_ratio_columns(gold):
    perfect = diagnose(
        evaluate_saco([gold], [result(1, mask) for mask in OBJECTS]), (SIDE, SIDE), kinds=KINDS
    )
    half = diagnose(evaluate_saco([gold], [result(1, OBJECTS[2])]), (25, 25), kinds=KINDS)
    table = diagnosis_table({"teacher": perfect, "student": half})
    lines = table.splitlines()
    assert lines[0] == "| quantity | teacher | student | student / teacher |"
    assert any(line.startswith("| pmF1@0.95 |") for line in lines)
    assert any(line.startswith("| FP rate, hard-negative pairs (1) |") for line in lines)
    assert any(line.startswith("| miss rate at IoU 0.5, small (1) | 0.0000 | 1.0000 |") for line in lines)
    assert "| mask output size | 100x100 | 25x25 |  |" in lines
    assert not any(line.startswith("- mask output size") for line in lines)  # a value, not a reason
    assert any(line.startswith("| mask-resolution ceiling | 1.0000 |") for line in lines)
    il_row = next(line for line in lines if line.startswith("| IL_MCC |"))
    assert il_row.endswith("| 1.000 |")  # both predict the positive pair and nothing on negatives
