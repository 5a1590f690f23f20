"""``sam3spec segment``: every instance of a noun phrase in an image, as an overlay PNG."""

from __future__ import annotations

import argparse
from pathlib import Path

from sam3spec.cli.common import fail, note
from sam3spec.config import TINY_PRESET


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("segment", help="segment every instance of a noun phrase in an image")
    parser.add_argument("image", type=Path)
    parser.add_argument("--prompt", required=True, help='a noun phrase, e.g. "red circle"')
    parser.add_argument("--out", type=Path, required=True, help="overlay PNG to write")
    parser.add_argument("--model", type=Path, help="student checkpoint directory")
    parser.add_argument("--preset", default=TINY_PRESET, help="preset when no --model (random weights)")
    parser.add_argument("--threshold", type=float, default=0.5)
    parser.set_defaults(func=run)


def load_model(args: argparse.Namespace):
    """The student of ``--model``, or a randomly initialised ``--preset`` (with a note)."""
    from sam3spec.checkpoint import load_student
    from sam3spec.models.build import build_student

    if getattr(args, "model", None):
        return load_student(args.model)
    note(f"no --model given; using randomly initialised weights of preset {args.preset!r}")
    return build_student(args.preset).eval()


def run(args: argparse.Namespace) -> int:
    from sam3spec.data.image_io import ImageReadError, load_image
    from sam3spec.predictor import ImagePredictor
    from sam3spec.visualize import draw_overlay

    try:
        image = load_image(args.image)
    except ImageReadError as error:
        return fail(error)
    predictor = ImagePredictor(load_model(args))
    predictor.set_image(image)
    prediction = predictor.predict(text=args.prompt, threshold=args.threshold)
    draw_overlay(image, prediction.masks, prediction.boxes_xyxy, prediction.scores).save(args.out)
    print(
        f"{len(prediction.scores)} instance(s) of {args.prompt!r} (presence {prediction.presence:.2f}); "
        f"overlay written to {args.out}"
    )
    return 0
