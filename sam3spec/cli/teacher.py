"""``sam3spec teacher``: run or cache a teacher; train, evaluate and calibrate the concept-world teacher.

``--teacher`` is a teacher folder (a local SAM 3 in the hub's layout, or a sam3spec-layout folder);
left out, the concept-world teacher shipped with the package.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

from sam3spec.cli.common import add_set_option, fail, teacher_or_shipped

DTYPES = ("bfloat16", "float16", "float32")


def register(subparsers: argparse._SubParsersAction) -> None:
    teacher = subparsers.add_parser(
        "teacher",
        help="run / cache a SAM 3 teacher; train / eval / calibrate the concept-world teacher",
        description="run: one image and prompt -> raw outputs + overlay. cache: run the teacher over a "
        "dataset into a resumable sharded cache. train / eval / calibrate: the small SAM 3 teacher of "
        "the concept world (trained from scratch on a CPU; the shipped one is the default --teacher).",
    )
    commands = teacher.add_subparsers(dest="teacher_command", required=True, metavar="SUBCOMMAND")
    add_cache_arguments(
        commands.add_parser("cache", help="run the teacher over a dataset into a sharded cache")
    )
    add_run_arguments(commands.add_parser("run", help="one image and prompt -> raw outputs + overlay"))
    add_train_arguments(commands.add_parser("train", help="train the concept-world teacher (resumable)"))
    add_eval_arguments(
        commands.add_parser("eval", help="teacher mIoU / presence F1 / cgF1 on a world's eval split")
    )
    add_calibrate_arguments(
        commands.add_parser(
            "calibrate", help="fit the teacher's score offset (best cgF1) on a world's training split"
        )
    )


def add_teacher_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--teacher", default=None, help="teacher folder (default: the shipped concept-world teacher)"
    )
    parser.add_argument("--allow-hub", action="store_true", help="allow downloading --teacher from the hub")
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, mps")
    parser.add_argument(
        "--dtype", choices=DTYPES, default=None, help="default: fp32 small teachers, bf16 SAM 3"
    )
    parser.add_argument("--resolution", type=int, default=None, help="run at this input size (e.g. 504)")


def load(args: argparse.Namespace):
    """The teacher of ``--teacher`` (and its device / dtype / resolution options)."""
    import torch

    from sam3spec.teacher.loading import load_teacher

    dtype = None if args.dtype is None else getattr(torch, args.dtype)
    return load_teacher(
        teacher_or_shipped(args.teacher), args.device, dtype, args.resolution, allow_hub=args.allow_hub
    )


def add_cache_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data", required=True, type=Path, help="a data root (its train split), or an SA-1B / SA-V folder"
    )
    parser.add_argument("--out", required=True, type=Path, help="cache folder (reruns resume it)")
    parser.add_argument(
        "--limit", type=int, default=None, help="first N images and N videos only (smoke runs)"
    )
    parser.add_argument(
        "--levels", type=int, nargs="+", default=[2], help="FPN levels kept per image (default 2)"
    )
    parser.add_argument(
        "--video-level", type=int, default=3, help="FPN level kept per video frame (default 3)"
    )
    parser.add_argument("--boxes-per-image", type=int, default=2)
    parser.add_argument("--points-per-image", type=int, default=2)
    parser.add_argument("--mask-queries", type=int, default=16, help="masks kept per prompt (best queries)")
    parser.add_argument("--shard-size", type=int, default=16, help="items (--stage: images) per shard")
    parser.add_argument("--seed", type=int, default=0, help="prompt selection seed")
    parser.add_argument(
        "--stage",
        default=None,
        help="cache this image stage's targets (phase1, phase2, ... as `train stage --stage`), read by "
        "`train stage --teacher-cache DIR`; left out: the teacher's own prompts and the video features",
    )
    parser.add_argument("--schedule", choices=("plan", "world"), default="plan", help="as `train stage`")
    add_set_option(
        parser, "--stage: override a stage field, as `train stage --set` (e.g. teacher_resolution=504)"
    )
    parser.add_argument(
        "--vocabulary", type=Path, default=None, help="--stage: as `train stage --vocabulary`"
    )
    parser.add_argument(
        "--top-k",
        type=int,
        default=None,
        help="--stage: teacher queries kept per sample (default: the student's)",
    )
    parser.add_argument(
        "--precision",
        choices=("float16", "int8"),
        default="float16",
        help="--stage: features and mask storage",
    )
    parser.add_argument(
        "--rank", type=int, default=None, help="this writer's rank (default: torchrun's RANK, or 0)"
    )
    parser.add_argument(
        "--world-size", type=int, default=None, help="writers in all (default: WORLD_SIZE, or 1)"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.add_argument("--pause", type=float, default=0.0, help=argparse.SUPPRESS)  # tests: sleep per shard
    add_teacher_options(parser)
    parser.set_defaults(func=run_cache)


def writer_rank(args: argparse.Namespace) -> tuple[int, int]:
    """``(rank, world_size)`` of ``--rank`` / ``--world-size`` (both or neither), else torchrun's."""
    from sam3spec.teacher.shards import distributed_rank

    if (args.rank is None) != (args.world_size is None):
        raise ValueError("give --rank and --world-size together (or neither: torchrun's RANK / WORLD_SIZE)")
    return distributed_rank(args.rank, args.world_size)


def run_stage_cache(args: argparse.Namespace) -> int:
    """``teacher cache --stage``: the stage's targets (:mod:`sam3spec.distill.store_build`)."""
    from dataclasses import replace

    from sam3spec.cli.train import resolve_stage
    from sam3spec.data.vocabulary import read_vocabulary
    from sam3spec.distill.options import RunOptions
    from sam3spec.distill.store_build import build_target_store

    stage = resolve_stage(args.stage, args.schedule, args.set)
    if args.resolution is not None:  # the teacher's input size is a stage field; --resolution sets it
        stage = replace(stage, teacher_resolution=args.resolution)
    rank, world_size = writer_rank(args)
    options = RunOptions(
        data=args.data,
        out=args.out,
        teacher=teacher_or_shipped(args.teacher),
        limit=args.limit,
        vocabulary=None if args.vocabulary is None else read_vocabulary(args.vocabulary),
    )
    args.resolution = stage.teacher_resolution
    counts = build_target_store(
        stage,
        options,
        load(args),
        args.out,
        args.shard_size,
        args.top_k,
        args.precision,
        rank,
        world_size,
        not args.quiet,
        args.pause,
    )
    print(
        f"rank {rank}/{world_size}: {counts['computed']} shard(s) computed, {counts['skipped']} already done; "
        f"{counts['samples']} sample(s) of stage {stage.name} in {counts['shards']} shard(s) -> {args.out}"
    )
    index = counts.get("index")
    if index is None:
        print("index not written yet: the other ranks' shards are not all done (it is written by the last)")
        return 0
    per_sample = index["bytes_per_sample"]
    print(
        f"index written: {per_sample / 1e6:.3f} MB per sample ({index['precision']}, top-{index['top_k']} queries), "
        f"{index['total_bytes'] / 1e6:.1f} MB in all; SA-1B ({index['sa1b_images']:,} images): "
        f"{index['sa1b_bytes'] / 1e12:.1f} TB"
    )
    return 0


def run_cache(args: argparse.Namespace) -> int:
    if args.stage is not None:
        return run_stage_cache(args)
    from sam3spec.teacher.cache import CacheOptions, build_cache

    options = CacheOptions(
        levels=tuple(args.levels),
        video_level=args.video_level,
        boxes_per_image=args.boxes_per_image,
        points_per_image=args.points_per_image,
        mask_queries=args.mask_queries,
        shard_size=args.shard_size,
        limit=args.limit,
        seed=args.seed,
        resolution=args.resolution,
        teacher=teacher_or_shipped(args.teacher),
        data=str(Path(args.data).resolve()),
    )
    rank, world_size = writer_rank(args)
    counts = build_cache(
        load(args), args.data, args.out, options, rank, world_size, not args.quiet, args.pause
    )
    print(
        f"rank {rank}/{world_size}: {counts['computed']} shard(s) computed, {counts['skipped']} already done; "
        f"{counts['items']} item(s) in {counts['shards']} shard(s) -> {args.out}"
    )
    return 0


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("image", type=Path)
    parser.add_argument("--prompt", default=None, help='noun phrase, e.g. "red circle"')
    parser.add_argument(
        "--box", type=float, nargs=4, default=None, metavar=("X0", "Y0", "X1", "Y1"), help="normalised"
    )
    parser.add_argument(
        "--point", type=float, nargs=2, default=None, metavar=("X", "Y"), help="normalised click"
    )
    parser.add_argument("--out", required=True, type=Path, help="output folder")
    parser.add_argument("--threshold", type=float, default=0.5)
    add_teacher_options(parser)
    parser.set_defaults(func=run_baseline)


def run_baseline(args: argparse.Namespace) -> int:
    from sam3spec.data.image_io import load_image
    from sam3spec.teacher.baseline import check_prompt, check_threshold, run_baseline

    if not (args.prompt or args.box or args.point):
        return fail("give --prompt, --box or --point")
    try:  # prompt and image first: a bad one fails before the teacher loads
        check_prompt(args.prompt, args.box, args.point)
        check_threshold(args.threshold)
        image = load_image(args.image)
    except ValueError as error:
        return fail(error)
    summary = run_baseline(load(args), image, args.out, args.prompt, args.box, args.point, args.threshold)
    dropped = f" ({summary['dropped_empty']} with an empty mask left out)" if summary["dropped_empty"] else ""
    print(
        f"{len(summary['instances'])} instance(s){dropped}, presence {summary['presence']:.3f}; wrote "
        f"{args.out}/" + "{outputs.safetensors, overlay.png, summary.json}"
    )
    return 0


def add_train_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", required=True, type=Path, help="run folder (checkpoint, log, teacher/)")
    parser.add_argument("--steps", type=int, default=7200, help="default: the shipped teacher (7200)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument(
        "--init-from", type=Path, default=None, help="fine-tune: start from this teacher folder's weights"
    )
    parser.add_argument("--lr", type=float, default=None, help="peak learning rate (default 8e-4)")
    parser.add_argument("--warmup-steps", type=int, default=None, help="default 150")
    parser.add_argument("--phrases-per-image", type=int, default=None, help="default 4")
    parser.add_argument(
        "--mask-target-scale",
        type=int,
        default=None,
        help="detector mask / semantic targets at this multiple of the mask grid (default 1; 2 = the "
        "world's image pixels, what the shipped teacher's last fine-tune used)",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.add_argument("--ship", action="store_true", help="also copy it (fp16) over the shipped teacher")
    parser.set_defaults(func=run_train)


def train_config(args: argparse.Namespace):
    """The :class:`~sam3spec.world.teacher.train.WorldTrainConfig` of ``teacher train``'s flags
    (flags left out keep the shipped recipe's values)."""
    from sam3spec.world.teacher.train import WorldTrainConfig

    config = WorldTrainConfig(seed=args.seed, steps=args.steps, threads=args.threads)
    overrides = {
        "init_from": None if args.init_from is None else str(args.init_from),
        "learning_rate": args.lr,
        "warmup_steps": args.warmup_steps,
        "phrases_per_image": args.phrases_per_image,
        "mask_target_scale": args.mask_target_scale,
    }
    return replace(config, **{key: value for key, value in overrides.items() if value is not None})


def run_train(args: argparse.Namespace) -> int:
    from sam3spec.world.teacher.train import train_world_teacher

    teacher = train_world_teacher(args.out, train_config(args), progress=not args.quiet)
    print(f"teacher written to {teacher}")
    if args.ship:
        from sam3spec.world.teacher import ship_teacher

        print(f"shipped (fp16) to {ship_teacher(teacher)}")
    return 0


def add_eval_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--world", required=True, type=Path, help="a generated concept world")
    parser.add_argument("--limit", type=int, default=None, help="first N eval images only")
    parser.add_argument("--json", type=Path, default=None, help="also write the metrics here")
    add_teacher_options(parser)
    parser.set_defaults(func=run_eval)


def run_eval(args: argparse.Namespace) -> int:
    from sam3spec.eval.metrics import format_metric
    from sam3spec.world.evaluate import evaluate_world

    metrics = evaluate_world(load(args), args.world, args.limit)
    if metrics["num_pairs"] == 0:
        print(f"metrics {metrics['note']} (the world's eval split is empty)")
    else:
        print(
            " ".join(
                f"{key} {format_metric(metrics[key])}"
                for key in ("mIoU", "presence_f1", "cgF1", "pmF1", "IL_MCC")
            ),
            f"({int(metrics['num_pairs'])} pairs, {int(metrics['num_instances'])} instances)",
        )
        if metrics.get("note"):
            print(f"note: {metrics['note']}")
    if args.json:
        Path(args.json).write_text(json.dumps(metrics, indent=2) + "\n", encoding="utf-8")
    return 0


def add_calibrate_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--world", required=True, type=Path, help="a generated concept world")
    parser.add_argument("--images", type=int, default=200, help="training images to fit on (default 200)")
    parser.add_argument(
        "--offsets",
        type=float,
        nargs="+",
        default=None,
        help="logit offsets to try (default -1 .. 3 by 0.25)",
    )
    parser.add_argument(
        "--write", action="store_true", help="store the best offset in the teacher folder's teacher.json"
    )
    add_teacher_options(parser)
    parser.set_defaults(func=run_calibrate)


def run_calibrate(args: argparse.Namespace) -> int:
    from sam3spec.teacher.loading import TEACHER_META, update_teacher_meta
    from sam3spec.world.evaluate import world_eval_samples
    from sam3spec.world.teacher.calibration import DEFAULT_OFFSETS, calibrate

    folder = Path(teacher_or_shipped(args.teacher))
    meta_path = folder / TEACHER_META
    if args.write and not meta_path.is_file():
        return fail(f"--write needs {meta_path} (a sam3spec-layout teacher folder)")
    samples = world_eval_samples(args.world, args.images, split="train")
    calibration = calibrate(load(args), samples, args.offsets or DEFAULT_OFFSETS)
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
        update_teacher_meta(
            folder, {"score_offset": calibration.offset, "calibration": calibration.as_meta(source)}
        )
        print(f"score_offset {calibration.offset:+.2f} written to {meta_path}")
    return 0
