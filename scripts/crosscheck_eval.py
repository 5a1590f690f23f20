"""Compare sam3spec's evaluators with SAM 3's and SA-V's own code on random cases.

The comparison needs the upstream files, which are not vendored, so it is not part of the test
suites; the SA-Co case generator is (``suites/unit/eval/test_saco_conformance.py`` checks the
evaluator on its cases against a brute-force restatement of SAM 3's rules). Usage, from the
repository root::

    git -C <sam3 checkout> show HEAD:sam3/eval/cgf1_eval.py > /tmp/x/cgf1_eval.py
    git -C <sam2 checkout> show HEAD:sav_dataset/utils/sav_benchmark.py > /tmp/x/sav_benchmark.py
    PYTHONPATH=. python scripts/crosscheck_eval.py --upstream /tmp/x [--cases 100]
    # the files `sam3spec eval model --saco-gold GOLD --out OUT` wrote, scored by both evaluators:
    PYTHONPATH=. python scripts/crosscheck_eval.py --upstream /tmp/x --gold GOLD --pred-folder OUT

SA-Co cases mix in every unusual input SAM 3's evaluator accepts (:data:`KINDS`); all 26 numbers
its ``CGF1Evaluator.evaluate`` returns are compared. SA-V's file imports OpenCV and scikit-image
(``pip install opencv-python-headless scikit-image`` in a scratch environment); without them only
the SA-Co check runs. Prints the largest absolute difference (0 means identical).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import shutil
import sys
import tempfile
import warnings
from collections import Counter
from pathlib import Path

import numpy as np
from PIL import Image
from pycocotools import mask as mask_utils

from sam3spec.eval.saco_files import SacoEvaluation, evaluate_saco
from sam3spec.eval.vos import evaluate_vos


def _rle(mask: np.ndarray) -> dict:
    encoded = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    encoded["counts"] = encoded["counts"].decode()
    return encoded


def _box_mask(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    mask = np.zeros((h, w), np.uint8)
    y, x = rng.integers(0, h - 2), rng.integers(0, w - 2)
    mask[y : y + rng.integers(1, h // 2 + 2), x : x + rng.integers(1, w // 2 + 2)] = 1
    return mask


KINDS = (
    "crowd",
    "non_exhaustive",
    "foreign_category",
    "second_category",
    "wrong_size_rle",
    "unknown_pair",
    "box_only",
    "repeated_annotation_id",
    "empty_predictions",
)
"""Unusual inputs :func:`saco_case` mixes in (SAM 3's evaluator accepts every one of them)."""


def saco_case(rng: np.random.Generator, annotators: int) -> tuple[list[dict], list[dict], set[str]]:
    """Random GT files and predictions, and which of :data:`KINDS` the case contains.

    GT: negatives, crowd regions, non-exhaustive pairs, masks shared between annotators and
    predictions (exact IoU ties), a second listed category, annotations of a category the file
    does not list, repeated annotation ids. Predictions: scores at the 0.5 threshold, foreign and
    second-category ``category_id``, masks whose RLE size is not the pair's, box-only results,
    results for pair ids the GT does not have, now and then an empty list. Every annotator file
    describes the same pairs (the evaluator refuses files that do not).
    """
    h, w, pairs = 12, 16, int(rng.integers(1, 8))
    pool = [_box_mask(rng, h, w) for _ in range(6)]
    kinds: set[str] = set()
    categories = [1, 2] if rng.random() < 0.3 else [1]

    def mask() -> np.ndarray:
        return pool[rng.integers(0, 6)] if rng.random() < 0.5 else _box_mask(rng, h, w)

    def category(foreign: float) -> int:
        draw = rng.random()
        if draw < foreign:
            kinds.add("foreign_category")
            return int(rng.choice([3, 7]))
        if draw < foreign + 0.15 and 2 in categories:
            kinds.add("second_category")
            return 2
        return 1

    files = []
    for _ in range(annotators):
        images, annotations = [], []
        for p in range(pairs):
            exhaustive = int(rng.random() > 0.1)
            kinds.update(() if exhaustive else ("non_exhaustive",))
            images.append(
                {
                    "id": p,
                    "height": h,
                    "width": w,
                    "file_name": f"{p}.jpg",
                    "text_input": f"phrase {p}",
                    "is_instance_exhaustive": exhaustive,
                }
            )
            for _ in range(rng.integers(0, 4)):
                encoded = _rle(mask())
                crowd = int(rng.random() < 0.15)
                kinds.update(("crowd",) if crowd else ())
                identifier = len(annotations) + 1
                if annotations and rng.random() < 0.05:
                    identifier = int(rng.integers(1, len(annotations) + 1))
                    kinds.add("repeated_annotation_id")
                annotations.append(
                    {
                        "id": identifier,
                        "image_id": p,
                        "segmentation": encoded,
                        "bbox": mask_utils.toBbox(encoded).tolist(),
                        "area": 1.0,
                        "iscrowd": crowd,
                        "category_id": category(0.05),
                    }
                )
        files.append(
            {
                "images": images,
                "annotations": annotations,
                "categories": [{"id": c, "name": f"c{c}"} for c in categories],
            }
        )
    predictions = []
    if rng.random() < 0.05:
        kinds.add("empty_predictions")
        return files, predictions, kinds
    for p in range(pairs + 2):
        if p >= pairs and rng.random() < 0.7:
            continue
        for _ in range(rng.integers(0, 5)):
            if p >= pairs:
                kinds.add("unknown_pair")
            if rng.random() < 0.1:
                kinds.add("wrong_size_rle")
                shape = (h + int(rng.choice([-2, 1])), w) if rng.random() < 0.5 else (h, w + 3)
                encoded = _rle(_box_mask(rng, *shape))
            else:
                encoded = _rle(mask())
            result = {
                "image_id": p,
                "category_id": category(0.1),
                "segmentation": encoded,
                "bbox": mask_utils.toBbox(encoded).tolist(),
                "score": float(rng.choice([0.3, 0.5, 0.7, 0.9])),
            }
            if rng.random() < 0.1:  # box only: scored as the box's polygon in the mask variant
                kinds.add("box_only")
                del result["segmentation"]
            predictions.append(result)
    return files, predictions, kinds


SAM3_NAMES = (
    "cgF1",
    "precision",
    "recall",
    "F1",
    "positive_macro_F1",
    "positive_micro_F1",
    "positive_micro_precision",
)
SAM3_IMAGE_LEVEL = ("IL_precision", "IL_recall", "IL_F1", "IL_FPR", "IL_MCC")


def as_sam3_output(evaluation: SacoEvaluation) -> dict[str, float]:
    """Our evaluation under the names and scale of ``CGF1Evaluator.evaluate``'s dict: every
    metric averaged over the IoU thresholds and at 0.5 / 0.75; a value that is not defined is -1
    (what SAM 3's ``summarize`` prints for NaN)."""
    metrics = evaluation.metrics
    arrays = {
        "cgF1": metrics.positive_micro_f1 * metrics.il_mcc,
        "precision": metrics.precision,
        "recall": metrics.recall,
        "F1": metrics.f1,
        "positive_macro_F1": metrics.positive_macro_f1,
        "positive_micro_F1": metrics.positive_micro_f1,
        "positive_micro_precision": metrics.positive_micro_precision,
    }
    out = {}
    for name in SAM3_NAMES:
        values = arrays[name]
        out[name] = -1.0 if values is None else float(np.mean(values))
        for threshold in (0.5, 0.75):
            index = int(np.argmin(np.abs(metrics.thresholds - threshold)))
            out[f"{name}@{threshold}"] = -1.0 if values is None else float(values[index])
    for name in SAM3_IMAGE_LEVEL:
        out[name] = float(getattr(metrics, name.replace("IL_", "il_").lower()))
    return out


def check_saco(upstream: Path, cases: int, work: Path) -> None:
    sys.path.insert(0, str(upstream))
    from cgf1_eval import CGF1Evaluator  # SAM 3's file

    rng, worst, scored, raised = np.random.default_rng(0), {}, 0, 0
    seen: Counter[str] = Counter()
    for case in range(cases):
        files, predictions, kinds = saco_case(rng, 3 if case % 2 else 1)
        paths = []
        for index, data in enumerate(files):
            paths.append(str(work / f"gt{index}.json"))
            Path(paths[-1]).write_text(json.dumps(data))
        (work / "pred.json").write_text(json.dumps(predictions))
        for iou_type in ("segm", "bbox"):
            try:
                with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
                    warnings.simplefilter("ignore", RuntimeWarning)  # its 0/0 for positive_macro_F1
                    theirs = CGF1Evaluator(paths, iou_type=iou_type).evaluate(str(work / "pred.json"))
            except ValueError:  # SAM 3 raises when no pair is evaluated
                raised += 1
                ours = evaluate_saco(paths, work / "pred.json", iou_type, box_units="pixels").summary()
                assert ours["num_pairs"] == 0 and ours["cgF1"] is None, "SAM 3 raised on a case we scored"
                continue
            ours = as_sam3_output(evaluate_saco(paths, work / "pred.json", iou_type, box_units="pixels"))
            for name, value in ours.items():
                difference = abs(theirs[f"cgF1_eval_{iou_type}_{name}"] - value)
                worst[name] = max(worst.get(name, 0.0), difference)
            scored += 1
            seen.update(kinds)
    print(f"SA-Co: {scored} scored, {raised} raised upstream (no evaluated pair)")
    print(f"  cases scored with each unusual input: {dict(sorted(seen.items()))}")
    print(f"  largest |difference| over {len(worst)} metrics: {max(worst.values(), default=0.0):.3g}")
    for name, value in worst.items():
        if value:
            print(f"  {name}: {value:.3g}")


def check_gold_files(upstream: Path, gold: Path, pred_folder: Path) -> None:
    """Every Gold subset's predictions under ``pred_folder`` (SAM 3's dump tree, as
    ``sam3spec eval model --saco-gold`` writes it) scored by SAM 3's evaluator and by ours."""
    sys.path.insert(0, str(upstream))
    from cgf1_eval import CGF1Evaluator  # SAM 3's file

    from sam3spec.eval.gold import find_subsets

    keys = {"cgF1": ("cgF1", 100), "IL_MCC": ("IL_MCC", 1), "pmF1": ("positive_micro_F1", 1)}
    for subset in find_subsets(gold, default_images=gold):
        pred = subset.predictions(pred_folder)
        paths = [str(path) for path in subset.files]
        for iou_type in ("segm", "bbox"):
            ours = evaluate_saco(paths, pred, iou_type).summary()
            try:
                with contextlib.redirect_stdout(io.StringIO()):
                    theirs = CGF1Evaluator(paths, iou_type=iou_type).evaluate(str(pred))
            except (IndexError, ValueError) as error:  # SAM 3 fails on an empty result list
                print(f"{subset.name} {iou_type}: SAM 3's evaluator raised {error!r}; ours: {ours['cgF1']}")
                continue
            if ours["num_pairs"] == 0:
                print(f"{subset.name} {iou_type}: no evaluated pair (SAM 3 gave {theirs})")
                continue
            diffs = {
                key: abs(theirs[f"cgF1_eval_{iou_type}_{name}"] * scale - ours[key])
                for key, (name, scale) in keys.items()
            }
            figures = "  ".join(f"{key} {ours[key]:.4f}" for key in keys)
            print(f"{subset.name} {iou_type}: {figures}; max |diff| vs SAM 3: {max(diffs.values()):.3g}")


def check_vos(upstream: Path, cases: int, work: Path) -> None:
    sys.path.insert(0, str(upstream))
    try:
        from sav_benchmark import VideoEvaluator  # SA-V's file
    except ImportError as error:
        print(f"J&F: skipped ({error}; install opencv-python-headless and scikit-image)")
        return
    rng, worst = np.random.default_rng(1), 0.0

    def blob(shape):
        kind = rng.random()
        if kind < 0.2:
            return np.zeros(shape, bool)
        if kind < 0.4:
            return rng.random(shape) < 0.3
        mask = np.zeros(shape, bool)
        y, x = rng.integers(0, shape[0]), rng.integers(0, shape[1])
        mask[y : y + rng.integers(1, shape[0]), x : x + rng.integers(1, shape[1])] = True
        return mask

    for case in range(cases):
        root = work / f"vos{case}"
        shape, frames = (int(rng.integers(20, 200)), int(rng.integers(20, 300))), int(rng.integers(3, 8))
        for video in ("v0", "v1"):
            for obj in ("000", "001"):
                for t in range(frames):
                    for kind in ("gt", "pred"):
                        mask = blob(shape)
                        mask[:3, :3] |= kind == "gt"  # the object is in the GT
                        path = root / kind / video / obj / f"{t:05d}.png"
                        path.parent.mkdir(parents=True, exist_ok=True)
                        Image.fromarray(mask.astype(np.uint8) * 255).save(path)
        j, f = [], []
        for video in ("v0", "v1"):
            _, iou, boundary = VideoEvaluator(str(root / "gt"), str(root / "pred"))(video)
            j += list(iou.values())
            f += list(boundary.values())
        ours = evaluate_vos(root / "gt", root / "pred").summary()
        worst = max(worst, abs(np.mean(j) - ours["J"]), abs(np.mean(f) - ours["F"]))
        shutil.rmtree(root)
    print(f"J&F: {cases} cases; max |diff| of J and F (x100 scale): {worst:.3g}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--upstream", type=Path, required=True, help="folder with cgf1_eval.py / sav_benchmark.py"
    )
    parser.add_argument("--cases", type=int, default=100)
    parser.add_argument("--gold", type=Path, help="SA-Co/Gold annotation folder (with --pred-folder)")
    parser.add_argument("--pred-folder", type=Path, help="what `sam3spec eval model --saco-gold` wrote")
    args = parser.parse_args()
    if args.gold is not None:
        check_gold_files(args.upstream, args.gold, args.pred_folder)
        return 0
    with tempfile.TemporaryDirectory() as work:
        if (args.upstream / "cgf1_eval.py").is_file():
            check_saco(args.upstream, args.cases, Path(work))
        if (args.upstream / "sav_benchmark.py").is_file():
            check_vos(args.upstream, max(args.cases // 5, 1), Path(work))
    return 0


if __name__ == "__main__":
    sys.exit(main())
