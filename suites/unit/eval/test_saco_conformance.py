"""``eval saco`` gives SAM 3's numbers on the inputs its evaluator accepts, unusual ones included.

The cases come from the cross-check script's generator (``scripts/crosscheck_eval.py``, which
also runs them through SAM 3's own ``cgf1_eval.py`` when given it): foreign and second-category
``category_id``, masks whose RLE size is not the pair's, unknown pair ids, crowd regions,
non-exhaustive pairs, box-only results, repeated GT annotation ids, empty prediction lists.

The reference below restates what SAM 3's evaluator does with them, from the JSON, on dense
masks: per pair it sees the GTs and results of each category id the file lists, in sorted order
(file order within one); annotation ids index annotations (the last one with an id stands for
every use of it); crowd GTs and results under the score threshold are dropped; pycocotools'
mask IoU is 0 for boxes that do not overlap and -1 for masks of different sizes whose boxes do;
the assignment maximises the summed IoU (every optimal assignment is accepted on exact ties).
"""

from __future__ import annotations

import itertools
import json
import math
from pathlib import Path

import numpy as np
import pytest
from pycocotools import mask as mask_utils

from sam3spec.eval.saco import IOU_THRESHOLDS
from sam3spec.eval.saco_files import SacoFormatError, evaluate_saco
from scripts.crosscheck_eval import KINDS, saco_case

EPS = 1e-4


def dense(item: dict, height: int, width: int) -> np.ndarray:
    if "segmentation" in item:
        return mask_utils.decode(item["segmentation"]).astype(bool)
    x, y, w, h = item["bbox"]
    polygon = [[x, y, x, y + h, x + w, y + h, x + w, y]]
    return mask_utils.decode(mask_utils.merge(mask_utils.frPyObjects(polygon, height, width))).astype(bool)


def mask_box(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    ys, xs = np.nonzero(mask)
    return None if len(xs) == 0 else (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)


def box_iou(a: tuple[float, ...] | None, b: tuple[float, ...] | None) -> float:
    """IoU of two (x0, y0, x1, y1) boxes."""
    if a is None or b is None:
        return 0.0
    inter = max(0.0, min(a[2], b[2]) - max(a[0], b[0])) * max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def ref_iou(dt: dict, gt: dict, iou_type: str, height: int, width: int) -> float:
    if iou_type == "bbox":
        boxes = [
            (lambda x, y, w, h: (x, y, x + w, y + h))(*item["bbox"])
            if "bbox" in item
            else mask_box(dense(item, height, width))
            for item in (dt, gt)
        ]
        return box_iou(*boxes)
    a, b = dense(dt, height, width), dense(gt, height, width)
    if box_iou(mask_box(a), mask_box(b)) <= 0:
        return 0.0
    if a.shape != b.shape:
        return -1.0
    return float((a & b).sum() / (a | b).sum())


def tp_options(ious: list[list[float]]) -> set[tuple[int, ...]]:
    """TP vectors of every assignment with the maximal summed IoU."""
    if not ious or not ious[0]:
        return {(0,) * len(IOU_THRESHOLDS)}
    rows, cols = len(ious), len(ious[0])
    if rows <= cols:
        mappings = [list(zip(range(rows), p, strict=True)) for p in itertools.permutations(range(cols), rows)]
    else:
        mappings = [list(zip(p, range(cols), strict=True)) for p in itertools.permutations(range(rows), cols)]
    options, best = set(), -math.inf
    for mapping in mappings:
        total = sum(ious[d][g] for d, g in mapping)
        tps = tuple(sum(ious[d][g] >= t for d, g in mapping) for t in IOU_THRESHOLDS)
        if total > best + 1e-12:
            best, options = total, {tps}
        elif abs(total - best) <= 1e-12:
            options.add(tps)
    return options


def seen_by_sam3(items: list[dict], categories: list[int]) -> list[dict]:
    return [item for category in sorted(categories) for item in items if item["category_id"] == category]


def ref_entries(files: list[dict], predictions: list[dict], iou_type: str):
    """Per evaluated pair: ``[(num_gt, num_dt, tp options)]`` per annotator file."""
    evaluated = [
        entry["id"]
        for entry in files[0]["images"]
        if entry["is_instance_exhaustive"]
        and all(
            next(e for e in other["images"] if e["id"] == entry["id"])["is_instance_exhaustive"]
            for other in files[1:]
        )
    ]
    out = {}
    for pid in evaluated:
        out[pid] = []
        for data in files:
            categories = [c["id"] for c in data["categories"]]
            last = {ann["id"]: ann for ann in data["annotations"]}
            gts = [last[ann["id"]] for ann in data["annotations"] if ann["image_id"] == pid]
            gts = [
                g
                for g in seen_by_sam3([g for g in gts if g["image_id"] == pid], categories)
                if not g["iscrowd"]
            ]
            dts = [r for r in predictions if r["image_id"] == pid]
            dts = [r for r in seen_by_sam3(dts, categories) if r["score"] >= 0.5]
            ious = [[ref_iou(d, g, iou_type, 12, 16) for g in gts] for d in dts]
            out[pid].append((len(gts), len(dts), tp_options(ious)))
    return out


def local_f1(tp: int, fp: int, fn: int) -> float:
    precision, recall = tp / (tp + fp + EPS), tp / (tp + fn + EPS)
    return 2 * precision * recall / (precision + recall + EPS)


def ref_summary(entries: dict) -> dict[str, float]:
    """SAM 3's oracle and aggregation over unambiguous entries."""
    tp, pm_fp, fn = [0] * 10, [0] * 10, [0] * 10
    il = dict.fromkeys(("TP", "FP", "FN", "TN"), 0)
    for per_annotator in entries.values():
        chosen = None
        for g, d, options in per_annotator:
            tps = next(iter(options))
            f1 = None if g == d == 0 else sum(local_f1(t, d - t, g - t) for t in tps) / 10
            if chosen is None or f1 is None or (chosen[3] is not None and f1 > chosen[3]):
                chosen = (g, d, tps, f1)
        g, d, tps, _ = chosen
        il["TP" if g and d else "FN" if g else "FP" if d else "TN"] += 1
        for i in range(10):
            tp[i] += tps[i]
            fn[i] += g - tps[i]
            pm_fp[i] += d - tps[i] if g and d else 0
    pm = [local_f1(tp[i], pm_fp[i], fn[i]) for i in range(10)]
    denominator = math.sqrt(
        (il["TP"] + il["FP"]) * (il["TP"] + il["FN"]) * (il["TN"] + il["FP"]) * (il["TN"] + il["FN"])
    )
    mcc = (il["TP"] * il["TN"] - il["FP"] * il["FN"]) / (denominator + 1e-6)
    return {"pmF1": sum(pm) / 10, "IL_MCC": mcc, "cgF1": 100 * sum(p * mcc for p in pm) / 10, **il}


@pytest.mark.parametrize("annotators", [1, 3])
def test_unusual_inputs_score_as_sam3_scores_them(tmp_path: Path, annotators: int) -> None:
    rng = np.random.default_rng(10 + annotators)
    compared, covered = 0, set()
    for _ in range(45):
        files, predictions, kinds = saco_case(rng, annotators)
        paths = []
        for index, data in enumerate(files):
            paths.append(tmp_path / f"gt{index}.json")
            paths[-1].write_text(json.dumps(data))
        for iou_type in ("segm", "bbox"):
            result = evaluate_saco(paths, predictions, iou_type, box_units="pixels")
            entries = ref_entries(files, predictions, iou_type)
            for outcome in result.outcomes:
                assert tuple(outcome.tps.tolist()) in entries[outcome.pair_id][outcome.annotator][2]
            if not entries or any(len(options) > 1 for e in entries.values() for _, _, options in e):
                continue
            reference, summary = ref_summary(entries), result.summary()
            for key in ("pmF1", "IL_MCC", "cgF1"):
                assert summary[key] == pytest.approx(reference[key], abs=1e-12), (key, kinds)
            assert {k: int(summary[f"IL_{k}"]) for k in ("TP", "FP", "FN", "TN")} == {
                k: reference[k] for k in ("TP", "FP", "FN", "TN")
            }
            compared += 1
            covered |= kinds
    assert compared >= 60
    assert covered >= set(KINDS) - {"empty_predictions"}, set(KINDS) - covered


def strip_gt(pairs: dict[int, list[tuple[int, int, int]]], categories=(1,)) -> dict:
    """``pairs``: pair id -> [(start, stop, category)] strips on a 1 x 10 image."""
    images = [
        {
            "id": p,
            "height": 1,
            "width": 10,
            "file_name": f"{p}.jpg",
            "text_input": "x",
            "is_instance_exhaustive": 1,
        }
        for p in pairs
    ]
    annotations = []
    for pid, strips in pairs.items():
        for start, stop, category in strips:
            mask = np.zeros((1, 10), np.uint8)
            mask[0, start:stop] = 1
            encoded = mask_utils.encode(np.asfortranarray(mask))
            encoded["counts"] = encoded["counts"].decode()
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": pid,
                    "segmentation": encoded,
                    "bbox": [start, 0, stop - start, 1],
                    "iscrowd": 0,
                    "category_id": category,
                    "area": stop - start,
                }
            )
    return {"images": images, "annotations": annotations, "categories": [{"id": c} for c in categories]}


def strip_result(pid: int, start: int, stop: int, category: int = 1, shape=(1, 10), score=0.9) -> dict:
    mask = np.zeros(shape, np.uint8)
    mask[0, start:stop] = 1
    encoded = mask_utils.encode(np.asfortranarray(mask))
    encoded["counts"] = encoded["counts"].decode()
    return {"image_id": pid, "category_id": category, "segmentation": encoded, "score": score}


def test_foreign_category_is_left_out_and_noted(tmp_path: Path) -> None:
    # Pair 1 has one GT; the exact match carries category 7 (not listed): SAM 3 does not see it,
    # so the pair is an image-level FN, not a TP; a foreign result on a negative pair is no FP.
    gt = tmp_path / "gt.json"
    gt.write_text(json.dumps(strip_gt({1: [(0, 4, 1)], 2: []})))
    result = evaluate_saco([gt], [strip_result(1, 0, 4, category=7), strip_result(2, 5, 9, category=7)])
    assert result.metrics.il_counts == {"TP": 0, "FP": 0, "FN": 1, "TN": 1}
    assert any("category_id 7" in note and "left out" in note for note in result.notes)


def test_wrong_size_mask_matches_nothing_and_is_noted(tmp_path: Path) -> None:
    # A 2 x 10 mask on a 1 x 10 pair: scored (not rejected), never a TP, and the assignment
    # prefers the 0-IoU cell over its -1 (pycocotools), so the other result's IoU 0.6 match stands.
    gt = tmp_path / "gt.json"
    gt.write_text(json.dumps(strip_gt({1: [(0, 5, 1), (5, 10, 1)]})))
    wrong = strip_result(1, 0, 5, shape=(2, 10))
    result = evaluate_saco([gt], [wrong, strip_result(1, 0, 3)])
    outcome = result.outcomes[0]
    assert outcome.num_dt == 2 and outcome.tps[0] == 1 and outcome.tps[-1] == 0
    assert sorted(outcome.matched_ious.tolist()) == [0.0, 0.6]
    assert any("RLE size" in note and "[2, 10] vs [1, 10]" in note for note in result.notes)


def test_unknown_pair_ids_are_ignored_and_noted(tmp_path: Path) -> None:
    gt = tmp_path / "gt.json"
    gt.write_text(json.dumps(strip_gt({1: [(0, 4, 1)]})))
    result = evaluate_saco([gt], [strip_result(1, 0, 4), strip_result(99, 0, 4), strip_result("1", 0, 4)])
    assert result.ignored_predictions == 2 and result.outcomes[0].num_dt == 1
    assert any("2 result(s) name pair ids" in note and "99" in note for note in result.notes)


def test_empty_prediction_list_is_scored_with_a_note(tmp_path: Path) -> None:
    gt = tmp_path / "gt.json"
    gt.write_text(json.dumps(strip_gt({1: [(0, 4, 1)], 2: []})))
    summary = evaluate_saco([gt], []).summary()
    assert summary["IL_FN"] == 1 and summary["IL_TN"] == 1
    assert any("prediction list is empty" in note for note in summary["notes"])


def test_no_evaluated_pair_is_not_defined(tmp_path: Path) -> None:
    data = strip_gt({1: [(0, 4, 1)]})
    data["images"][0]["is_instance_exhaustive"] = 0
    gt = tmp_path / "gt.json"
    gt.write_text(json.dumps(data))
    summary = evaluate_saco([gt], [strip_result(1, 0, 4)]).summary()
    assert summary["note"] == "not defined: 0 pairs"
    assert summary["cgF1"] is None and summary["pmF1"] is None and summary["IL_MCC"] is None


def test_annotator_files_must_describe_the_same_pairs(tmp_path: Path) -> None:
    a, b, c = (tmp_path / f"{name}.json" for name in "abc")
    a.write_text(json.dumps(strip_gt({1: [(0, 4, 1)], 2: [], 3: []})))
    b.write_text(json.dumps(strip_gt({1: [(0, 4, 1)], 2: [], 4: []})))
    changed = strip_gt({1: [(0, 4, 1)], 2: [], 3: []})
    changed["images"][1]["text_input"] = "another phrase"
    c.write_text(json.dumps(changed))
    with pytest.raises(SacoFormatError, match=r"b\.json .*lacks pair ids \[3\].*extra pair ids \[4\]"):
        evaluate_saco([a, b], [])
    with pytest.raises(SacoFormatError, match=r"c\.json .*describes pair ids \[2\] differently"):
        evaluate_saco([a, c], [])


def test_eval_saco_command_prints_the_notes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from sam3spec.cli import main

    gt, pred, out = tmp_path / "gt.json", tmp_path / "pred.json", tmp_path / "metrics.json"
    gt.write_text(json.dumps(strip_gt({1: [(0, 4, 1)], 2: []})))
    pred.write_text("[]")
    assert main(["eval", "saco", "--gt", str(gt), "--pred", str(pred), "--json", str(out)]) == 0
    captured = capsys.readouterr()
    assert "note: the prediction list is empty" in captured.err and "IL_MCC" in captured.out
    data = json.loads(gt.read_text())
    data["images"] = []
    gt.write_text(json.dumps(data))
    assert main(["eval", "saco", "--gt", str(gt), "--pred", str(pred), "--json", str(out)]) == 0
    assert "cgF1, pmF1, IL_MCC not defined: 0 pairs" in capsys.readouterr().out
    assert json.loads(out.read_text())["cgF1"] is None
