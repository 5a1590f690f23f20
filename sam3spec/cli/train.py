"""``sam3spec train``: one distillation ``stage``, the concept world's ``pipeline``, ``video``
memory training, quantization-aware training (``qat``).

Launch on several GPUs (or CPU processes) with torchrun; the same command runs on one device::

    torchrun --nproc_per_node 8 -m sam3spec.cli train stage --stage phase1 --data /data/sa1b \\
        --teacher /models/sam3 --out runs/phase1
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from sam3spec.cli.common import (
    add_set_option,
    fail,
    note,
    parse_overrides,
    set_threads,
    teacher_or_shipped,
    warn,
)
from sam3spec.cli.train_video import add_video_arguments
from sam3spec.data.layout import check_training_data

SCHEDULES = ("plan", "world")


def register(subparsers: argparse._SubParsersAction) -> None:
    train = subparsers.add_parser(
        "train",
        help="distil the student: a stage, the concept-world pipeline, video memory, QAT",
        description="stage: one distillation stage, chosen by name (phase1, phase2, stage3, or their "
        "-world versions). "
        "pipeline: the concept world's main job (world -> teacher -> Phase 1 -> Phase 2 -> Stage 3 -> "
        "students vs teacher). video: train only the video memory of a student. qat: "
        "quantization-aware training, then conversion.",
    )
    commands = train.add_subparsers(dest="train_command", required=True, metavar="SUBCOMMAND")
    add_stage_arguments(
        commands.add_parser("stage", help="run one distillation stage (phase1, phase2, stage3, ...)")
    )
    add_pipeline_arguments(
        commands.add_parser(
            "pipeline", help="concept world -> teacher -> phase1 -> phase2 -> stage3 -> students vs teacher"
        )
    )
    add_video_arguments(
        commands.add_parser("video", help="train only the memory (resampler + memory attention)")
    )
    add_qat_arguments(
        commands.add_parser("qat", help="quantization-aware training (fake quantization), then convert")
    )


# --- stage ---------------------------------------------------------------------------------------


def add_stage_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--stage",
        required=True,
        help="the stage, by name: phase1, phase2, stage3 (the plan's: seed student, 504 px) or "
        "phase1-world, phase2-world, stage3-world (the concept world's: tiny student, 160 px)",
    )
    parser.add_argument(
        "--data",
        required=True,
        action="append",
        metavar="ROOT[:WEIGHT]",
        help="training data: a data root (e.g. a concept world), an SA-1B folder or an SA-Co folder; "
        "repeat to mix several roots, each with a share of every epoch by its weight (default 1)",
    )
    parser.add_argument(
        "--vocabulary",
        type=Path,
        default=None,
        help="text file, one phrase per line: text prompts on SA-1B images, whose presence the teacher "
        "decides (default: the shipped LVIS + COCO category names)",
    )
    parser.add_argument(
        "--teacher", default=None, help="teacher folder (default: the shipped concept-world teacher)"
    )
    parser.add_argument("--out", required=True, type=Path, help="run directory")
    parser.add_argument(
        "--resume", action="store_true", help="continue from the run directory's latest checkpoint"
    )
    parser.add_argument("--debug", action="store_true", help="3 steps on a few samples (smoke test)")
    parser.add_argument(
        "--init",
        type=Path,
        default=None,
        help="student checkpoint to start from (default: the previous stage's final/)",
    )
    parser.add_argument(
        "--allow-partial",
        action="store_true",
        help="load what fits of an --init checkpoint made for another student (default: an error)",
    )
    parser.add_argument(
        "--schedule",
        choices=SCHEDULES,
        default="plan",
        help="plan: the stage as named; world: its concept-world version (phase1 -> phase1-world)",
    )
    add_set_option(parser, "override a stage field, e.g. epochs=2")
    parser.add_argument("--device", default=None, help="cpu, cuda, mps (default: auto)")
    parser.add_argument(
        "--no-cache",
        action="store_true",
        help="run the teacher on every batch instead of caching its targets",
    )
    parser.add_argument(
        "--teacher-cache",
        type=Path,
        default=None,
        help="read the teacher's targets from this cache (`sam3spec teacher cache --stage NAME`)",
    )
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.add_argument(
        "--pretrained-backbone", type=Path, default=None, help="RepViT weights for a fresh student"
    )
    parser.add_argument(
        "--pretrained-text", type=Path, default=None, help="MobileCLIP weights for a fresh student"
    )
    parser.add_argument("--limit", type=int, default=None, help="use only the first N training samples")
    parser.add_argument("--no-tensorboard", action="store_true", help="no TensorBoard event files")
    parser.add_argument("--pause", type=float, default=0.0, help=argparse.SUPPRESS)  # tests: sleep per step
    parser.set_defaults(func=run_stage)


def resolve_stage(name: str, schedule: str, changes: list[str]):
    """The stage to run: ``name`` (``schedule`` world: its concept-world version, ``phase1`` ->
    ``phase1-world``), then ``--set key=value`` overrides (dotted paths, JSON values). Chosen by name
    only: nothing in the data folder changes it."""
    import sam3spec.world.stages  # noqa: F401  (registers the concept-world stages)
    from sam3spec.config import override
    from sam3spec.distill.registry import STAGES, get_stage
    from sam3spec.distill.stages import StageConfig

    if schedule == "world" and not name.endswith("-world"):
        if f"{name}-world" not in STAGES:
            raise KeyError(f"stage {name!r} has no concept-world version (--schedule world)")
        name = f"{name}-world"
    stage = get_stage(name)
    if not isinstance(stage, StageConfig):
        raise ValueError(
            f"{name!r} is not an image distillation stage; run it with its own command "
            "(video stages: `sam3spec train video --stage NAME`)"
        )
    parsed = parse_overrides(changes)
    return override(stage, parsed) if parsed else stage


def data_option(values: list[str]):
    """``--data`` values -> ``RunOptions.data``: one root as a path, several as weighted sources."""
    from sam3spec.data.sources import DataSource

    sources = [DataSource.parse(value) for value in values]
    return sources[0].root if len(sources) == 1 else sources


def default_init(stage, out: Path) -> Path | None:
    """Where the previous stage's final weights are by convention: ``<out>/../<init_from>/final``
    (also tried without the ``-world`` suffix)."""
    if stage.init_from is None:
        return None
    for name in (stage.init_from, stage.init_from.removesuffix("-world")):
        candidate = out.parent / name / "final"
        if (candidate / "model.safetensors").is_file():
            return candidate
    raise FileNotFoundError(
        f"stage {stage.name!r} starts from {stage.init_from!r}, but "
        f"{out.parent / stage.init_from.removesuffix('-world') / 'final'} does not exist; run that stage "
        "first or pass --init DIR"
    )


def run_stage(args: argparse.Namespace) -> int:
    """Run one stage; exit 0, 2 when the stage, the data, the vocabulary, the teacher or the
    ``--init`` checkpoint do not fit (one line naming what and why)."""
    data = data_option(args.data)
    roots = [data] if isinstance(data, Path) else [source.root for source in data]
    for root in roots:
        check_training_data(root)  # before torch loads (the stage reads each root fully, before writing)
    from dataclasses import replace

    from sam3spec.data.vocabulary import read_vocabulary
    from sam3spec.distill.options import RunOptions
    from sam3spec.distill.trainer import distill

    set_threads(args.threads)
    try:
        stage = resolve_stage(args.stage, args.schedule, args.set)
        init = args.init if args.init is not None else default_init(stage, args.out)
        vocabulary = None if args.vocabulary is None else read_vocabulary(args.vocabulary)
    except (KeyError, ValueError, FileNotFoundError) as error:
        return fail(error.args[0] if error.args else error)
    worlds = [root for root in roots if (root / "world.json").is_file()]
    if worlds and not stage.name.endswith("-world"):  # a hint only: the stage stays as named
        note(f"{worlds[0]} is a concept world; its stages are {stage.name}-world etc. (--schedule world)")
    distils = stage.targets == "teacher"  # a ground-truth stage (Stage 3) reads no teacher
    if distils and args.teacher is None and not stage.name.endswith("-world") and not args.teacher_cache:
        # The shipped teacher is the concept world's (1.8M parameters, coloured shapes): distilling
        # it on real images runs but teaches nothing a user wants.
        warn(
            f"no --teacher: {stage.name} distils the shipped concept-world teacher, not SAM 3 "
            "(give --teacher DIR, SAM 3 in its hub layout, for the real job)"
        )
    options = RunOptions(
        data=data,
        out=args.out,
        teacher=teacher_or_shipped(args.teacher),
        init=init,
        allow_partial=args.allow_partial,
        resume=args.resume,
        device=args.device,
        cache_targets=not args.no_cache,
        progress=not args.quiet,
        step_pause=args.pause,
        tensorboard=not args.no_tensorboard,
        limit=args.limit,
        pretrained_backbone=args.pretrained_backbone,
        pretrained_text=args.pretrained_text,
        vocabulary=vocabulary,
        teacher_cache=args.teacher_cache,
    )
    if args.debug:
        stage = replace(stage, checkpoint_every=2, log_every=1, prompt_draws=1)
        options.max_steps = 3
        options.limit = options.limit or 3 * stage.batch_size * stage.grad_accum
    print(
        f"stage {stage.name}: student {stage.student} at {stage.resolution} px, {stage.epochs} epoch(s), "
        f"lr {stage.learning_rate:g}, losses {', '.join(stage.losses.active())}"
    )
    summary = distill(stage, options)  # bad data or --init: one line, exit 2 (sam3spec.cli.errors)
    print(
        f"done: {summary['steps']} steps, {summary['images_per_second']:.1f} images/s; "
        f"final weights in {args.out / 'final'}"
    )
    return 0


# --- pipeline ------------------------------------------------------------------------------------


def add_pipeline_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, default=Path("runs/concept-world"))
    parser.add_argument("--images", type=int, default=600, help="concept-world images (20%% held out)")
    parser.add_argument("--teacher", default=None, help="teacher folder (default: the shipped one)")
    parser.add_argument("--eval-limit", type=int, default=None, help="first N held-out images only")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--quiet", action="store_true")
    add_set_option(
        parser,
        "override a pipeline field, e.g. phase1.epochs=3 or phase2.losses.presence=4 (a longer schedule "
        "than the main job's; stage3=null stops after Phase 2)",
    )
    parser.set_defaults(func=run_pipeline)


def run_pipeline(args: argparse.Namespace) -> int:
    from sam3spec.config import override
    from sam3spec.teacher.layout import TeacherLoadError
    from sam3spec.world.pipeline import PipelineConfig, run_pipeline, side_by_side

    set_threads(args.threads)
    config = PipelineConfig(images=args.images, teacher=args.teacher, eval_limit=args.eval_limit)
    try:
        config = override(config, parse_overrides(args.set)) if args.set else config
    except (KeyError, ValueError, TypeError) as error:
        return fail(f"--set: {error}")
    try:
        record = run_pipeline(args.out, config, progress=not args.quiet)
    except TeacherLoadError as error:
        return fail(f"no teacher to distil from: {error}")
    metrics = json.loads((args.out / "metrics.json").read_text())
    print(side_by_side(metrics), end="")
    steps = ", ".join(f"{k} {v:.0f} s" for k, v in record["seconds"].items())
    print(f"pipeline: {record['total_seconds']:.0f} s ({steps}); metrics in {args.out / 'metrics.json'}")
    return 0


# --- qat -----------------------------------------------------------------------------------------


def add_qat_arguments(parser: argparse.ArgumentParser) -> None:
    from sam3spec.quant.schemes import RECIPES

    parser.add_argument("--model", type=Path, required=True, help="student checkpoint directory")
    parser.add_argument(
        "--data",
        "--world",
        dest="data",
        type=Path,
        required=True,
        help="a data root with SA-Co train files (e.g. a concept world)",
    )
    parser.add_argument("--recipe", default="8da4w", help=f"one of {', '.join(RECIPES)}")
    parser.add_argument(
        "--out",
        type=Path,
        required=True,
        help="output directory (the converted model; the training run in OUT/training)",
    )
    parser.add_argument("--steps", type=int, default=200, help="optimizer steps")
    parser.add_argument("--lr", type=float, default=1e-5, help="learning rate (the plan: 1e-5)")
    parser.add_argument("--batch-size", type=int, default=4, help="samples per step")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(func=run_qat)


def run_qat(args: argparse.Namespace) -> int:
    import torch

    from sam3spec.cli.quantize import checked_student, write_quantized
    from sam3spec.quant.qat import QatOptions, train_qat

    try:
        student = checked_student(args.model, args.recipe)
    except ValueError as error:
        return fail(error)
    options = QatOptions(
        out=args.out / "training",
        steps=args.steps,
        learning_rate=args.lr,
        batch_size=args.batch_size,
        progress=not args.quiet,
    )
    if (options.out / "checkpoints").exists():
        return fail(f"{options.out} already holds a QAT run; use another --out")
    result = train_qat(student, args.data, args.recipe, options)
    float_state = result.pop("float_state")
    write_quantized(
        student,
        {
            "recipe": args.recipe,
            "mode": "qat",
            "steps": args.steps,
            "lr": args.lr,
            "plan": result["plan"],
            "losses": result["losses"],
            "packed_bytes": result["packed_bytes"],
        },
        args.out,
        float_state,
    )
    torch.save(student.state_dict(), args.out / "quantized_state.pt")
    print(
        f"QAT done in {result['seconds']:.0f} s; wrote {args.out} (QAT-trained float weights + quantized_state.pt; "
        f"the training run in {options.out})"
    )
    return 0
