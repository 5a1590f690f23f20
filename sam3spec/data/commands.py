"""CLI: ``sam3spec world generate`` and ``sam3spec data verify`` (registered by ``sam3spec.cli``)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``world`` and ``data`` commands to the ``sam3spec`` parser."""
    world = subparsers.add_parser("world", help="the procedurally generated concept world")
    world_commands = world.add_subparsers(dest="world_command", required=True)
    generate = world_commands.add_parser(
        "generate", help="write a concept world in the SA-1B / SA-Co / SA-V layouts"
    )
    generate.add_argument(
        "--out", required=True, type=Path, help="output folder (empty, or a world with --overwrite)"
    )
    generate.add_argument("--images", type=int, default=200, help="images, train + eval (default 200)")
    generate.add_argument("--videos", type=int, default=10, help="videos, train + val (default 10)")
    generate.add_argument("--seed", type=int, default=0, help="world seed (default 0)")
    generate.add_argument("--size", type=int, default=None, help="image / frame side in pixels (default 160)")
    generate.add_argument("--overwrite", action="store_true", help="replace the trees of an existing world")
    generate.add_argument("--quiet", action="store_true", help="no progress bar")
    generate.set_defaults(func=run_generate)

    data = subparsers.add_parser("data", help="dataset checks")
    data_commands = data.add_subparsers(dest="data_command", required=True)
    check = data_commands.add_parser("verify", help="detect, decode and count SA-1B / SA-Co / SA-V trees")
    check.add_argument("directory", type=Path, help="folder to search recursively")
    check.add_argument("--json", type=Path, default=None, help="also write the report as JSON here")
    check.add_argument("--image-root", type=Path, default=None, help="image folder of SA-Co files")
    check.add_argument("--progress", action="store_true", help="show progress bars")
    check.set_defaults(func=run_verify)


def run_generate(args: argparse.Namespace) -> int:
    """Generate a world; prints counts and the time taken. Exit 0, or 2 on bad arguments."""
    from sam3spec.data.world import WorldConfig, generate_world

    try:
        config = WorldConfig() if args.size is None else WorldConfig(image_size=args.size)
        summary = generate_world(
            args.out,
            args.images,
            args.videos,
            args.seed,
            config,
            progress=not args.quiet,
            overwrite=args.overwrite,
        )
    except (ValueError, FileExistsError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    counts = ", ".join(f"{key} {value}" for key, value in summary.counts.items())
    print(f"wrote {summary.paths.root} in {summary.seconds:.2f} s: {counts}")
    return 0


def run_verify(args: argparse.Namespace) -> int:
    """Verify a folder. Exit 0 if clean, 1 if problems were found, 2 if nothing was recognised."""
    from sam3spec.data.verify import verify

    try:
        report = verify(args.directory, image_root=args.image_root, progress=args.progress)
    except FileNotFoundError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(report.format())
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report.to_dict(), indent=2), encoding="utf-8")
    if not report.layouts:
        print(f"error: no SA-1B, SA-Co or SA-V data found under {args.directory}", file=sys.stderr)
        return 2
    return 0 if report.ok else 1
