"""J&F against a slow per-pixel reference of DAVIS' definitions, and the SA-V folder protocol."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from sam3spec.eval.vos import boundary_f, boundary_map, evaluate_vos, region_similarity


def ref_boundary(mask: np.ndarray) -> np.ndarray:
    """Pixel loop: differs from right / down / down-right neighbour (outside = 0); last row only
    right, last column only down, bottom-right corner never."""
    h, w = mask.shape

    def at(y: int, x: int) -> bool:
        return bool(mask[y, x]) if y < h and x < w else False

    out = np.zeros_like(mask, dtype=bool)
    for y in range(h):
        for x in range(w):
            if y == h - 1 and x == w - 1:
                continue
            if y == h - 1:
                out[y, x] = at(y, x) != at(y, x + 1)
            elif x == w - 1:
                out[y, x] = at(y, x) != at(y + 1, x)
            else:
                out[y, x] = (
                    at(y, x) != at(y, x + 1) or at(y, x) != at(y + 1, x) or at(y, x) != at(y + 1, x + 1)
                )
    return out


def ref_f(pred: np.ndarray, gt: np.ndarray, bound_th: float = 0.008) -> float:
    radius = math.ceil(bound_th * math.hypot(*pred.shape))
    pb, gb = ref_boundary(pred), ref_boundary(gt)
    p_pts, g_pts = np.argwhere(pb), np.argwhere(gb)
    if len(p_pts) == 0 or len(g_pts) == 0:
        return 1.0 if len(p_pts) == len(g_pts) else 0.0

    def near(points, others) -> int:
        return sum(any((y - oy) ** 2 + (x - ox) ** 2 <= radius**2 for oy, ox in others) for y, x in points)

    precision, recall = near(p_pts, g_pts) / len(p_pts), near(g_pts, p_pts) / len(g_pts)
    return 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)


def ref_j(pred: np.ndarray, gt: np.ndarray) -> float:
    union = np.logical_or(pred, gt).sum()
    return 1.0 if union == 0 else np.logical_and(pred, gt).sum() / union


def blob(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    kind = rng.random()
    if kind < 0.15:
        return np.zeros(shape, bool)
    if kind < 0.4:
        return rng.random(shape) < 0.3  # ragged noise
    mask = np.zeros(shape, bool)
    y, x = rng.integers(0, shape[0]), rng.integers(0, shape[1])
    mask[y : y + rng.integers(1, shape[0]), x : x + rng.integers(1, shape[1])] = True
    return mask


def test_boundary_and_scores_match_reference_on_random_masks() -> None:
    rng = np.random.default_rng(0)
    for _ in range(60):
        shape = (int(rng.integers(3, 40)), int(rng.integers(3, 90)))  # radius 1 and 2 both occur
        pred, gt = blob(rng, shape), blob(rng, shape)
        assert np.array_equal(boundary_map(gt), ref_boundary(gt))
        assert region_similarity(pred, gt) == pytest.approx(ref_j(pred, gt))
        assert boundary_f(pred, gt) == pytest.approx(ref_f(pred, gt))


def test_hand_cases() -> None:
    empty, full = np.zeros((10, 10), bool), np.ones((10, 10), bool)
    assert region_similarity(empty, empty) == 1.0 and boundary_f(empty, empty) == 1.0
    square = np.zeros((10, 10), bool)
    square[2:6, 2:6] = True
    assert boundary_f(square, square) == 1.0
    assert boundary_f(square, empty) == 0.0
    assert region_similarity(square, full) == pytest.approx(16 / 100)


def write_png(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array.astype(np.uint8)).save(path)


def test_sav_layout_protocol(tmp_path: Path) -> None:
    """Skip first/last frames; frames before the object appears are not scored; objects absent
    from the GT are not reported; global means over objects, x100."""
    rng = np.random.default_rng(1)
    shape, frames = (24, 32), 7
    expected = []
    for video in ("v1", "v2"):
        for obj in ("000", "001", "002"):
            gts = [blob(rng, shape) for _ in range(frames)]
            preds = [blob(rng, shape) for _ in range(frames)]
            if obj == "001":  # appears only from frame 3 on, in both
                for t in range(3):
                    gts[t][:] = False
                    preds[t][:] = False
            if obj == "002" and video == "v2":  # never in the GT (but predicted): not reported
                for t in range(frames):
                    gts[t][:] = False
                preds[2][:5, :5] = True
            for t in range(frames):
                write_png(tmp_path / "gt" / video / obj / f"{t:05d}.png", gts[t] * 255)
                write_png(tmp_path / "pred" / video / obj / f"{t:05d}.png", preds[t] * 255)
            scored = [
                t
                for t in range(1, frames - 1)
                if any(gts[s].any() or preds[s].any() for s in range(1, t + 1))
            ]
            if any(gts[t].any() for t in range(1, frames - 1)):
                expected.append(
                    (
                        np.mean([ref_j(preds[t], gts[t]) for t in scored]),
                        np.mean([ref_f(preds[t], gts[t]) for t in scored]),
                    )
                )
    summary = evaluate_vos(tmp_path / "gt", tmp_path / "pred").summary()
    assert summary["num_objects"] == len(expected) == 5
    j = 100 * np.mean([e[0] for e in expected])
    f = 100 * np.mean([e[1] for e in expected])
    assert summary["J"] == pytest.approx(j) and summary["F"] == pytest.approx(f)
    assert summary["J&F"] == pytest.approx((j + f) / 2)
    assert summary["videos"]["v1"]["001"]["frames"] == 3  # frames 3, 4, 5 of 1..5


def test_davis_layout_multi_object(tmp_path: Path) -> None:
    gt, pred = np.zeros((3, 20, 20), np.uint8), np.zeros((3, 20, 20), np.uint8)
    gt[:, 2:8, 2:8] = 1
    gt[:, 10:18, 10:18] = 2
    pred[:, 2:8, 2:7] = 1
    pred[:, 10:18, 10:18] = 2
    pred[:, 0:1, 0:1] = 3  # not in the GT: ignored
    for t in range(3):
        write_png(tmp_path / "gt" / "v" / f"{t:05d}.png", gt[t])
        write_png(tmp_path / "pred" / "v" / f"{t:05d}.png", pred[t])
    summary = evaluate_vos(tmp_path / "gt", tmp_path / "pred").summary()
    assert summary["num_objects"] == 2
    assert summary["videos"]["v"]["1"]["J"] == pytest.approx(100 * 30 / 36)
    assert summary["videos"]["v"]["2"]["J"] == pytest.approx(100.0)


def test_missing_prediction_is_named(tmp_path: Path) -> None:
    write_png(tmp_path / "gt" / "v" / "000" / "00000.png", np.ones((4, 4)))
    (tmp_path / "pred").mkdir()
    with pytest.raises(FileNotFoundError, match="lacks videos"):
        evaluate_vos(tmp_path / "gt", tmp_path / "pred")
    (tmp_path / "pred" / "v" / "000").mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match="00000.png"):
        evaluate_vos(tmp_path / "gt", tmp_path / "pred", skip_first_and_last=False)
