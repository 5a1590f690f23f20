"""CLI: ``sam3spec quantize`` (PTQ, ``--compare``, ``--qat``); thin wrappers over the library."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def _write_quantized(student, report_or_plan: dict, out: Path, state: dict | None = None) -> None:
    """``out/``: the float checkpoint (config.json + model.safetensors), ``quantization.json`` and
    ``quantized_state.pt`` (the torchao state dict; ``torch.load(weights_only=True)`` reads it)."""

    from sam3spec.checkpoint import save_pretrained

    save_pretrained(student if state is None else _float_copy(student, state), out)
    (out / "quantization.json").write_text(json.dumps(report_or_plan, indent=2) + "\n")


def _float_copy(student, state: dict):
    from sam3spec.models.student import build_student

    model = build_student(student.config)
    model.load_state_dict(state, strict=False)
    return model.eval()


def cmd_quantize(args: argparse.Namespace) -> int:
    import torch

    from sam3spec.checkpoint import CheckpointError, load_student
    from sam3spec.quant.recipes import RECIPES, quantize_student

    try:
        student = load_student(args.model)
    except CheckpointError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if args.compare:
        return _compare(student, args)
    if args.recipe not in RECIPES:
        print(f"error: unknown recipe {args.recipe!r}; known: {', '.join(RECIPES)}", file=sys.stderr)
        return 2
    if args.out is None:
        print("error: --out DIR is required (unless --compare)", file=sys.stderr)
        return 2
    if args.qat:
        return _qat(student, args)
    float_state = {name: value.clone() for name, value in student.state_dict().items()}
    report = quantize_student(student, args.recipe)
    print(report.describe())
    _write_quantized(student, {"recipe": args.recipe, "mode": "ptq", "describe": report.describe(),
                               "kept_float": report.plan.kept_float, "float_bytes": report.float_bytes,
                               "packed_bytes": report.packed_bytes}, args.out, float_state)  # fmt: skip
    torch.save(student.state_dict(), args.out / "quantized_state.pt")
    print(f"wrote {args.out} (float checkpoint + quantization.json + quantized_state.pt)")
    return 0


def _compare(student, args: argparse.Namespace) -> int:
    from sam3spec.quant.compare import compare, format_table, rows_to_json

    if args.world is None:
        print("error: --compare needs --world DIR (a generated concept world)", file=sys.stderr)
        return 2
    recipes = [name for name in args.recipes.split(",") if name]
    rows = compare(student, args.world, recipes, args.pte or (), args.limit)
    print(format_table(rows))
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(rows_to_json(rows), indent=2) + "\n")
        print(f"JSON written to {args.json}")
    return 0


def _qat(student, args: argparse.Namespace) -> int:
    import torch

    from sam3spec.quant.qat import QatOptions, train_qat

    if args.world is None:
        print("error: --qat needs --world DIR (a generated concept world)", file=sys.stderr)
        return 2
    options = QatOptions(steps=args.steps, learning_rate=args.lr, batch_size=args.batch_size)
    result = train_qat(student, args.world, args.recipe, options)
    float_state = result.pop("float_state")
    _write_quantized(student, {"recipe": args.recipe, "mode": "qat", "steps": args.steps, "lr": args.lr,
                               "plan": result["plan"], "losses": result["losses"],
                               "packed_bytes": result["packed_bytes"]}, args.out, float_state)  # fmt: skip
    torch.save(student.state_dict(), args.out / "quantized_state.pt")
    print(
        f"QAT done in {result['seconds']:.0f} s; wrote {args.out} (QAT-trained float weights + quantized_state.pt)"
    )
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    from sam3spec.quant.recipes import RECIPES

    quantize = subparsers.add_parser(
        "quantize",
        help="quantize a student (torchao), compare recipes, or run QAT",
        description="Recipes: " + "; ".join(f"{r.name}: {r.what}" for r in RECIPES.values()),
    )
    quantize.add_argument("--model", type=Path, required=True, help="student checkpoint directory")
    quantize.add_argument("--recipe", default="8da4w", help=f"one of {', '.join(RECIPES)}")
    quantize.add_argument("--out", type=Path, help="output directory (PTQ / QAT)")
    quantize.add_argument(
        "--compare", action="store_true", help="table of float vs recipes vs .pte on the concept world"
    )
    quantize.add_argument(
        "--recipes", default="8da4w,int4wo-g128,8da8w", help="--compare: comma-separated recipes"
    )
    quantize.add_argument(
        "--pte", type=Path, action="append", help="--compare: also score this .pte (repeatable)"
    )
    quantize.add_argument("--world", type=Path, help="a generated concept world (--compare, --qat)")
    quantize.add_argument("--limit", type=int, help="--compare: first N eval images only")
    quantize.add_argument("--json", type=Path, help="--compare: write the rows as JSON")
    quantize.add_argument("--qat", action="store_true", help="quantization-aware training, then convert")
    quantize.add_argument("--steps", type=int, default=200, help="--qat: optimizer steps")
    quantize.add_argument("--lr", type=float, default=1e-5, help="--qat: learning rate (MISSION.md: 1e-5)")
    quantize.add_argument("--batch-size", type=int, default=4, help="--qat: samples per step")
    quantize.set_defaults(func=cmd_quantize)
