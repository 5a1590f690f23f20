"""CLI: ``sam3spec teacher cache | run | train-world | eval-world | calibrate-world`` (registered by ``sam3spec.cli``).

Each subcommand parses, then calls a library function; transformers is imported only inside them.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

DTYPES = {"float32": "float32", "bfloat16": "bfloat16", "float16": "float16"}


def _add_teacher_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--teacher", default=None, help="teacher folder (default: the shipped concept-world teacher)"
    )
    parser.add_argument("--allow-hub", action="store_true", help="allow downloading --teacher from the hub")
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, mps")
    parser.add_argument(
        "--dtype", choices=sorted(DTYPES), default=None, help="default: fp32 shipped, bf16 SAM 3"
    )
    parser.add_argument("--resolution", type=int, default=None, help="run at this input size (e.g. 504)")


def _teacher(args: argparse.Namespace):
    import torch

    from sam3spec.teacher.loading import load_teacher

    dtype = None if args.dtype is None else getattr(torch, DTYPES[args.dtype])
    return load_teacher(args.teacher, args.device, dtype, args.resolution, allow_hub=args.allow_hub)


def run_cache(args: argparse.Namespace) -> int:
    from sam3spec.teacher.cache import CacheOptions, build_cache, distributed_rank

    options = CacheOptions(
        levels=tuple(args.levels), video_level=args.video_level, boxes_per_image=args.boxes_per_image,
        points_per_image=args.points_per_image, mask_queries=args.mask_queries, shard_size=args.shard_size,
        limit=args.limit, seed=args.seed, resolution=args.resolution, teacher=str(args.teacher or "concept-world"),
        data=str(Path(args.data).resolve()),
    )  # fmt: skip
    rank, world_size = distributed_rank()
    counts = build_cache(
        _teacher(args), args.data, args.out, options, rank, world_size, not args.quiet, args.pause
    )
    print(f"rank {rank}/{world_size}: {counts['computed']} shard(s) computed, {counts['skipped']} already done; "
          f"{counts['items']} item(s) in {counts['shards']} shard(s) -> {args.out}")  # fmt: skip
    return 0


def run_baseline_command(args: argparse.Namespace) -> int:
    from sam3spec.data.files import read_image
    from sam3spec.teacher.baseline import run_baseline

    if not (args.prompt or args.box or args.point):
        print("error: give --prompt, --box or --point", file=sys.stderr)
        return 2
    summary = run_baseline(
        _teacher(args), read_image(args.image), args.out, args.prompt, args.box, args.point, args.threshold
    )
    print(f"{len(summary['instances'])} instance(s), presence {summary['presence']:.3f}; wrote {args.out}/"
          "{outputs.safetensors, overlay.png, summary.json}")  # fmt: skip
    return 0


def train_config(args: argparse.Namespace):
    """The :class:`~sam3spec.teacher.world_train.WorldTrainConfig` of ``train-world``'s flags
    (flags left out keep the shipped recipe's values)."""
    from sam3spec.teacher.world_train import WorldTrainConfig

    config = WorldTrainConfig(seed=args.seed, steps=args.steps, threads=args.threads)
    overrides = {
        "init_from": None if args.init_from is None else str(args.init_from),
        "learning_rate": args.lr,
        "warmup_steps": args.warmup_steps,
        "phrases_per_image": args.phrases_per_image,
        "mask_target_scale": args.mask_target_scale,
    }
    return replace(config, **{key: value for key, value in overrides.items() if value is not None})


def run_train_world(args: argparse.Namespace) -> int:
    from sam3spec.teacher.world_train import train_world_teacher

    config = train_config(args)
    teacher = train_world_teacher(args.out, config, progress=not args.quiet)
    print(f"teacher written to {teacher}")
    if args.ship:
        from sam3spec.teacher.loading import ship_teacher

        print(f"shipped (fp16) to {ship_teacher(teacher)}")
    return 0


def run_eval_world(args: argparse.Namespace) -> int:
    from sam3spec.teacher.world_eval import evaluate_world

    metrics = evaluate_world(_teacher(args), args.world, args.limit)
    print(" ".join(f"{key} {metrics[key]:.4f}" for key in ("mIoU", "presence_f1", "cgF1", "pmF1", "IL_MCC")),
          f"({int(metrics['num_pairs'])} pairs, {int(metrics['num_instances'])} instances)")  # fmt: skip
    if args.json:
        Path(args.json).write_text(json.dumps(metrics, indent=2) + "\n", encoding="utf-8")
    return 0


def run_calibrate_world(args: argparse.Namespace) -> int:
    from sam3spec.teacher.calibration import DEFAULT_OFFSETS, calibrate
    from sam3spec.teacher.loading import TEACHER_META, default_teacher_path, update_teacher_meta
    from sam3spec.teacher.world_eval import world_eval_samples

    folder = Path(args.teacher) if args.teacher is not None else default_teacher_path()
    meta_path = folder / TEACHER_META
    if args.write and not meta_path.is_file():
        print(f"error: --write needs {meta_path} (a sam3spec-layout teacher folder)", file=sys.stderr)
        return 2
    samples = world_eval_samples(args.world, args.images, split="train")
    calibration = calibrate(_teacher(args), samples, args.offsets or DEFAULT_OFFSETS)
    for row in calibration.table:
        print(
            " ".join(
                f"{key} {value:.4f}" if key != "offset" else f"offset {value:+.2f}"
                for key, value in row.items()
            )
        )
    print(
        f"best cgF1 at offset {calibration.offset:+.2f} ({calibration.pairs} training pairs of {args.world})"
    )
    if args.write:
        source = f"{args.world} (training split, first {args.images} images)"
        changes = {"score_offset": calibration.offset, "calibration": calibration.as_meta(source)}
        update_teacher_meta(folder, changes)
        print(f"score_offset {calibration.offset:+.2f} written to {meta_path}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``teacher`` command and its subcommands."""
    teacher = subparsers.add_parser(
        "teacher", help="SAM 3 teacher: cache, baseline run, concept-world teacher"
    )
    commands = teacher.add_subparsers(dest="teacher_command", required=True)

    cache = commands.add_parser("cache", help="run the teacher over a dataset into a resumable sharded cache")
    cache.add_argument("--data", required=True, type=Path, help="concept world, or SA-1B / SA-V folder")
    cache.add_argument("--out", required=True, type=Path, help="cache folder (reruns resume it)")
    cache.add_argument(
        "--limit", type=int, default=None, help="first N images and N videos only (smoke runs)"
    )
    cache.add_argument(
        "--levels", type=int, nargs="+", default=[2], help="FPN levels kept per image (default 2)"
    )
    cache.add_argument(
        "--video-level", type=int, default=3, help="FPN level kept per video frame (default 3)"
    )
    cache.add_argument("--boxes-per-image", type=int, default=2)
    cache.add_argument("--points-per-image", type=int, default=2)
    cache.add_argument("--mask-queries", type=int, default=16, help="masks kept per prompt (best queries)")
    cache.add_argument("--shard-size", type=int, default=16, help="items per shard")
    cache.add_argument("--seed", type=int, default=0, help="prompt selection seed")
    cache.add_argument("--quiet", action="store_true", help="no progress bar")
    cache.add_argument("--pause", type=float, default=0.0, help=argparse.SUPPRESS)  # tests: sleep per shard
    _add_teacher_options(cache)
    cache.set_defaults(func=run_cache)

    run = commands.add_parser("run", help="baseline: one image and prompt -> raw outputs + overlay")
    run.add_argument("image", type=Path)
    run.add_argument("--prompt", default=None, help='noun phrase, e.g. "red circle"')
    run.add_argument(
        "--box", type=float, nargs=4, default=None, metavar=("X0", "Y0", "X1", "Y1"), help="normalised"
    )
    run.add_argument(
        "--point", type=float, nargs=2, default=None, metavar=("X", "Y"), help="normalised click"
    )
    run.add_argument("--out", required=True, type=Path, help="output folder")
    run.add_argument("--threshold", type=float, default=0.5)
    _add_teacher_options(run)
    run.set_defaults(func=run_baseline_command)

    train = commands.add_parser("train-world", help="train the concept-world teacher (resumable)")
    train.add_argument("--out", required=True, type=Path, help="run folder (checkpoint, log, teacher/)")
    train.add_argument("--steps", type=int, default=7200, help="default: the shipped teacher (7200)")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    train.add_argument(
        "--init-from", type=Path, default=None, help="fine-tune: start from this teacher folder's weights"
    )
    train.add_argument("--lr", type=float, default=None, help="peak learning rate (default 8e-4)")
    train.add_argument("--warmup-steps", type=int, default=None, help="default 150")
    train.add_argument("--phrases-per-image", type=int, default=None, help="default 4")
    train.add_argument(
        "--mask-target-scale", type=int, default=None,
        help="detector mask / semantic targets at this multiple of the mask grid (default 1; 2 = the "
        "world's image pixels, what the shipped teacher's last fine-tune used)",
    )  # fmt: skip
    train.add_argument("--quiet", action="store_true", help="no progress bar")
    train.add_argument("--ship", action="store_true", help="also copy it (fp16) to sam3spec/assets/teacher")
    train.set_defaults(func=run_train_world)

    evaluate = commands.add_parser(
        "eval-world", help="teacher mIoU / presence F1 / cgF1 on a world's eval split"
    )
    evaluate.add_argument("--world", required=True, type=Path, help="a generated concept world")
    evaluate.add_argument("--limit", type=int, default=None, help="first N eval images only")
    evaluate.add_argument("--json", type=Path, default=None, help="also write the metrics here")
    _add_teacher_options(evaluate)
    evaluate.set_defaults(func=run_eval_world)

    calibrate = commands.add_parser(
        "calibrate-world",
        help="fit the teacher's score offset (best cgF1) on a world's training split",
    )
    calibrate.add_argument("--world", required=True, type=Path, help="a generated concept world")
    calibrate.add_argument("--images", type=int, default=200, help="training images to fit on (default 200)")
    calibrate.add_argument(
        "--offsets",
        type=float,
        nargs="+",
        default=None,
        help="logit offsets to try (default -1 .. 3 by 0.25)",
    )
    calibrate.add_argument(
        "--write", action="store_true", help="store the best offset in the teacher folder's teacher.json"
    )
    _add_teacher_options(calibrate)
    calibrate.set_defaults(func=run_calibrate_world)
