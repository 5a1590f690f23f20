"""``sam3spec segment``: every instance of a noun phrase (and / or boxes, points) in an image, as an
overlay PNG."""

from __future__ import annotations

import argparse
from pathlib import Path

from sam3spec.cli.common import box_xyxy, note, point_xy, probability
from sam3spec.cli.errors import UsageError
from sam3spec.config import TINY_PRESET


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "segment",
        help="segment every instance of a noun phrase (or a box / point) in an image",
        description="Prompts: a noun phrase (--prompt), exemplar boxes (--box) and points (--point), "
        "alone or together; coordinates are pixels of the input image.",
    )
    parser.add_argument("image", type=Path)
    parser.add_argument("--prompt", help='a noun phrase, e.g. "red circle"')
    parser.add_argument(
        "--box",
        type=box_xyxy,
        action="append",
        default=[],
        metavar="X0,Y0,X1,Y1",
        help="exemplar box in pixels (repeatable)",
    )
    parser.add_argument(
        "--point",
        type=point_xy,
        action="append",
        default=[],
        metavar="X,Y[,LABEL]",
        help="point in pixels, label 1 positive (default) or 0 negative (repeatable)",
    )
    parser.add_argument("--out", type=Path, required=True, help="overlay PNG to write (folders are created)")
    parser.add_argument("--model", type=Path, help="student checkpoint directory")
    parser.add_argument("--preset", default=TINY_PRESET, help="preset when no --model (random weights)")
    parser.add_argument(
        "--threshold", type=probability, default=0.5, help="instance score threshold in [0, 1] (default 0.5)"
    )
    parser.set_defaults(func=run)


def check_model_arguments(args: argparse.Namespace) -> None:
    """``--model`` is a folder, or ``--preset`` a known preset (checked before torch loads)."""
    from sam3spec.config import get_preset

    if getattr(args, "model", None):
        if not Path(args.model).is_dir():
            raise UsageError(f"--model {args.model}: no such checkpoint folder")
        return
    try:
        get_preset(args.preset)
    except KeyError as error:
        raise UsageError(f"--preset: {error.args[0]}") from None


def load_model(args: argparse.Namespace):
    """The student of ``--model``, or a randomly initialised ``--preset`` (with a note)."""
    from sam3spec.checkpoint import load_student
    from sam3spec.models.build import build_student

    check_model_arguments(args)
    if getattr(args, "model", None):
        return load_student(args.model)
    note(f"no --model given; using randomly initialised weights of preset {args.preset!r}")
    return build_student(args.preset).eval()


def check_prompts(args: argparse.Namespace, size: tuple[int, int] | None = None) -> None:
    """A prompt is given and not blank; with the image's ``(width, height)``, its boxes and points
    lie inside the image."""
    if args.prompt is None and not args.box and not args.point:
        raise UsageError("no prompt: give --prompt TEXT, --box X0,Y0,X1,Y1 or --point X,Y")
    if args.prompt is not None and not args.prompt.strip():
        raise UsageError("--prompt is empty; expected a noun phrase, e.g. --prompt 'red circle'")
    if size is None:
        return
    width, height = size
    for x0, y0, x1, y1 in args.box:
        if x0 < 0 or y0 < 0 or x1 > width or y1 > height:
            raise UsageError(
                f"--box {x0:g},{y0:g},{x1:g},{y1:g}: outside the {width} x {height} image "
                f"(expected 0 <= x0 < x1 <= {width}, 0 <= y0 < y1 <= {height})"
            )
    for x, y, _ in args.point:
        if not (0 <= x <= width and 0 <= y <= height):
            raise UsageError(f"--point {x:g},{y:g}: outside the {width} x {height} image")


def output_format(path: Path) -> str:
    """The PIL format of the overlay file, from its extension."""
    from PIL import Image

    known = Image.registered_extensions()
    if path.suffix.lower() not in known:
        raise UsageError(f"--out {path}: unknown image extension; expected .png, .jpg, ...")
    return known[path.suffix.lower()]


def check_prompt_length(prompt: str | None, tokenizer) -> None:
    """A prompt longer than the model's text context is refused (it would be cut silently)."""
    if prompt is None:
        return
    tokens, limit = tokenizer.token_count(prompt), tokenizer.context_length
    if tokens > limit:
        raise UsageError(
            f"--prompt is {tokens} tokens long; the model reads at most {limit} (start and end tokens "
            f"included, about {limit - 2} word pieces): shorten it"
        )


def run(args: argparse.Namespace) -> int:
    check_prompts(args)  # the cheap checks first: torch and the model load after them
    check_model_arguments(args)
    kind = output_format(args.out)
    from sam3spec.data.image_io import ImageReadError, load_image

    try:
        image = load_image(args.image)
    except ImageReadError as error:
        raise UsageError(str(error)) from None
    check_prompts(args, (image.shape[1], image.shape[0]))

    from sam3spec.predictor import ImagePredictor
    from sam3spec.visualize import draw_overlay

    predictor = ImagePredictor(load_model(args))
    check_prompt_length(args.prompt, predictor.tokenizer)
    predictor.set_image(image)
    prediction = predictor.predict(
        text=args.prompt,
        boxes=[list(box) for box in args.box] or None,
        points=[[x, y] for x, y, _ in args.point] or None,
        point_labels=[label for _, _, label in args.point] or None,
        threshold=args.threshold,
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    temporary = args.out.with_name(f".{args.out.name}.tmp")
    draw_overlay(image, prediction.masks, prediction.boxes_xyxy, prediction.scores).save(temporary, kind)
    temporary.replace(args.out)
    asked = " + ".join(
        part
        for part in (
            repr(args.prompt) if args.prompt is not None else "",
            f"{len(args.box)} box(es)" if args.box else "",
            f"{len(args.point)} point(s)" if args.point else "",
        )
        if part
    )
    print(
        f"{len(prediction.scores)} instance(s) of {asked} (presence {prediction.presence:.2f}); "
        f"overlay written to {args.out}"
    )
    return 0
