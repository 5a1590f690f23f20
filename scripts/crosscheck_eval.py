"""Compare sam3spec's evaluators with SAM 3's and SA-V's own code on random cases.

Not part of the test suites: it needs the upstream files, which are not vendored. Usage::

    git -C <sam3 checkout> show HEAD:sam3/eval/cgf1_eval.py > /tmp/x/cgf1_eval.py
    git -C <sam2 checkout> show HEAD:sav_dataset/utils/sav_benchmark.py > /tmp/x/sav_benchmark.py
    python scripts/crosscheck_eval.py --upstream /tmp/x [--cases 100]
    # the files `sam3spec eval model --saco-gold GOLD --out OUT` wrote, scored by both evaluators:
    python scripts/crosscheck_eval.py --upstream /tmp/x --gold GOLD --pred-folder OUT

SA-V's file imports OpenCV and scikit-image (``pip install opencv-python-headless scikit-image``
in a scratch environment); without them only the SA-Co check runs. Prints the largest absolute
difference per metric (0 means identical).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image
from pycocotools import mask as mask_utils

from sam3spec.eval.saco_files import evaluate_saco
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


def saco_case(rng: np.random.Generator, annotators: int) -> tuple[list[dict], list[dict]]:
    """Random GT files (crowd, negatives, non-exhaustive pairs, shared masks) and predictions."""
    h, w, pairs = 12, 16, int(rng.integers(1, 8))
    pool = [_box_mask(rng, h, w) for _ in range(6)]

    def mask() -> np.ndarray:
        return pool[rng.integers(0, 6)] if rng.random() < 0.5 else _box_mask(rng, h, w)

    files = []
    for _ in range(annotators):
        images, annotations = [], []
        for p in range(pairs):
            images.append(
                {
                    "id": p,
                    "height": h,
                    "width": w,
                    "file_name": f"{p}.jpg",
                    "text_input": "x",
                    "is_instance_exhaustive": int(rng.random() > 0.1),
                }
            )
            for _ in range(rng.integers(0, 4)):
                encoded = _rle(mask())
                annotations.append(
                    {
                        "id": len(annotations) + 1,
                        "image_id": p,
                        "segmentation": encoded,
                        "bbox": mask_utils.toBbox(encoded).tolist(),
                        "area": 1.0,
                        "iscrowd": int(rng.random() < 0.15),
                        "category_id": 1,
                    }
                )
        files.append({"images": images, "annotations": annotations, "categories": [{"id": 1, "name": "o"}]})
    predictions = []
    for p in range(pairs):
        for _ in range(rng.integers(0, 5)):
            encoded = _rle(mask())
            predictions.append(
                {
                    "image_id": p,
                    "category_id": 1,
                    "segmentation": encoded,
                    "bbox": mask_utils.toBbox(encoded).tolist(),
                    "score": float(rng.choice([0.3, 0.5, 0.7, 0.9])),
                }
            )
    return files, predictions


def check_saco(upstream: Path, cases: int, work: Path) -> None:
    sys.path.insert(0, str(upstream))
    from cgf1_eval import CGF1Evaluator  # SAM 3's file

    keys = {
        "cgF1": ("cgF1", 100),
        "pmF1": ("positive_micro_F1", 1),
        "IL_MCC": ("IL_MCC", 1),
        "cgF1@50": ("cgF1@0.5", 100),
        "F1": ("F1", 1),
        "IL_F1": ("IL_F1", 1),
    }
    rng, worst, scored, raised = np.random.default_rng(0), dict.fromkeys(keys, 0.0), 0, 0
    for case in range(cases):
        files, predictions = saco_case(rng, 3 if case % 2 else 1)
        paths = []
        for index, data in enumerate(files):
            paths.append(str(work / f"gt{index}.json"))
            Path(paths[-1]).write_text(json.dumps(data))
        (work / "pred.json").write_text(json.dumps(predictions))
        for iou_type in ("segm", "bbox"):
            try:
                with contextlib.redirect_stdout(io.StringIO()):
                    theirs = CGF1Evaluator(paths, iou_type=iou_type).evaluate(str(work / "pred.json"))
            except ValueError:  # SAM 3 raises when no pair is evaluated
                raised += 1
                continue
            ours = evaluate_saco(paths, work / "pred.json", iou_type, box_units="pixels").summary()
            for key, (name, scale) in keys.items():
                worst[key] = max(worst[key], abs(theirs[f"cgF1_eval_{iou_type}_{name}"] * scale - ours[key]))
            scored += 1
    print(f"SA-Co: {scored} scored, {raised} raised upstream; max |diff|: {worst}")


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
                print(
                    f"{subset.name} {iou_type}: SAM 3's evaluator raised {error!r}; ours: {ours['cgF1']:.4f}"
                )
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
