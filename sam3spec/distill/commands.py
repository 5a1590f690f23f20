"""CLI: ``sam3spec distill``, ``sam3spec pipeline``, ``sam3spec compare`` (registered by ``sam3spec.cli``).

Launch on several GPUs (or CPU processes) with torchrun; the same command runs on one device::

    torchrun --nproc_per_node 8 -m sam3spec.cli distill --stage phase1 --data /data/sa1b \\
        --teacher /models/sam3 --out runs/phase1
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def _parse_value(text: str):
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def resolve_stage(name: str, data: Path, schedule: str, changes: list[str]):
    """The stage to run: ``name``, its concept-world version for a world (``schedule`` auto/world),
    then ``--set key=value`` overrides (dotted paths, JSON values)."""
    from sam3spec.config import override
    from sam3spec.distill.data import is_concept_world
    from sam3spec.distill.registry import STAGES, get_stage

    world = schedule == "world" or (schedule == "auto" and is_concept_world(data))
    if world and not name.endswith("-world") and f"{name}-world" in STAGES:
        name = f"{name}-world"
    stage = get_stage(name)
    parsed = parse_overrides(changes)
    return override(stage, parsed) if parsed else stage


def parse_overrides(changes: list[str]) -> dict:
    """``["a.b=1", ...]`` (``--set``) -> ``{"a.b": 1}``, values parsed as JSON when they are JSON."""
    parsed = {}
    for item in changes:
        key, _, value = item.partition("=")
        if not _:
            raise ValueError(f"--set expects key=value, got {item!r}")
        parsed[key] = _parse_value(value)
    return parsed


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
        f"stage {stage.name!r} starts from {stage.init_from!r}, but {out.parent / stage.init_from.removesuffix('-world') / 'final'} "
        "does not exist; run that stage first or pass --init DIR"
    )


def run_distill(args: argparse.Namespace) -> int:
    import torch

    from sam3spec.distill.trainer import RunOptions, distill

    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        stage = resolve_stage(args.stage, args.data, args.schedule, args.set)
        init = args.init if args.init is not None else default_init(stage, args.out)
    except (KeyError, ValueError, FileNotFoundError) as error:
        print(f"error: {error.args[0] if error.args else error}", file=sys.stderr)
        return 2
    teacher = None if args.teacher in (None, "default") else args.teacher
    options = RunOptions(data=args.data, out=args.out, teacher=teacher, init=init, resume=args.resume,
                         device=args.device, cache_targets=not args.no_cache, progress=not args.quiet,
                         step_pause=args.pause, tensorboard=not args.no_tensorboard, limit=args.limit,
                         pretrained_backbone=args.pretrained_backbone, pretrained_text=args.pretrained_text)  # fmt: skip
    if args.debug:
        from dataclasses import replace

        stage = replace(stage, checkpoint_every=2, log_every=1, prompt_draws=1)
        options.max_steps = 3
        options.limit = options.limit or 3 * stage.batch_size * stage.grad_accum
    print(f"stage {stage.name}: student {stage.student} at {stage.resolution} px, {stage.epochs} epoch(s), "
          f"lr {stage.learning_rate:g}, losses {', '.join(stage.losses.active())}")  # fmt: skip
    summary = distill(stage, options)
    print(
        f"done: {summary['steps']} steps, {summary['images_per_second']:.1f} images/s; final weights in {args.out / 'final'}"
    )
    return 0


def run_pipeline_command(args: argparse.Namespace) -> int:
    import torch

    from sam3spec.distill.pipeline import PipelineConfig, run_pipeline, side_by_side

    if args.threads:
        torch.set_num_threads(args.threads)
    from sam3spec.config import override
    from sam3spec.teacher.loading import TeacherLoadError

    config = PipelineConfig(images=args.images, teacher=args.teacher, eval_limit=args.eval_limit)
    try:
        config = override(config, parse_overrides(args.set)) if args.set else config
    except (KeyError, ValueError, TypeError) as error:
        print(f"error: --set: {error}", file=sys.stderr)
        return 2
    try:
        record = run_pipeline(args.out, config, progress=not args.quiet)
    except TeacherLoadError as error:
        print(f"error: no teacher to distil from: {error}", file=sys.stderr)
        return 2
    metrics = json.loads((args.out / "metrics.json").read_text())
    print(side_by_side(metrics), end="")
    print(f"pipeline: {record['total_seconds']:.0f} s ({', '.join(f'{k} {v:.0f} s' for k, v in record['seconds'].items())}); "
          f"metrics in {args.out / 'metrics.json'}")  # fmt: skip
    return 0


def run_compare(args: argparse.Namespace) -> int:
    from sam3spec.checkpoint import load_student
    from sam3spec.distill.evaluate import StudentTeacherView, evaluate_models, write_metrics
    from sam3spec.distill.pipeline import side_by_side
    from sam3spec.teacher.loading import load_teacher

    teacher = None if args.teacher in (None, "default") else args.teacher
    models = {"teacher": load_teacher(teacher), "student": StudentTeacherView(load_student(args.student))}
    metrics = evaluate_models(models, args.world, args.limit)
    print(side_by_side(metrics), end="")
    if args.json:
        write_metrics(metrics, args.json)
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``distill``, ``pipeline`` and ``compare``."""
    distill = subparsers.add_parser("distill", help="run one distillation stage (phase1, phase2, ...)")
    distill.add_argument("--stage", required=True, help="phase1, phase2 (or phase1-world, phase2-world)")
    distill.add_argument("--data", required=True, type=Path, help="a concept world or an SA-1B folder")
    distill.add_argument(
        "--teacher", default=None, help="teacher folder, or 'default' (the shipped concept-world teacher)"
    )
    distill.add_argument("--out", required=True, type=Path, help="run directory")
    distill.add_argument(
        "--resume", action="store_true", help="continue from the run directory's latest checkpoint"
    )
    distill.add_argument("--debug", action="store_true", help="3 steps on a few samples (smoke test)")
    distill.add_argument(
        "--init",
        type=Path,
        default=None,
        help="student checkpoint to start from (default: the previous stage's final/)",
    )
    distill.add_argument("--schedule", choices=("auto", "mission", "world"), default="auto",
                         help="auto: the concept-world schedule when --data is a concept world")  # fmt: skip
    distill.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a stage field, e.g. epochs=2",
    )
    distill.add_argument("--device", default=None, help="cpu, cuda, mps (default: auto)")
    distill.add_argument(
        "--no-cache",
        action="store_true",
        help="run the teacher on every batch instead of caching its targets",
    )
    distill.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    distill.add_argument("--quiet", action="store_true", help="no progress bar")
    distill.add_argument(
        "--pretrained-backbone", type=Path, default=None, help="RepViT weights for a fresh student"
    )
    distill.add_argument(
        "--pretrained-text", type=Path, default=None, help="MobileCLIP weights for a fresh student"
    )
    distill.add_argument("--limit", type=int, default=None, help="use only the first N training samples")
    distill.add_argument("--no-tensorboard", action="store_true", help="no TensorBoard event files")
    distill.add_argument("--pause", type=float, default=0.0, help=argparse.SUPPRESS)  # tests: sleep per step
    distill.set_defaults(func=run_distill)

    pipeline = subparsers.add_parser(
        "pipeline", help="concept world -> teacher -> phase1 -> phase2 -> student vs teacher"
    )
    pipeline.add_argument("--out", type=Path, default=Path("runs/concept-world"))
    pipeline.add_argument("--images", type=int, default=600, help="concept-world images (20%% held out)")
    pipeline.add_argument("--teacher", default=None, help="teacher folder (default: the shipped one)")
    pipeline.add_argument("--eval-limit", type=int, default=None, help="first N held-out images only")
    pipeline.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    pipeline.add_argument("--quiet", action="store_true")
    pipeline.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a pipeline field, e.g. phase1.epochs=3 or phase2.losses.presence=4 (a longer "
        "schedule than the main job's)",
    )
    pipeline.set_defaults(func=run_pipeline_command)

    compare = subparsers.add_parser("compare", help="student vs teacher on a concept world's held-out split")
    compare.add_argument("--student", required=True, type=Path, help="student checkpoint directory")
    compare.add_argument("--world", required=True, type=Path)
    compare.add_argument("--teacher", default=None)
    compare.add_argument("--limit", type=int, default=None, help="first N held-out images only")
    compare.add_argument("--json", type=Path, default=None, help="also write metrics.json here")
    compare.set_defaults(func=run_compare)
