"""``sam3spec data``: ``generate`` the concept world; ``verify`` SA-1B / SA-Co / SA-V trees."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from sam3spec.cli.common import fail, non_negative_int, positive_int


def register(subparsers: argparse._SubParsersAction) -> None:
    data = subparsers.add_parser(
        "data",
        help="generate the concept world; verify SA-1B / SA-Co / SA-V trees",
        description="generate: write the embedded concept world (images and videos of coloured shapes "
        "with exact masks and noun phrases) in the SA-1B / SA-Co / SA-V layouts of a data root. "
        "verify: find, decode and count every dataset tree under a folder and list every problem.",
    )
    commands = data.add_subparsers(dest="data_command", required=True, metavar="SUBCOMMAND")
    add_generate_arguments(commands.add_parser("generate", help="write a concept world (a data root)"))
    verify = commands.add_parser("verify", help="detect, decode and count SA-1B / SA-Co / SA-V trees")
    verify.add_argument("directory", type=Path, help="folder to search recursively")
    verify.add_argument("--json", type=Path, default=None, help="also write the report as JSON here")
    verify.add_argument("--image-root", type=Path, default=None, help="image folder of SA-Co files")
    verify.add_argument("--progress", action="store_true", help="show progress bars")
    verify.set_defaults(func=run_verify)


def add_generate_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--out", required=True, type=Path, help="output folder (empty, or a world with --overwrite)"
    )
    parser.add_argument(
        "--images", type=positive_int, default=200, help="images, train + eval, >= 1 (default 200)"
    )
    parser.add_argument(
        "--videos", type=non_negative_int, default=10, help="videos, train + val (default 10)"
    )
    parser.add_argument("--seed", type=int, default=0, help="world seed (default 0)")
    parser.add_argument("--size", type=int, default=None, help="image / frame side in pixels (default 160)")
    parser.add_argument("--overwrite", action="store_true", help="replace the trees of an existing world")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(func=run_generate)


def run_generate(args: argparse.Namespace) -> int:
    """Generate a world; prints counts and the time taken. Exit 0, or 2 on bad arguments."""
    from sam3spec.world import WorldConfig, generate_world

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
        return fail(error)
    counts = ", ".join(f"{key} {value}" for key, value in summary.counts.items())
    print(f"wrote {summary.paths.root} in {summary.seconds:.2f} s: {counts}")
    return 0


def run_verify(args: argparse.Namespace) -> int:
    """Verify a folder. Exit 0 if clean, 1 if problems were found, 2 if nothing was recognised."""
    from sam3spec.data.verify import verify

    try:
        report = verify(args.directory, image_root=args.image_root, progress=args.progress)
    except FileNotFoundError as error:
        return fail(error)
    print(report.format())
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report.to_dict(), indent=2), encoding="utf-8")
    if not report.layouts:
        return fail(f"no SA-1B, SA-Co or SA-V data found under {args.directory}")
    return 0 if report.ok else 1
