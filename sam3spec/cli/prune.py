"""``sam3spec prune``: free disk space in a run directory (dry run unless ``--apply``)."""

from __future__ import annotations

import argparse
from pathlib import Path

from sam3spec.cli.common import fail, positive_int

CATEGORY_HELP = (
    ("checkpoints", "old step checkpoints"),
    ("vis", "visualisation folders"),
    ("tensorboard", "TensorBoard event files"),
    ("cache", "cached teacher targets"),
)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "prune",
        help="free disk space in a run directory (dry run unless --apply)",
        description="Lists (and with --apply deletes) intermediate checkpoints, visualisations, "
        "TensorBoard events and cached teacher targets; final weights and exports are never touched.",
    )
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--apply", action="store_true", help="delete the files listed")
    parser.add_argument(
        "--keep-last-n", type=positive_int, default=1, help="step checkpoints kept per checkpoints/ (>= 1)"
    )
    for category, text in CATEGORY_HELP:
        parser.add_argument(f"--{category}", action="store_true", help=f"{text} (no category flag = all)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from sam3spec.prune import CATEGORIES, apply_prune, plan_prune

    chosen = tuple(c for c in CATEGORIES if getattr(args, c)) or CATEGORIES
    try:
        plan = plan_prune(args.run_dir, chosen, args.keep_last_n)
    except (FileNotFoundError, ValueError) as error:
        return fail(error)
    print(plan.format())
    if not args.apply:
        print("dry run: nothing deleted (add --apply to delete the files listed)")
        return 0
    freed = apply_prune(plan)
    print(f"deleted {len(plan.items)} file(s), freed {freed:,d} bytes")
    return 0
