"""SA-Co cgF1 / pmF1 / IL_MCC: hand-computed cases and agreement with a slow reference.

The reference below works on dense masks with Python loops, finds the best assignment by trying
every injective mapping, and aggregates with plain sums. It uses SAM 3's smoothed F1 (the 1e-4
terms are part of SAM 3's definition: they decide Gold oracle ties between annotators with equal
unsmoothed F1, so an unsmoothed reference would pick differently there).
"""

from __future__ import annotations

import itertools
import json
import math
from pathlib import Path

import numpy as np
import pytest
from pycocotools import mask as mask_utils

from sam3spec.eval.saco import IOU_THRESHOLDS, PairOutcome, accumulate, matthews, score_pair, select_oracle
from sam3spec.eval.saco_files import SacoFormatError, evaluate_saco, load_ground_truth

EPS = 1e-4


def rle(mask: np.ndarray) -> dict:
    encoded = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    encoded["counts"] = encoded["counts"].decode("ascii")
    return encoded


def strip(start: int, stop: int, width: int = 10) -> np.ndarray:
    mask = np.zeros((1, width), bool)
    mask[0, start:stop] = True
    return mask


def write(path: Path, data) -> Path:
    path.write_text(json.dumps(data))
    return path


def gt_file(pairs: dict[int, list[tuple[np.ndarray, int]]], height: int, width: int, exhaustive=None) -> dict:
    """``pairs``: pair id -> [(mask, iscrowd)]."""
    exhaustive = exhaustive or {}
    images = [
        {
            "id": pid,
            "height": height,
            "width": width,
            "file_name": f"{pid}.jpg",
            "text_input": "thing",
            "is_instance_exhaustive": int(exhaustive.get(pid, True)),
        }
        for pid in pairs
    ]
    annotations = []
    for pid, instances in pairs.items():
        for mask, crowd in instances:
            encoded = rle(mask)
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": pid,
                    "segmentation": encoded,
                    "iscrowd": crowd,
                    "bbox": mask_utils.toBbox(encoded).tolist(),
                    "area": float(mask.sum()),
                    "category_id": 1,
                }
            )
    return {"images": images, "annotations": annotations, "categories": [{"id": 1, "name": "object"}]}


def predictions(items: list[tuple[int, np.ndarray, float]]) -> list[dict]:
    out = []
    for pid, mask, score in items:
        encoded = rle(mask)
        out.append(
            {
                "image_id": pid,
                "segmentation": encoded,
                "bbox": mask_utils.toBbox(encoded).tolist(),
                "score": score,
            }
        )
    return out


# --------------------------------------------------------------------------------- hand-computed


def test_hand_computed_case(tmp_path: Path) -> None:
    # Pair 1: GT [0,4) and [5,10); predictions: exact (IoU 1), [6,10) (IoU 4/5), [4,5) (IoU 0, FP),
    # and a 0.3-score one that is dropped. Pair 2: negative with a prediction (IL FP). Pairs 3, 5:
    # negatives without predictions (TN). Pair 4: one GT, no prediction (IL FN).
    gt = gt_file(
        {1: [(strip(0, 4), 0), (strip(5, 10), 0)], 2: [], 3: [], 4: [(strip(2, 6), 0)], 5: []}, 1, 10
    )
    preds = predictions(
        [
            (1, strip(0, 4), 0.9),
            (1, strip(6, 10), 0.8),
            (1, strip(4, 5), 0.9),
            (1, strip(0, 10), 0.3),
            (2, strip(1, 3), 0.6),
        ]
    )
    result = evaluate_saco([write(tmp_path / "gt.json", gt)], preds)
    metrics = result.metrics
    assert metrics.il_counts == {"TP": 1, "FP": 1, "FN": 1, "TN": 2}
    assert metrics.tps.tolist() == [2] * 7 + [1] * 3  # IoU 0.8 passes t <= 0.80
    assert metrics.positive_fps.tolist() == [1] * 7 + [2] * 3
    assert metrics.fps.tolist() == [2] * 7 + [3] * 3  # pair 2's FP counts in plain precision only
    assert metrics.fns.tolist() == [1] * 7 + [2] * 3
    summary = result.summary()
    assert summary["IL_MCC"] == pytest.approx(1 / 6, abs=1e-5)  # (1*2 - 1*1) / sqrt(2*2*3*3)
    assert summary["pmF1"] == pytest.approx((7 * 2 / 3 + 3 * 1 / 3) / 10, abs=2e-4)
    assert summary["cgF1"] == pytest.approx(100 * 17 / 30 / 6, abs=2e-2)
    assert summary["pmF1@50"] == pytest.approx(2 / 3, abs=2e-4)
    assert summary["pmF1@75"] == pytest.approx(2 / 3, abs=2e-4)
    assert summary["mIoU"] == pytest.approx((1 + 0.8 + 0) / 3)


def test_crowd_region_is_dropped_and_prediction_on_it_is_a_false_positive(tmp_path: Path) -> None:
    # As in SAM 3: crowd GTs are ignored before matching; the pair becomes negative.
    gt = gt_file({1: [(strip(0, 5), 1)], 2: [(strip(0, 5), 1), (strip(6, 9), 0)], 3: []}, 1, 10)
    preds = predictions([(1, strip(0, 5), 0.9), (2, strip(0, 5), 0.9), (2, strip(6, 9), 0.9)])
    metrics = evaluate_saco([write(tmp_path / "gt.json", gt)], preds).metrics
    assert metrics.il_counts == {"TP": 1, "FP": 1, "FN": 0, "TN": 1}
    assert metrics.tps.tolist() == [1] * 10
    assert metrics.positive_fps.tolist() == [1] * 10  # the prediction on pair 2's crowd region


def test_score_threshold_is_inclusive(tmp_path: Path) -> None:
    gt = gt_file({1: [(strip(0, 5), 0)]}, 1, 10)
    for score, expected in ((0.5, 1), (0.4999, 0)):
        metrics = evaluate_saco(
            [write(tmp_path / "gt.json", gt)], predictions([(1, strip(0, 5), score)])
        ).metrics
        assert metrics.tps[0] == expected


def test_gold_oracle_picks_the_favourable_annotator(tmp_path: Path) -> None:
    # Pair 1: no prediction; a has a GT (FN), b none (TN) -> TN. Pair 2: a's GT is far from the
    # prediction, b's matches it -> b. Pair 3: non-exhaustive for c -> not evaluated.
    a = gt_file({1: [(strip(0, 3), 0)], 2: [(strip(0, 2), 0)], 3: [(strip(0, 2), 0)]}, 1, 10)
    b = gt_file({1: [], 2: [(strip(5, 9), 0)], 3: [(strip(0, 2), 0)]}, 1, 10)
    c = gt_file(
        {1: [(strip(0, 3), 0)], 2: [(strip(0, 2), 0)], 3: [(strip(0, 2), 0)]}, 1, 10, exhaustive={3: False}
    )
    paths = [write(tmp_path / f"{n}.json", d) for n, d in zip("abc", (a, b, c), strict=True)]
    result = evaluate_saco(paths, predictions([(2, strip(5, 9), 0.9), (3, strip(0, 2), 0.9)]))
    chosen = {o.pair_id: (o.annotator, o.outcome) for o in result.outcomes}
    assert chosen == {1: (1, "TN"), 2: (1, "TP")}
    assert result.ignored_predictions == 1
    assert result.summary()["cgF1"] == pytest.approx(100.0, abs=0.1)


def test_oracle_ties_keep_the_first_annotator() -> None:
    first = PairOutcome(1, 1, 1, np.ones(10, np.int64), annotator=0)
    second = PairOutcome(1, 1, 1, np.ones(10, np.int64), annotator=1)
    assert select_oracle([first, second]).annotator == 0


def test_box_variant_uses_normalised_gt_boxes(tmp_path: Path) -> None:
    gt = gt_file({1: [(strip(0, 5), 0)]}, 1, 10)
    gt["annotations"][0]["bbox"] = [0.0, 0.0, 0.5, 1.0]  # SA-Co stores boxes normalised
    preds = [{"image_id": 1, "bbox": [0.0, 0.0, 5.0, 1.0], "score": 0.9}]
    result = evaluate_saco([write(tmp_path / "gt.json", gt)], preds, iou_type="bbox")
    assert result.metrics.tps.tolist() == [1] * 10
    pixels = evaluate_saco([write(tmp_path / "gt.json", gt)], preds, iou_type="bbox", box_units="pixels")
    assert pixels.metrics.tps.tolist() == [0] * 10


def test_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="missing.json"):
        load_ground_truth(tmp_path / "missing.json")
    bad = write(tmp_path / "bad.json", {"annotations": []})
    with pytest.raises(SacoFormatError, match="bad.json"):
        load_ground_truth(bad)
    gt = write(tmp_path / "gt.json", gt_file({1: [(strip(0, 5), 0)]}, 1, 10))
    with pytest.raises(SacoFormatError, match="result 0 has score '0.9'; expected a number"):
        evaluate_saco([gt], [{**predictions([(1, strip(0, 5), 0.9)])[0], "score": "0.9"}])


def test_matthews_matches_definition() -> None:
    assert matthews(5, 0, 0, 5) == pytest.approx(1.0, abs=1e-6)
    assert matthews(0, 5, 5, 0) == pytest.approx(-1.0, abs=1e-6)
    assert matthews(3, 0, 0, 0) == 0.0  # empty marginal


# ------------------------------------------------------------------------ randomised vs reference


def ref_iou(a: np.ndarray, b: np.ndarray) -> float:
    inter = union = 0
    for x, y in zip(a.ravel().tolist(), b.ravel().tolist(), strict=True):
        inter += x and y
        union += x or y
    return inter / union if union else 0.0


def ref_tp_options(dts: list[np.ndarray], gts: list[np.ndarray]) -> set[tuple[int, ...]]:
    """TP vectors of every assignment with the maximal summed IoU (several only on exact ties)."""
    if not dts or not gts:
        return {tuple([0] * len(IOU_THRESHOLDS))}
    ious = [[ref_iou(d, g) for g in gts] for d in dts]
    small, large = (len(dts), len(gts))
    options, best = set(), -1.0
    if small <= large:
        mappings = [
            list(zip(range(small), perm, strict=True)) for perm in itertools.permutations(range(large), small)
        ]
    else:
        mappings = [
            list(zip(perm, range(large), strict=True)) for perm in itertools.permutations(range(small), large)
        ]
    for mapping in mappings:
        total = sum(ious[d][g] for d, g in mapping)
        tps = tuple(sum(ious[d][g] >= t for d, g in mapping) for t in IOU_THRESHOLDS)
        if total > best + 1e-12:
            best, options = total, {tps}
        elif abs(total - best) <= 1e-12:
            options.add(tps)
    return options


def ref_local_f1(tp: int, fp: int, fn: int) -> float:
    p, r = tp / (tp + fp + EPS), tp / (tp + fn + EPS)
    return 2 * p * r / (p + r + EPS)


def ref_metrics(cases: dict[int, list[tuple[int, int, tuple[int, ...]]]]) -> dict[str, float]:
    """``cases``: pair -> [(num_gt, num_dt, tps)] per annotator. Oracle + SAM 3's aggregation."""
    tp = [0] * 10
    pm_fp = [0] * 10
    fn = [0] * 10
    il = {"TP": 0, "FP": 0, "FN": 0, "TN": 0}
    for per_annotator in cases.values():

        def f1_of(entry):
            g, d, tps = entry
            if g == 0 and d == 0:
                return None
            return sum(ref_local_f1(tps[i], d - tps[i], g - tps[i]) for i in range(10)) / 10

        chosen = per_annotator[0]
        for entry in per_annotator[1:]:
            if f1_of(entry) is None:
                chosen = entry
            elif f1_of(chosen) is not None and f1_of(entry) > f1_of(chosen):
                chosen = entry
        g, d, tps = chosen
        il["TP" if g and d else "FN" if g else "FP" if d else "TN"] += 1
        for i in range(10):
            tp[i] += tps[i]
            fn[i] += g - tps[i]
            if g and d:
                pm_fp[i] += d - tps[i]
    pm = []
    for i in range(10):
        p, r = tp[i] / (tp[i] + pm_fp[i] + EPS), tp[i] / (tp[i] + fn[i] + EPS)
        pm.append(2 * p * r / (p + r + EPS))
    denominator = math.sqrt(
        (il["TP"] + il["FP"]) * (il["TP"] + il["FN"]) * (il["TN"] + il["FP"]) * (il["TN"] + il["FN"])
    )
    mcc = (il["TP"] * il["TN"] - il["FP"] * il["FN"]) / (denominator + 1e-6)
    return {"pmF1": sum(pm) / 10, "IL_MCC": mcc, "cgF1": 100 * sum(x * mcc for x in pm) / 10, **il}


def random_mask(rng: np.random.Generator, pool: list[np.ndarray], size: int = 6) -> np.ndarray:
    choice = rng.random()
    if choice < 0.35 and pool:  # duplicates of another mask: exact IoU ties
        return pool[rng.integers(len(pool))].copy()
    if choice < 0.4:
        return np.zeros((size, size), bool)  # empty mask
    mask = np.zeros((size, size), bool)
    y, x = rng.integers(0, size, 2)
    mask[y : y + rng.integers(1, 4), x : x + rng.integers(1, 5)] = True
    return mask


def random_case(rng: np.random.Generator, annotators: int):
    pool: list[np.ndarray] = []
    pairs = int(rng.integers(1, 7))
    gts, preds = [], []
    for _ in range(annotators):
        content = {}
        for pid in range(pairs):
            instances = []
            for _ in range(int(rng.choice([0, 0, 1, 2, 3]))):
                mask = random_mask(rng, pool)
                pool.append(mask)
                instances.append((mask, int(rng.random() < 0.15)))
            content[pid] = instances
        gts.append(content)
    for pid in range(pairs):
        for _ in range(int(rng.choice([0, 0, 1, 2, 3, 4]))):
            mask = random_mask(rng, pool)
            pool.append(mask)
            preds.append((pid, mask, float(rng.choice([0.2, 0.5, 0.5, 0.7, 0.95]))))
    return gts, preds


@pytest.mark.parametrize("annotators", [1, 3])
def test_agrees_with_slow_reference_on_random_cases(tmp_path: Path, annotators: int) -> None:
    rng = np.random.default_rng(annotators)
    compared = ambiguous = 0
    for _ in range(60):
        gts, preds = random_case(rng, annotators)
        paths = [write(tmp_path / f"gt{i}.json", gt_file(g, 6, 6)) for i, g in enumerate(gts)]
        result = evaluate_saco(paths, predictions(preds))
        cases, options_of = {}, {}
        for pid in gts[0]:
            kept = [m for p, m, s in preds if p == pid and s >= 0.5]
            entries = []
            for index, g in enumerate(gts):
                targets = [m for m, crowd in g[pid] if not crowd]
                options = ref_tp_options(kept, targets)
                options_of[pid, index] = options
                entries.append((len(targets), len(kept), next(iter(options))))
            cases[pid] = entries
        for outcome in result.outcomes:  # the chosen matching is always one of the optimal ones
            assert tuple(outcome.tps.tolist()) in options_of[outcome.pair_id, outcome.annotator]
        if any(len(o) > 1 for o in options_of.values()):
            ambiguous += 1
            continue
        reference = ref_metrics(cases)
        summary = result.summary()
        for key in ("pmF1", "IL_MCC", "cgF1"):
            assert summary[key] == pytest.approx(reference[key], abs=1e-9), key
        assert {k: int(summary[f"IL_{k}"]) for k in ("TP", "FP", "FN", "TN")} == {
            k: reference[k] for k in ("TP", "FP", "FN", "TN")
        }
        compared += 1
    assert compared >= 50, f"only {compared} unambiguous cases ({ambiguous} with tied optimal matchings)"


def test_accumulate_of_nothing_is_not_defined() -> None:
    summary = accumulate([]).summary()
    assert summary["num_pairs"] == 0.0
    assert summary["cgF1"] is None and summary["pmF1"] is None and summary["IL_MCC"] is None


def test_positive_macro_f1_without_a_true_positive_pair_is_not_defined() -> None:
    # SAM 3 divides by the number of image-level TP pairs (0 here) and prints -1.
    negative = PairOutcome(1, 0, 2, np.zeros(10, np.int64))
    assert accumulate([negative]).summary()["positive_macro_F1"] is None


def test_score_pair_counts() -> None:
    ious = np.array([[0.9, 0.0], [0.0, 0.55], [0.1, 0.2]])
    outcome = score_pair(7, ious)
    assert outcome.tps.tolist() == [2, 2] + [1] * 7 + [0]
    assert outcome.fps.tolist() == [1, 1] + [2] * 7 + [3]
    assert outcome.fns.tolist() == [0, 0] + [1] * 7 + [2]
