"""IdTracker on synthetic masks: ids persist while objects move, survive an occlusion and an exit /
re-entry, new objects get new ids, tracks unseen for too long are dropped."""

from __future__ import annotations

import numpy as np

from sam3spec.video.tracker import IdTracker, TrackerConfig, mask_iou_matrix

SIDE = 100


def square(x: int, y: int, size: int = 10) -> tuple[np.ndarray, np.ndarray]:
    mask = np.zeros((SIDE, SIDE), bool)
    mask[max(y, 0) : max(y + size, 0), max(x, 0) : max(x + size, 0)] = True
    return mask, np.array([x, y, x + size, y + size], float)


def frame(*objects: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    if not objects:
        return np.zeros((0, SIDE, SIDE), bool), np.zeros((0, 4))
    masks, boxes = zip(*(square(x, y) for x, y in objects), strict=True)
    return np.stack(masks), np.stack(boxes)


def test_iou_matrix_hand_computed():
    a, _ = frame((0, 0))
    b, _ = frame((5, 0), (50, 50))
    np.testing.assert_allclose(mask_iou_matrix(a, b), [[50 / 150, 0.0]])


def test_ids_follow_moving_objects_in_any_detection_order():
    tracker = IdTracker()
    first = tracker.update(*frame((10, 10), (60, 60)))
    assert first.tolist() == [1, 2]
    for step in range(1, 6):  # detections listed in reverse order: ids must follow the objects
        ids = tracker.update(*frame((60 + step * 2, 60), (10 + step * 2, 10)))
        assert ids.tolist() == [2, 1]


def test_id_survives_occlusion_and_reentry():
    tracker = IdTracker(TrackerConfig(max_lost=10))
    tracker.update(*frame((10, 40), (70, 40)))
    tracker.update(*frame((13, 40), (70, 40)))  # object 1 moves right at 3 px / frame
    for _ in range(4):  # object 1 hidden (occluded) for 4 frames
        tracker.update(*frame((70, 40)))
    ids = tracker.update(*frame((70, 40), (28, 40)))  # back where its motion predicts
    assert ids.tolist() == [2, 1]


def test_new_object_gets_a_new_id_and_old_tracks_expire():
    tracker = IdTracker(TrackerConfig(max_lost=2))
    assert tracker.update(*frame((10, 10))).tolist() == [1]
    assert tracker.update(*frame((10, 10), (70, 70))).tolist() == [1, 2]
    for _ in range(3):
        tracker.update(*frame())
    assert tracker.tracks == []
    assert tracker.update(*frame((10, 10))).tolist() == [3]


def test_far_reappearance_is_a_new_object():
    tracker = IdTracker(TrackerConfig(max_jump=0.1))
    tracker.update(*frame((0, 0)))
    tracker.update(*frame())
    assert tracker.update(*frame((85, 85))).tolist() == [2]
