"""The native parity helpers: instance pairing and the summed mask IoU (no build needed)."""

from __future__ import annotations

import json

import numpy as np

from sam3spec.native.parity import Agreement, compare, read_cli_result, union_prediction
from sam3spec.predictor import Prediction


def _prediction(masks: list[np.ndarray], scores: list[float]) -> Prediction:
    boxes = np.zeros((len(masks), 4))
    return Prediction(np.stack(masks), boxes, np.asarray(scores), 0.5)


def _square(y: int, x: int) -> np.ndarray:
    mask = np.zeros((8, 8), dtype=bool)
    mask[y : y + 3, x : x + 3] = True
    return mask


def test_pairs_instances_whose_equal_scores_sorted_differently():
    reference = _prediction([_square(0, 0), _square(4, 4)], [0.5, 0.5])
    native = _prediction([_square(4, 4), _square(0, 0)], [0.5, 0.5])
    agreement = Agreement()
    compare(reference, native, agreement, "swapped")
    assert agreement.mask_iou == 1.0 and agreement.instances == 2 and not agreement.count_mismatches


def test_a_missing_instance_counts_against_the_iou():
    reference = _prediction([_square(0, 0), _square(4, 4)], [0.9, 0.6])
    native = _prediction([_square(0, 0)], [0.9])
    agreement = Agreement()
    compare(reference, native, agreement, "missing")
    assert agreement.count_mismatches == ["missing: 2 vs 1"]
    assert agreement.mask_iou == 0.5  # 9 shared pixels over 18


def test_shifted_mask_and_score_difference_are_measured():
    agreement = Agreement()
    compare(_prediction([_square(0, 0)], [0.7]), _prediction([_square(0, 1)], [0.65]), agreement, "shifted")
    assert agreement.mask_iou == 6 / 12
    assert abs(agreement.score_diff - 0.05) < 1e-9


def test_reads_what_the_cli_writes(tmp_path):
    from PIL import Image

    Image.fromarray((_square(1, 1) * 255).astype(np.uint8)).save(tmp_path / "mask_000.png")
    detections = [{"width": 8, "height": 8, "presence": 0.25, "scores": [0.75], "boxes_xyxy": [[1, 1, 4, 4]]}]
    (tmp_path / "detections.json").write_text(json.dumps(detections))
    (result,) = read_cli_result(tmp_path)
    assert result.masks.shape == (1, 8, 8) and result.masks.sum() == 9
    assert result.scores.tolist() == [0.75] and result.presence == 0.25
    merged = union_prediction(_prediction([_square(0, 0), _square(4, 4)], [0.9, 0.8]))
    assert merged.masks.shape == (1, 8, 8) and merged.masks.sum() == 18
