"""``sam3spec export``: the student as one multi-method ExecuTorch program (``.pte``) per backend.

Calibration images and parity samples come from a folder of the user's images with the phrases of
``--vocabulary`` (``--calibration DIR``, :class:`sam3spec.export.folder_inputs.ImageFolderInputs`),
or from a concept world (``--world``, default a small generated one,
:class:`sam3spec.world.inputs.WorldExportInputs`); ``--vocabulary`` is the text table's phrases.
"""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path

from sam3spec.cli.common import fail, note, positive_int
from sam3spec.cli.errors import UsageError
from sam3spec.export.recipes import BACKENDS, EXPORT_RECIPES, METHODS


def register(subparsers: argparse._SubParsersAction) -> None:
    recipes = ", ".join(sorted(EXPORT_RECIPES))
    export = subparsers.add_parser(
        "export",
        help="export the student to one multi-method ExecuTorch program (.pte)",
        description=f"Export encode_image, encode_text, decode and track into one .pte. Recipes: {recipes}.",
    )
    source = export.add_mutually_exclusive_group()
    source.add_argument("--model", type=Path, help="student checkpoint directory")
    source.add_argument("--preset", help="preset name (with --random-weights)")
    export.add_argument("--random-weights", action="store_true", help="random weights (size/latency work)")
    export.add_argument("--backend", choices=BACKENDS, default="xnnpack")
    export.add_argument("--recipe", help="backend recipe (default: xnnpack 8da4w, coreml fp16-w8, qnn 16a8w)")
    export.add_argument(
        "--out", type=Path, required=True, help="the .pte to write (model.json + text table beside it)"
    )
    images = export.add_mutually_exclusive_group()
    images.add_argument(
        "--calibration",
        type=Path,
        metavar="DIR",
        help="folder of your images (first 64, sorted) that calibrate (static int8) and check the program; "
        "needs --vocabulary",
    )
    images.add_argument(
        "--world",
        type=Path,
        help="concept world whose images calibrate and check the program (default: a small generated one)",
    )
    export.add_argument(
        "--force",
        action="store_true",
        help="write the .pte even if parity fails (parity never gates --random-weights)",
    )
    export.add_argument(
        "--vocabulary", type=Path, help="text file, one phrase per line: the text table's phrases"
    )
    export.add_argument("--no-text-table", action="store_true")
    export.add_argument(
        "--methods", default=",".join(METHODS), help="comma-separated subset of the four methods"
    )
    export.add_argument("--max-points", type=positive_int, default=4)
    export.add_argument("--max-boxes", type=positive_int, default=4)
    export.add_argument("--memory-frames", type=positive_int, default=8)
    export.add_argument("--seed", type=int, default=0, help="seed of the random weights")
    export.set_defaults(func=run)


def _student(args: argparse.Namespace):
    """The student of ``--model`` or ``--preset --random-weights``, and how to describe its weights."""
    from sam3spec.models.build import build_student
    from sam3spec.models.image_encoder import randomise_batch_norms

    if args.model is not None:
        from sam3spec.checkpoint import load_student

        return load_student(args.model), "trained"
    import torch

    torch.manual_seed(args.seed)
    student = build_student(args.preset).eval()
    # timm zero-initialises RepViT's last BN per block: random statistics keep sizes honest.
    randomise_batch_norms(student, seed=args.seed)
    return student, "random (randomised BN statistics)"


def _command_line(args: argparse.Namespace, recipe: str) -> str:
    """The export command as one would type it again (recorded in the manifest)."""
    parts = ["sam3spec", "export"]
    parts += ["--model", str(args.model)] if args.model else ["--preset", args.preset, "--random-weights"]
    parts += ["--backend", args.backend, "--recipe", recipe, "--out", str(args.out)]
    if args.calibration:
        parts += ["--calibration", str(args.calibration)]
    if args.world:
        parts += ["--world", str(args.world)]
    if args.vocabulary:
        parts += ["--vocabulary", str(args.vocabulary)]
    if args.methods != ",".join(METHODS):
        parts += ["--methods", args.methods]
    if args.force:
        parts.append("--force")
    return " ".join(shlex.quote(part) for part in parts)


def check_out(out: Path) -> None:
    """``--out`` is a ``.pte`` path whose folder exists (or can be made) and can be written."""
    import os

    if out.suffix != ".pte":
        raise UsageError(f"--out {out}: expected a path ending in .pte")
    if out.is_dir():
        raise UsageError(f"--out {out}: is a folder; expected the .pte file to write")
    existing = next(folder for folder in (out.parent, *out.parent.parents) if folder.exists())
    if not existing.is_dir():
        raise UsageError(f"--out {out}: {existing} is a file, not a folder")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise UsageError(f"--out {out}: cannot create its folder ({error.strerror})") from None
    if not os.access(out.parent, os.W_OK | os.X_OK):
        raise UsageError(f"--out {out}: folder {out.parent} is not writable")


def _inputs(args: argparse.Namespace):
    """The input source (``--calibration`` + ``--vocabulary``, or the world) and the vocabulary."""
    from sam3spec.data.vocabulary import read_vocabulary
    from sam3spec.export.folder_inputs import ImageFolderInputs

    try:
        vocabulary = None if args.vocabulary is None else list(read_vocabulary(args.vocabulary))
    except (FileNotFoundError, ValueError) as error:
        raise UsageError(str(error)) from None
    if args.calibration is not None:
        if vocabulary is None:
            raise UsageError(
                "--calibration needs --vocabulary FILE (phrases to calibrate and check the program on, "
                "and the text table's)"
            )
        return ImageFolderInputs(args.calibration, tuple(vocabulary)), vocabulary
    from sam3spec.world.inputs import WorldExportInputs

    return WorldExportInputs(args.world), vocabulary


def run(args: argparse.Namespace) -> int:
    """Export; exit 0, 2 on bad input (checked before torch loads), 3 when a trained model's parity fails."""
    from sam3spec.config import get_preset
    from sam3spec.export.recipes import get_export_recipe

    if args.model is None and (args.preset is None or not args.random_weights):
        raise UsageError("give --model DIR, or --preset NAME --random-weights")
    methods = [name for name in args.methods.split(",") if name]
    unknown = sorted(set(methods) - set(METHODS))
    if unknown or not methods:
        raise UsageError(f"--methods: unknown {unknown}; choose from {', '.join(METHODS)}")
    try:
        recipe = get_export_recipe(args.backend, args.recipe)
        if args.model is None:
            get_preset(args.preset)
    except KeyError as error:
        raise UsageError(error.args[0]) from None
    check_out(args.out)
    inputs, vocabulary = _inputs(args)
    # Random weights put many mask logits right at the 0 threshold, where any rounding flips pixels:
    # their parity is measured and reported, not enforced (docs/DECISIONS.md "Export").
    gate_parity = args.model is not None and not args.force
    from sam3spec.export.pipeline import ParityError

    try:
        status = _export(args, recipe, inputs, methods, vocabulary, force=not gate_parity)
    except ParityError as error:
        return fail(error, 3)
    if status == 0 and args.random_weights:
        note("random weights: parity is reported in the manifest, not enforced (masks sit on the threshold)")
    return status


def _export(args: argparse.Namespace, recipe, inputs, methods: list[str], vocabulary, force: bool) -> int:
    from sam3spec.data.faults import DataFault
    from sam3spec.export.backends import BackendUnavailable
    from sam3spec.export.pipeline import export_student

    student, weights = _student(args)
    shapes = {"max_points": args.max_points, "max_boxes": args.max_boxes, "memory_frames": args.memory_frames}
    try:
        export_inputs = inputs(student.config.image_size)
    except (FileNotFoundError, ValueError, DataFault) as error:
        raise UsageError(str(error)) from None
    try:
        export_student(
            student,
            args.out,
            recipe,
            export_inputs,
            force=force,
            weights=weights,
            vocabulary=vocabulary,
            methods=methods,
            text_table=not args.no_text_table,
            command=_command_line(args, recipe.name),
            log=lambda line: print(line, flush=True),
            **shapes,
        )
    except BackendUnavailable as error:  # several lines on purpose: the commands to set up the SDK
        return fail(error)
    return 0
