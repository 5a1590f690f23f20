"""The ``sam3spec`` command line. Subcommands are thin: they parse and call library functions.

Each feature package contributes its commands through a ``register(subparsers)`` function listed
in :data:`COMMAND_MODULES`; every leaf parser sets ``func(args) -> int``.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from collections.abc import Sequence
from pathlib import Path

COMMAND_MODULES = (
    "sam3spec.cli", "sam3spec.data.commands", "sam3spec.teacher.commands", "sam3spec.distill.commands",
    "sam3spec.quant.commands", "sam3spec.export.commands", "sam3spec.eval.commands", "sam3spec.video.commands",
)


def _load_model(args: argparse.Namespace):
    from sam3spec.checkpoint import load_student
    from sam3spec.models.student import build_student

    if getattr(args, "model", None):
        return load_student(args.model)
    print(f"note: no --model given; using randomly initialised weights of preset {args.preset!r}", file=sys.stderr)
    return build_student(args.preset).eval()


def cmd_info(args: argparse.Namespace) -> int:
    from tabulate import tabulate

    from sam3spec.config import get_preset
    from sam3spec.info import model_info
    from sam3spec.models.student import build_student

    try:
        get_preset(args.preset)
    except KeyError as error:
        print(f"error: {error.args[0]}", file=sys.stderr)
        return 2
    info = model_info(build_student(args.preset).eval(), tuple(args.resolution))
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    rows = [[name, f"{count:,}", f"{count / 1e6:.2f}M"] for name, count in info["params"].items()]
    print(f"preset {info['preset']}")
    print(tabulate(rows, headers=["component", "parameters", ""], tablefmt="github", disable_numparse=True))
    for resolution, gmacs in info["gmacs"].items():
        print(f"{resolution} px: {gmacs:.2f} GMACs (text prompt, batch 1)")
    return 0


def cmd_segment(args: argparse.Namespace) -> int:
    import numpy as np
    from PIL import Image, UnidentifiedImageError

    from sam3spec.predictor import ImagePredictor
    from sam3spec.visualize import draw_overlay

    try:
        image = np.asarray(Image.open(args.image).convert("RGB"))
    except (OSError, UnidentifiedImageError) as error:
        print(f"error: cannot read image {args.image}: {error}", file=sys.stderr)
        return 2
    predictor = ImagePredictor(_load_model(args))
    predictor.set_image(image)
    prediction = predictor.predict(text=args.prompt, threshold=args.threshold)
    draw_overlay(image, prediction.masks, prediction.boxes_xyxy, prediction.scores).save(args.out)
    print(
        f"{len(prediction.scores)} instance(s) of {args.prompt!r} (presence {prediction.presence:.2f}); "
        f"overlay written to {args.out}"
    )
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from sam3spec.report import SPECS_DIR, ResultStore, load_specs, write_report

    store = ResultStore()
    for path in args.results:
        store.ingest(path)
    path = write_report(load_specs(args.specs or SPECS_DIR), store, args.out, title=args.title)
    print(f"report written to {path}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    info = subparsers.add_parser("info", help="parameters per component and GMACs of a preset")
    info.add_argument("--preset", default="efficientsam3-repvit_m2_3-mobileclip_s1")
    info.add_argument("--resolution", type=int, nargs="*", default=[504, 1008], help="GMACs at these sizes")
    info.add_argument("--json", action="store_true", help="print JSON instead of a table")
    info.set_defaults(func=cmd_info)

    segment = subparsers.add_parser("segment", help="segment every instance of a noun phrase in an image")
    segment.add_argument("image", type=Path)
    segment.add_argument("--prompt", required=True, help='a noun phrase, e.g. "red circle"')
    segment.add_argument("--out", type=Path, required=True, help="overlay PNG to write")
    segment.add_argument("--model", type=Path, help="student checkpoint directory")
    segment.add_argument("--preset", default="efficientsam3-tiny", help="preset when no --model (random weights)")
    segment.add_argument("--threshold", type=float, default=0.5)
    segment.set_defaults(func=cmd_segment)

    report = subparsers.add_parser("report", help="render a markdown report from results JSON files")
    report.add_argument("results", nargs="+", type=Path, help="results JSON files (later ones win)")
    report.add_argument("--out", type=Path, required=True, help="report .md (a .json is written beside it)")
    report.add_argument("--title", default="sam3spec performance report")
    report.add_argument("--specs", type=Path, help="spec folder (default: the repository's specs/)")
    report.set_defaults(func=cmd_report)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sam3spec", description=__doc__.splitlines()[0])
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        module = sys.modules[__name__] if name == __name__ else importlib.import_module(name)
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI with ``argv`` (default ``sys.argv[1:]``); returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "func"):
        parser.print_help()
        return 2
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
