"""``sam3spec eval``: SA-Co and SA-V metrics, model evaluation, comparisons, visual QA.

=========== ===========================================================================
saco        score COCO-results predictions against SA-Co files (a Gold triple: oracle)
vos         J&F of PNG masks (SA-V or DAVIS layout)
model       a student, teacher or .pte on SA-Co/Gold (every subset) and SA-V, or on a concept world
compare     student vs teacher on SA-Co/Gold or a concept world's held-out split, side by side
video       J&F of the video predictor with and without memory on a world's SA-V val split
quant       float vs each quantization recipe (and .pte programs) on SA-Co/Gold or a world
visual-qa   HTML page: original | teacher | student masks per image and prompt
=========== ===========================================================================
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from sam3spec.cli.common import fail, replaceable_output, teacher_or_shipped, warn, write_json
from sam3spec.cli.eval_files import add_saco_arguments, add_vos_arguments, print_headline
from sam3spec.cli.gold_args import add_gold_arguments, gold_subsets
from sam3spec.cli.track import add_model_arguments, load_video_model


def register(subparsers: argparse._SubParsersAction) -> None:
    evaluate = subparsers.add_parser(
        "eval",
        help="SA-Co cgF1 / SA-V J&F, model evaluation, comparisons, visual QA",
        description="saco and vos score prediction files with the SA-Co / SA-V evaluators' semantics; "
        "model, compare and quant run models on SA-Co/Gold as released (--saco-gold, --images) and "
        "SA-V (model --sav), or on a concept world's held-out split; video and visual-qa on a world / "
        "your images.",
    )
    commands = evaluate.add_subparsers(dest="eval_command", required=True, metavar="SUBCOMMAND")
    add_saco_arguments(
        commands.add_parser("saco", help="score COCO-results predictions against SA-Co file(s) (Gold: a b c)")
    )
    add_vos_arguments(commands.add_parser("vos", help="J&F of PNG masks (SA-V or DAVIS layout)"))
    add_model_eval_arguments(
        commands.add_parser(
            "model", help="a student, teacher or .pte on SA-Co/Gold + SA-V (or a concept world), scored"
        )
    )
    add_compare_arguments(
        commands.add_parser(
            "compare", help="student vs teacher on SA-Co/Gold or a concept world, side by side"
        )
    )
    add_video_arguments(
        commands.add_parser("video", help="J&F on a world's SA-V val split, with and without memory")
    )
    add_quant_arguments(
        commands.add_parser("quant", help="float vs quantization recipes vs .pte on SA-Co/Gold or a world")
    )
    add_visual_qa_arguments(
        commands.add_parser(
            "visual-qa", help="HTML page: original | teacher | student masks per image x prompt"
        )
    )


# --- model / compare -----------------------------------------------------------------------------


def add_model_eval_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--model",
        required=True,
        help="student checkpoint folder, teacher folder (sam3spec or transformers layout, e.g. a local "
        "facebook/sam3), a .pte, or 'teacher' (the shipped concept-world teacher)",
    )
    parser.add_argument("--data", type=Path, help="a concept world (sam3spec data generate)")
    add_gold_arguments(parser)
    parser.add_argument(
        "--sav", type=Path, metavar="DIR", help="SA-V val / test folder (JPEGImages_24fps, Annotations_6fps)"
    )
    parser.add_argument("--out", type=Path, help="folder for predictions (default: the --json folder)")
    parser.add_argument("--json", type=Path, help="write the metrics here")
    parser.add_argument("--device", default="cpu")
    parser.add_argument(
        "--min-score", type=float, default=0.05, help="results below this score are not written"
    )
    parser.add_argument("--limit", type=int, help="only the first N images / videos (smoke tests)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(func=run_model)


def run_model(args: argparse.Namespace) -> int:
    from sam3spec.eval.saco_files import SacoFormatError
    from sam3spec.teacher.layout import TeacherLoadError

    real = args.saco_gold is not None or args.sav is not None
    if real == (args.data is not None):
        return fail("give --data WORLD, or --saco-gold DIR and / or --sav DIR")
    if args.images and args.saco_gold is None:
        return fail("--images goes with --saco-gold")
    out = args.out or (args.json.parent if args.json else Path("eval_out"))
    try:
        if real:
            return _run_benchmarks(args, out)
        from sam3spec.world.evaluate import evaluate_model_on_world

        metrics = evaluate_model_on_world(
            args.model, args.data, out, args.device, args.min_score, args.limit, progress=not args.quiet
        )
    except (FileNotFoundError, SacoFormatError, ValueError, TeacherLoadError) as error:
        return fail(error)
    print_headline(metrics)
    print(f"{metrics['kind']} {args.model}: predictions in {metrics['predictions']}; {metrics['vos_note']}")
    write_json(metrics, args.json)
    return 0


def _run_benchmarks(args: argparse.Namespace, out: Path) -> int:
    """``--saco-gold`` / ``--sav``: the model on the real benchmarks (errors raise to run_model)."""
    from sam3spec.eval.gold import format_table
    from sam3spec.eval.model_eval import evaluate_benchmarks
    from sam3spec.eval.sav_vos import sav_split

    subsets = gold_subsets(args) if args.saco_gold is not None else []
    if args.sav is not None:
        sav_split(args.sav)  # a wrong folder fails before the model is loaded
    spec = teacher_or_shipped(None) if args.model == "teacher" else args.model
    metrics = evaluate_benchmarks(
        spec, out, subsets, args.sav, args.device, args.min_score, args.limit, progress=not args.quiet
    )
    if "saco_gold" in metrics:
        print(format_table(metrics["saco_gold"]))
        print(f"predictions: {out}/gold_<subset>/dumps/gold_<subset>/coco_predictions_segm.json")
    if args.sav is not None:
        print_headline({key: metrics[key] for key in ("J", "F", "J&F")})
        print(f"SA-V: {metrics['sav_note']}")
    write_json(metrics, args.json)
    return 0


def add_compare_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--student", required=True, type=Path, help="student checkpoint directory")
    parser.add_argument("--world", type=Path, help="a concept world (its held-out split)")
    add_gold_arguments(parser)
    parser.add_argument(
        "--teacher",
        default=None,
        help="teacher folder, e.g. a local facebook/sam3 (default: the shipped concept-world teacher)",
    )
    parser.add_argument("--limit", type=int, default=None, help="first N held-out images (per subset) only")
    parser.add_argument(
        "--out", type=Path, help="folder of both models' SA-Co predictions (default: the --json folder)"
    )
    parser.add_argument("--json", type=Path, default=None, help="also write metrics.json here")
    parser.set_defaults(func=run_compare)


def run_compare(args: argparse.Namespace) -> int:
    if (args.world is None) == (args.saco_gold is None):
        return fail("give --world WORLD or --saco-gold DIR")
    import tempfile

    from sam3spec.eval.diagnosis import diagnosis_table
    from sam3spec.eval.model_eval import load_model
    from sam3spec.eval.saco_files import SacoFormatError
    from sam3spec.teacher.layout import TeacherLoadError
    from sam3spec.world.evaluate import evaluate_models, write_metrics
    from sam3spec.world.pipeline import side_by_side

    try:
        subsets = gold_subsets(args) if args.saco_gold is not None else []
        teacher, kind = load_model(teacher_or_shipped(args.teacher))
        if kind != "teacher":
            raise ValueError(f"--teacher {args.teacher}: not a teacher folder")
        student, kind = load_model(args.student)
        if kind != "student":
            raise ValueError(f"--student {args.student}: not a student checkpoint")
        models = {"teacher": teacher, "student": student}
        out = args.out or (args.json.parent if args.json else None)
        with tempfile.TemporaryDirectory(prefix="sam3spec-compare-") as scratch:
            if subsets:
                from sam3spec.eval.gold import evaluate_gold

                out = out or Path("compare_out")
                metrics = {
                    name: evaluate_gold(m, subsets, out / name, limit=args.limit)["mean"]
                    for name, m in models.items()
                }
            else:
                metrics = evaluate_models(models, args.world, args.limit)
            diagnoses = compare_diagnoses(models, subsets, args.world, out or Path(scratch), args.limit)
    except (FileNotFoundError, SacoFormatError, ValueError, TeacherLoadError) as error:
        return fail(error)
    print(side_by_side(metrics), end="")
    for split, columns in diagnoses.items():
        print(f"\nDiagnosis, {split} (SA-Co evaluator):\n")
        print(diagnosis_table(columns), end="")
    if args.json:
        write_metrics({**metrics, "diagnosis": diagnoses}, args.json)
    return 0


def compare_diagnoses(models: dict, subsets: list, world: Path | None, out: Path, limit: int | None) -> dict:
    """``{split: {model name: diagnosis}}``: one split per Gold subset (SAM 3 reports each
    subset; the predictions ``evaluate_gold`` wrote under ``out/<name>``), or the world's
    held-out split (predicted here into ``out/<name>``)."""
    from sam3spec.eval.model_eval import mask_geometry

    if not subsets:
        from sam3spec.world.evaluate import diagnose_models

        return {"held-out split": diagnose_models(models, world, out, limit)}
    from sam3spec.eval.gold import diagnose_gold

    per_model = {
        name: diagnose_gold(subsets, out / name, mask_geometry(m), limit) for name, m in models.items()
    }
    return {
        f"Gold subset {subset}": {name: per_model[name][subset] for name in models}
        for subset in per_model["teacher"]
    }


# --- video / quant -------------------------------------------------------------------------------


def add_video_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--world", required=True, type=Path, help="a concept world (its SA-V val split)")
    parser.add_argument("--out", required=True, type=Path)
    add_model_arguments(parser)
    parser.add_argument("--threshold", type=float, default=0.5)
    parser.add_argument("--limit", type=int, default=None, help="first N val videos only")
    parser.add_argument(
        "--select",
        choices=("threshold", "top1"),
        default="threshold",
        help="object mask: union of instances over --threshold, or the best instance per frame",
    )
    parser.set_defaults(func=run_video)


def run_video(args: argparse.Namespace) -> int:
    from sam3spec.eval.video import evaluate_memory
    from sam3spec.world.evaluate import world_video_split

    try:
        videos = world_video_split(args.world)
    except FileNotFoundError as error:
        return fail(error)
    result = evaluate_memory(
        load_video_model(args), videos, args.out, args.threshold, args.limit, args.select
    )
    print(json.dumps(result.as_dict(), indent=1))
    return 0


def add_quant_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", type=Path, required=True, help="student checkpoint directory")
    parser.add_argument("--world", type=Path, help="a concept world (its held-out split)")
    add_gold_arguments(parser)
    parser.add_argument("--recipes", default="8da4w,int4wo-g128,8da8w", help="comma-separated recipes")
    parser.add_argument("--pte", type=Path, action="append", help="also score this .pte (repeatable)")
    parser.add_argument("--limit", type=int, help="first N eval images (per Gold subset) only")
    parser.add_argument("--json", type=Path, help="write the rows as JSON")
    parser.set_defaults(func=run_quant)


def run_quant(args: argparse.Namespace) -> int:
    from sam3spec.checkpoint import CheckpointError, load_student
    from sam3spec.eval.quant_compare import compare, format_table, rows_to_json
    from sam3spec.world.inputs import world_images

    if (args.world is None) == (args.saco_gold is None):
        return fail("give --world WORLD or --saco-gold DIR (the images to score the recipes on)")
    try:
        student = load_student(args.model)
        if args.saco_gold is not None:
            from sam3spec.eval.gold import subset_images

            images = subset_images(gold_subsets(args), args.limit)
        else:
            images = world_images(args.world, args.limit)
    except (CheckpointError, FileNotFoundError, ValueError) as error:
        return fail(error)
    recipes = [name for name in args.recipes.split(",") if name]
    rows = compare(student, images, recipes, args.pte or ())
    print(format_table(rows))
    if args.json is not None:
        write_json(rows_to_json(rows), args.json)
        print(f"JSON written to {args.json}")
    return 0


# --- visual QA -----------------------------------------------------------------------------------


def add_visual_qa_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--student", type=Path, required=True, help="student checkpoint folder")
    parser.add_argument(
        "--teacher", help="teacher folder, or 'default' for the shipped concept-world teacher"
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--image", type=Path)
    source.add_argument("--image-dir", type=Path)
    parser.add_argument("--prompt", action="append", required=True, help="noun phrase (repeat for several)")
    parser.add_argument("--top-k", type=int, default=3)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--device", default="cpu")
    parser.set_defaults(func=run_visual_qa)


def run_visual_qa(args: argparse.Namespace) -> int:
    """Write the page into a temporary sibling of ``--out`` and rename it at the end (an interrupted
    run leaves nothing, or the previous page); unreadable images are skipped with a warning."""
    replaceable_output(args.out, "index.html")  # before torch loads
    from sam3spec.atomic import atomic_directory
    from sam3spec.eval.model_eval import load_model
    from sam3spec.eval.visual_qa import find_images, render

    try:
        images = find_images(args.image, args.image_dir)
        models = {}
        if args.teacher is not None:
            teacher, kind = load_model(teacher_or_shipped(args.teacher), args.device)
            if kind != "teacher":
                raise ValueError(
                    f"--teacher {args.teacher} is not a teacher folder (no teacher.json / detector/)"
                )
            models["teacher"] = teacher
        student, kind = load_model(args.student, args.device)
        if kind != "student":
            raise ValueError(f"--student {args.student} is a teacher folder")
        models["student"] = student
        skipped: list[str] = []

        def skip(message: str) -> None:
            skipped.append(message)
            warn(message)

        with atomic_directory(args.out) as out:
            page = render(models, images, args.prompt, args.top_k, out, warn=skip)
    except (FileNotFoundError, ValueError) as error:
        return fail(error)
    shown = f"{len(images) - len(skipped)} image(s)" + (
        f" ({len(skipped)} unreadable, skipped)" if skipped else ""
    )
    print(f"{shown} x {len(args.prompt)} prompt(s): open {args.out / page.name}")
    return 0
