"""``sam3spec quantize``: post-training quantization of a student with torchao.

The recipes compared side by side: ``sam3spec eval quant``; quantization-aware training:
``sam3spec train qat``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from sam3spec.cli.common import fail


def register(subparsers: argparse._SubParsersAction) -> None:
    from sam3spec.quant.schemes import RECIPES

    parser = subparsers.add_parser(
        "quantize",
        help="quantize a student (torchao post-training quantization)",
        description="Post-training quantization; sensitive layers (IoU head, scoring, Perceiver, memory "
        "attention) stay in float. Recipes: " + "; ".join(f"{r.name}: {r.what}" for r in RECIPES.values()),
    )
    parser.add_argument("--model", type=Path, required=True, help="student checkpoint directory")
    parser.add_argument("--recipe", default="8da4w", help=f"one of {', '.join(RECIPES)}")
    parser.add_argument("--out", type=Path, required=True, help="output directory")
    parser.add_argument(
        "--calibration",
        type=Path,
        metavar="DIR",
        help="folder of your images (first 64, sorted): the quantized student is checked against the "
        "float one on them (parity in quantization.json; these recipes need no calibration); needs --vocabulary",
    )
    parser.add_argument("--vocabulary", type=Path, help="text file, one phrase per line (with --calibration)")
    parser.set_defaults(func=run)


def write_quantized(student, report_or_plan: dict, out: Path, state: dict | None = None) -> None:
    """``out/``: the float checkpoint (config.json + model.safetensors) and ``quantization.json``
    (the caller adds ``quantized_state.pt``, the torchao state dict). Written into ``out``
    (created), whose other entries are kept (``sam3spec train qat``'s ``training/`` run)."""
    from sam3spec.checkpoint import write_student

    out.mkdir(parents=True, exist_ok=True)
    write_student(student if state is None else _float_copy(student, state), out)
    (out / "quantization.json").write_text(json.dumps(report_or_plan, indent=2) + "\n")


def _float_copy(student, state: dict):
    from sam3spec.models.build import build_student

    model = build_student(student.config)
    model.load_state_dict(state, strict=False)
    return model.eval()


def checked_student(model: Path, recipe: str):
    """The student checkpoint ``model``, to be quantized with ``recipe``.

    Raises:
        ValueError: an unknown recipe, or a checkpoint that cannot be read (the message says which).
    """
    if not Path(model).is_dir():
        raise ValueError(f"--model {model}: no such checkpoint folder")
    from sam3spec.checkpoint import CheckpointError, load_student
    from sam3spec.quant.schemes import RECIPES

    if recipe not in RECIPES:
        raise ValueError(f"unknown recipe {recipe!r}; known: {', '.join(RECIPES)}")
    try:
        return load_student(model)
    except CheckpointError as error:
        raise ValueError(str(error)) from error


def parity_inputs(args: argparse.Namespace, image_size: int):
    """``--calibration`` + ``--vocabulary`` as export inputs, or None without ``--calibration``.

    Raises:
        ValueError: a missing or empty folder or vocabulary, an unreadable image (names it).
    """
    from sam3spec.data.faults import DataFault
    from sam3spec.data.vocabulary import read_vocabulary
    from sam3spec.export.folder_inputs import ImageFolderInputs

    if args.calibration is None:
        if args.vocabulary is not None:
            raise ValueError("--vocabulary goes with --calibration DIR")
        return None
    if args.vocabulary is None:
        raise ValueError("--calibration needs --vocabulary FILE (the phrases to check the model on)")
    try:
        phrases = read_vocabulary(args.vocabulary)
    except FileNotFoundError as error:
        raise ValueError(str(error)) from error
    try:
        return ImageFolderInputs(args.calibration, phrases)(image_size)
    except (FileNotFoundError, DataFault) as error:
        raise ValueError(str(error)) from error


def run(args: argparse.Namespace) -> int:
    import torch

    from sam3spec.quant.recipes import quantize_student

    try:
        student = checked_student(args.model, args.recipe)
        inputs = parity_inputs(args, student.config.image_size)
    except ValueError as error:
        return fail(error)
    float_state = {name: value.clone() for name, value in student.state_dict().items()}
    report = quantize_student(student, args.recipe)
    print(report.describe())
    summary = {
        "recipe": args.recipe,
        "mode": "ptq",
        "describe": report.describe(),
        "kept_float": report.plan.kept_float,
        "float_bytes": report.float_bytes,
        "packed_bytes": report.packed_bytes,
    }
    if inputs is not None:
        from sam3spec.export.parity import eager_parity

        parity = eager_parity(
            _float_copy(student, float_state), student, inputs.parity, "float eager student"
        )
        print(parity.describe())
        summary["parity"] = {**parity.to_json(), "inputs": inputs.source}
    write_quantized(student, summary, args.out, float_state)
    torch.save(student.state_dict(), args.out / "quantized_state.pt")
    print(f"wrote {args.out} (float checkpoint + quantization.json + quantized_state.pt)")
    return 0
