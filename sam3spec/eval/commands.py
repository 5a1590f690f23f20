"""CLI: ``sam3spec eval saco|vos|model``, ``sam3spec prune``, ``sam3spec visual-qa``
(registered by ``sam3spec.cli``)."""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any

HEADLINE = ("cgF1", "pmF1", "IL_MCC", "mIoU", "presence_f1", "J", "F", "J&F")


def _write_json(data: Any, path: Path | None) -> None:
    if path is None:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(json.dumps(data, indent=2, allow_nan=True))
    temporary.replace(path)


def _print_headline(metrics: dict[str, Any]) -> None:
    parts = []
    for key in HEADLINE:
        value = metrics.get(key)
        if isinstance(value, float) and not math.isnan(value):
            parts.append(f"{key} {value:.4f}")
    print("  ".join(parts))


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
        print(f"error: {error}", file=sys.stderr)
        return 2
    out = {key: segm[key] for key in ("cgF1", "pmF1", "IL_MCC", "mIoU", "presence_f1")}
    out.update({"gt": [str(p) for p in args.gt], "pred": str(args.pred), "segm": segm, "bbox": bbox})
    _print_headline(out)
    print(f"box variant: cgF1 {bbox['cgF1']:.4f}  pmF1 {bbox['pmF1']:.4f}  IL_MCC {bbox['IL_MCC']:.4f}")
    if segm["ignored_predictions"]:
        print(
            f"note: {segm['ignored_predictions']} prediction(s) are for pairs not evaluated (unknown or non-exhaustive)"
        )
    _write_json(out, args.json)
    return 0


def run_vos(args: argparse.Namespace) -> int:
    from sam3spec.eval.vos import evaluate_vos

    try:
        evaluation = evaluate_vos(args.gt_root, args.pred_root, strict=not args.lenient,
                                  skip_first_and_last=not args.keep_first_and_last)  # fmt: skip
    except (FileNotFoundError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    summary = evaluation.summary()
    _print_headline(summary)
    print(f"{summary['num_objects']} object(s) in {len(summary['videos'])} video(s)")
    _write_json(summary, args.json)
    return 0


def run_model(args: argparse.Namespace) -> int:
    from sam3spec.eval.model_eval import evaluate_model_on_world
    from sam3spec.eval.saco_files import SacoFormatError

    out = args.out or (args.json.parent if args.json else Path("eval_out"))
    try:
        metrics = evaluate_model_on_world(args.model, args.data, out, args.device, args.min_score, args.limit,
                                          progress=not args.quiet)  # fmt: skip
    except (FileNotFoundError, SacoFormatError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    _print_headline(metrics)
    print(f"{metrics['kind']} {args.model}: predictions in {metrics['predictions']}; {metrics['vos_note']}")
    _write_json(metrics, args.json)
    return 0


def run_prune(args: argparse.Namespace) -> int:
    from sam3spec.eval.prune import CATEGORIES, apply_prune, plan_prune

    chosen = tuple(c for c in CATEGORIES if getattr(args, c)) or CATEGORIES
    try:
        plan = plan_prune(args.run_dir, chosen, args.keep_last_n)
    except (FileNotFoundError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(plan.format())
    if not args.apply:
        print("dry run: nothing deleted (add --apply to delete the files listed)")
        return 0
    freed = apply_prune(plan)
    print(f"deleted {len(plan.items)} file(s), freed {freed:,d} bytes")
    return 0


def run_visual_qa(args: argparse.Namespace) -> int:
    from sam3spec.eval.model_eval import load_model
    from sam3spec.eval.visual_qa import find_images, render

    try:
        images = find_images(args.image, args.image_dir)
        models = {}
        if args.teacher is not None:
            teacher, kind = load_model("teacher" if args.teacher == "default" else args.teacher, args.device)
            if kind != "teacher":
                raise ValueError(
                    f"--teacher {args.teacher} is not a teacher folder (no teacher.json / detector/)"
                )
            models["teacher"] = teacher
        student, kind = load_model(args.student, args.device)
        if kind != "student":
            raise ValueError(f"--student {args.student} is a teacher folder")
        models["student"] = student
        page = render(models, images, args.prompt, args.top_k, args.out)
    except (FileNotFoundError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"{len(images)} image(s) x {len(args.prompt)} prompt(s): open {page}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``eval``, ``prune`` and ``visual-qa``."""
    evaluate = subparsers.add_parser("eval", help="SA-Co cgF1 / SA-V J&F evaluation")
    commands = evaluate.add_subparsers(dest="eval_command", required=True)

    saco = commands.add_parser(
        "saco", help="score COCO-results predictions against SA-Co file(s) (Gold: a b c)"
    )
    saco.add_argument(
        "--gt", type=Path, nargs="+", required=True, help="SA-Co ground-truth file(s); several = Gold oracle"
    )
    saco.add_argument("--pred", type=Path, required=True, help="COCO results JSON (image_id = pair id)")
    saco.add_argument(
        "--presence", type=Path, help="optional {pair id: presence probability} JSON for presence_f1"
    )
    saco.add_argument("--threshold", type=float, default=0.5, help="score threshold (SA-Co: 0.5)")
    saco.add_argument("--box-units", choices=("auto", "normalized", "pixels"), default="auto",
                      help="GT bbox units for the box variant (SA-Co: normalized)")  # fmt: skip
    saco.add_argument("--json", type=Path, help="write the metrics here")
    saco.set_defaults(func=run_saco)

    vos = commands.add_parser("vos", help="J&F of PNG masks (SA-V or DAVIS layout)")
    vos.add_argument("--gt-root", type=Path, required=True, help="e.g. sav_val/Annotations_6fps")
    vos.add_argument("--pred-root", type=Path, required=True, help="same layout as --gt-root")
    vos.add_argument("--lenient", action="store_true", help="score only videos that have predictions")
    vos.add_argument(
        "--keep-first-and-last", action="store_true", help="also score the first and last frames"
    )
    vos.add_argument("--json", type=Path, help="write the metrics here")
    vos.set_defaults(func=run_vos)

    model = commands.add_parser(
        "model", help="run a student or teacher over a world's eval split and score it"
    )
    model.add_argument(
        "--model", required=True, help="student checkpoint folder, teacher folder, or 'teacher'"
    )
    model.add_argument("--data", type=Path, required=True, help="a concept world (sam3spec world generate)")
    model.add_argument("--out", type=Path, help="folder for predictions (default: the --json folder)")
    model.add_argument("--json", type=Path, help="write the metrics here")
    model.add_argument("--device", default="cpu")
    model.add_argument(
        "--min-score", type=float, default=0.05, help="results below this score are not written"
    )
    model.add_argument("--limit", type=int, help="only the first N images (smoke tests)")
    model.add_argument("--quiet", action="store_true", help="no progress bar")
    model.set_defaults(func=run_model)

    prune = subparsers.add_parser("prune", help="free disk space in a run directory (dry run unless --apply)")
    prune.add_argument("run_dir", type=Path)
    prune.add_argument("--apply", action="store_true", help="delete the files listed")
    prune.add_argument(
        "--keep-last-n", type=int, default=1, help="step checkpoints kept per checkpoints/ (>= 1)"
    )
    for category, text in (("checkpoints", "old step checkpoints"), ("vis", "visualisation folders"),
                           ("tensorboard", "TensorBoard event files"), ("cache", "cached teacher targets")):  # fmt: skip
        prune.add_argument(f"--{category}", action="store_true", help=f"{text} (no category flag = all)")
    prune.set_defaults(func=run_prune)

    qa = subparsers.add_parser(
        "visual-qa", help="HTML page: original | teacher | student masks per image x prompt"
    )
    qa.add_argument("--student", type=Path, required=True, help="student checkpoint folder")
    qa.add_argument("--teacher", help="teacher folder, or 'default' for the shipped concept-world teacher")
    source = qa.add_mutually_exclusive_group(required=True)
    source.add_argument("--image", type=Path)
    source.add_argument("--image-dir", type=Path)
    qa.add_argument("--prompt", action="append", required=True, help="noun phrase (repeat for several)")
    qa.add_argument("--top-k", type=int, default=3)
    qa.add_argument("--out", type=Path, required=True)
    qa.add_argument("--device", default="cpu")
    qa.set_defaults(func=run_visual_qa)
