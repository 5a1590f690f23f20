"""``sam3spec eval saco`` and ``eval vos``: score prediction files as SAM 3's and SA-V's evaluators
do; the headline line every ``eval`` command prints.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any

from sam3spec.cli.common import fail, note, write_json

HEADLINE = ("cgF1", "pmF1", "IL_MCC", "mIoU", "presence_f1", "J", "F", "J&F")


def print_headline(metrics: dict[str, Any]) -> None:
    """The headline metrics on one line; an image metric that is None (no GT instance, nothing
    present) is printed as not defined, video J / F that were not measured are left out."""
    parts = []
    for key in HEADLINE:
        value = metrics.get(key)
        if isinstance(value, float) and not math.isnan(value):
            parts.append(f"{key} {value:.4f}")
        elif value is None and key in metrics and key not in ("J", "F", "J&F"):
            parts.append(f"{key} not defined")
    print("  ".join(parts))


# --- saco / vos ----------------------------------------------------------------------------------


def add_saco_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--gt", type=Path, nargs="+", required=True, help="SA-Co ground-truth file(s); several = Gold oracle"
    )
    parser.add_argument("--pred", type=Path, required=True, help="COCO results JSON (image_id = pair id)")
    parser.add_argument(
        "--presence", type=Path, help="optional {pair id: presence probability} JSON for presence_f1"
    )
    parser.add_argument("--threshold", type=float, default=0.5, help="score threshold (SA-Co: 0.5)")
    parser.add_argument(
        "--box-units",
        choices=("auto", "normalized", "pixels"),
        default="auto",
        help="GT bbox units for the box variant (SA-Co: normalized)",
    )
    parser.add_argument("--json", type=Path, help="write the metrics here")
    parser.set_defaults(func=run_saco)


def run_saco(args: argparse.Namespace) -> int:
    from sam3spec.eval.saco_files import SacoFormatError, evaluate_saco

    try:
        presence = None
        if args.presence is not None:
            presence = {int(k): float(v) for k, v in json.loads(args.presence.read_text()).items()}
        segm = evaluate_saco(
            args.gt, args.pred, "segm", args.threshold, presence, box_units=args.box_units
        ).summary()
        bbox = evaluate_saco(
            args.gt, args.pred, "bbox", args.threshold, presence, box_units=args.box_units
        ).summary()
    except (FileNotFoundError, SacoFormatError, ValueError) as error:
        return fail(error)
    out = {key: segm[key] for key in ("cgF1", "pmF1", "IL_MCC", "mIoU", "presence_f1")}
    out.update({"gt": [str(p) for p in args.gt], "pred": str(args.pred), "segm": segm, "bbox": bbox})
    for message in dict.fromkeys(segm["notes"] + bbox["notes"]):
        note(message)
    if "note" in segm:
        print(f"cgF1, pmF1, IL_MCC {segm['note']}")
    else:
        print_headline(out)
        print(f"box variant: cgF1 {bbox['cgF1']:.4f}  pmF1 {bbox['pmF1']:.4f}  IL_MCC {bbox['IL_MCC']:.4f}")
    write_json(out, args.json)
    return 0


def add_vos_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--gt-root", type=Path, required=True, help="e.g. sav_val/Annotations_6fps")
    parser.add_argument("--pred-root", type=Path, required=True, help="same layout as --gt-root")
    parser.add_argument("--lenient", action="store_true", help="score only videos that have predictions")
    parser.add_argument(
        "--keep-first-and-last", action="store_true", help="also score the first and last frames"
    )
    parser.add_argument("--json", type=Path, help="write the metrics here")
    parser.set_defaults(func=run_vos)


def run_vos(args: argparse.Namespace) -> int:
    from sam3spec.eval.vos import evaluate_vos

    try:
        evaluation = evaluate_vos(
            args.gt_root,
            args.pred_root,
            strict=not args.lenient,
            skip_first_and_last=not args.keep_first_and_last,
        )
    except (FileNotFoundError, ValueError) as error:
        return fail(error)
    summary = evaluation.summary()
    print_headline(summary)
    print(f"{summary['num_objects']} object(s) in {len(summary['videos'])} video(s)")
    write_json(summary, args.json)
    return 0
