"""``sam3spec train video``: train only a student's video memory (resampler + memory attention).

The stage is named (``video``: the plan's, SA-V masklets prompted by their first visible box;
``video-world``: the concept world's, phrases from ``world.json``); nothing in the data folder
picks it.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from sam3spec.cli.common import fail, note


def add_video_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data",
        "--world",
        dest="data",
        required=True,
        type=Path,
        help="SA-V train videos: a folder as released (sav_train/sav_NNN/sav_*.mp4 + sav_*_manual.json) "
        "or a data root such as a concept world (its sav/train)",
    )
    parser.add_argument("--out", required=True, type=Path, help="run folder")
    parser.add_argument(
        "--stage",
        required=True,
        help="the video stage, by name: video (the plan's: seed student, 504 px, each SA-V masklet "
        "prompted by its first visible box) or video-world (the concept world's: tiny student, "
        "phrases from world.json)",
    )
    parser.add_argument("--init", type=Path, default=None, help="student checkpoint to start from")
    parser.add_argument(
        "--allow-partial",
        action="store_true",
        help="load what fits of an --init checkpoint made for another student (default: an error)",
    )
    parser.add_argument("--max-steps", type=int, default=None)
    parser.add_argument("--limit", type=int, default=None, help="first N videos only")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--epochs", type=int, default=None, help="override the stage's epochs")
    parser.add_argument(
        "--context",
        choices=("student", "teacher_cache"),
        default=None,
        help="override the stage's context source (video-world: student; video: teacher_cache)",
    )
    parser.add_argument(
        "--teacher-cache",
        type=Path,
        default=None,
        help="teacher cache folder (`sam3spec teacher cache`) for context_source teacher_cache",
    )
    parser.add_argument(
        "--resume", action="store_true", help="continue from the run folder's latest checkpoint"
    )
    parser.set_defaults(func=run_video)


def run_video(args: argparse.Namespace) -> int:
    """Train the memory; exit 0, 2 when the stage, the data, the ``--init`` checkpoint, the context
    options or the teacher cache do not fit (one line naming what and why)."""
    from sam3spec.data.sources import video_training_folder

    video_training_folder(args.data)  # before torch loads: one line, exit 2
    from dataclasses import replace

    import sam3spec.world.stages  # noqa: F401  (registers the concept-world video stage)
    from sam3spec.distill.options import RunOptions
    from sam3spec.distill.registry import get_stage
    from sam3spec.distill.trainer import distill
    from sam3spec.video.stage import VideoStage
    from sam3spec.video.teacher_context import TeacherContextError

    if args.init is None:
        note("no --init given; training the memory of a randomly initialised student (smoke tests only)")
    try:
        stage = get_stage(args.stage)
    except KeyError as error:
        return fail(error.args[0])
    if not isinstance(stage, VideoStage):
        return fail(f"{args.stage!r} is not a video stage; image stages run with `sam3spec train stage`")
    phrases = {}  # the stage names its prompt; a world.json alone never picks it (no phrases: refused)
    if stage.prompt == "phrase" and (args.data / "world.json").is_file():
        from sam3spec.world.manifest import object_phrases

        phrases = object_phrases(args.data)
    if args.epochs is not None:
        stage = replace(stage, stage=replace(stage.stage, epochs=args.epochs))
    if args.context is not None:
        stage = replace(stage, context_source=args.context)
    options = RunOptions(
        data=args.data,
        out=args.out,
        init=args.init,
        allow_partial=args.allow_partial,
        max_steps=args.max_steps,
        limit=args.limit,
        threads=args.threads,
        resume=args.resume,
        phrases=phrases,
        teacher_cache=args.teacher_cache,
    )
    print(
        f"stage {stage.name}: student {stage.stage.student} at {stage.stage.resolution} px, "
        f"{stage.prompt} prompts, context from {stage.context_source}, {stage.stage.epochs} epoch(s) of "
        f"batch {stage.stage.batch_size} x {stage.stage.grad_accum}"
    )
    try:
        summary = distill(stage, options)  # bad data or --init: one line, exit 2 (sam3spec.cli.errors)
    except TeacherContextError as error:
        return fail(error)
    print(json.dumps(summary, indent=1))
    return 0
