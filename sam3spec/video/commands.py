"""CLI: ``sam3spec track VIDEO --prompt P --out DIR`` and ``sam3spec video distill|eval``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    track = subparsers.add_parser("track", help="segment and track a prompted concept through a video")
    track.add_argument("video", type=Path, help="an MP4 (any FFmpeg container) or a folder of frames")
    track.add_argument("--prompt", required=True, help="noun phrase, e.g. 'red circle'")
    track.add_argument("--out", required=True, type=Path, help="output folder (overlay.mp4, masks/, tracks.json)")
    _model_arguments(track)
    track.add_argument("--threshold", type=float, default=0.5, help="instance score threshold (default 0.5)")
    track.add_argument("--memory-every", type=int, default=4,
                       help="push every k-th frame into the memory (default 4: SA-V's annotation spacing)")  # fmt: skip
    track.add_argument("--no-memory", action="store_true", help="decode every frame without memory")
    track.set_defaults(func=run_track)

    video = subparsers.add_parser("video", help="video memory: distillation and evaluation")
    commands = video.add_subparsers(dest="video_command", required=True)
    distill = commands.add_parser("distill", help="train only the memory (resampler + memory attention)")
    distill.add_argument("--world", required=True, type=Path, help="concept world with SA-V videos")
    distill.add_argument("--out", required=True, type=Path, help="run folder")
    distill.add_argument("--stage", default="video-world", help="video stage (default video-world)")
    distill.add_argument("--init", type=Path, default=None, help="student checkpoint to start from")
    distill.add_argument("--max-steps", type=int, default=None)
    distill.add_argument("--limit", type=int, default=None, help="first N videos only")
    distill.add_argument("--threads", type=int, default=None)
    distill.add_argument("--epochs", type=int, default=None, help="override the stage's epochs")
    distill.add_argument("--context", choices=("student", "teacher_cache"), default=None,
                         help="override the stage's context source (video-world: student; video: teacher_cache)")
    distill.add_argument("--teacher-cache", type=Path, default=None,
                         help="teacher cache folder (`sam3spec teacher cache`) for context_source teacher_cache")
    distill.set_defaults(func=run_distill)
    evaluate = commands.add_parser("eval", help="J&F on the world's SA-V val split, with and without memory")
    evaluate.add_argument("--world", required=True, type=Path)
    evaluate.add_argument("--out", required=True, type=Path)
    _model_arguments(evaluate)
    evaluate.add_argument("--threshold", type=float, default=0.5)
    evaluate.add_argument("--limit", type=int, default=None, help="first N val videos only")
    evaluate.add_argument("--select", choices=("threshold", "top1"), default="threshold",
                          help="object mask: union of instances over --threshold, or the best instance per frame")
    evaluate.set_defaults(func=run_eval)


def _model_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", type=Path, default=None, help="student checkpoint folder (default: random weights)")
    parser.add_argument("--memory", type=Path, default=None, help="video-memory checkpoint folder (video distill's final/)")
    parser.add_argument("--preset", default="efficientsam3-tiny", help="preset for random weights")


def load_video_model(args: argparse.Namespace):
    """The student of ``--model`` (or a random ``--preset``) with ``--memory`` loaded onto it."""
    from sam3spec.checkpoint import load_student
    from sam3spec.models.student import build_student
    from sam3spec.video.checkpoint import load_memory

    if args.model is not None:
        model = load_student(args.model)
    else:
        print(f"note: no --model given; using randomly initialised weights of preset {args.preset!r}", file=sys.stderr)
        model = build_student(args.preset)
    if args.memory is not None:
        load_memory(model, args.memory)
    return model.eval()


def run_track(args: argparse.Namespace) -> int:
    """Track; exit 0, 2 on bad input (missing / empty video, bad prompt)."""
    from sam3spec.video.frames import EmptyVideoError, video_fps
    from sam3spec.video.outputs import overlay, write_overlay_mp4, write_sav_masks
    from sam3spec.video.predictor import VideoPredictor

    try:
        model = load_video_model(args)
        predictor = VideoPredictor(model, args.threshold, not args.no_memory, args.memory_every)
        predictor.start(text=args.prompt)
        name = args.video.stem if args.video.is_file() else args.video.name
        frames, tracks, skipped = [], {}, []
        from sam3spec.video.frames import read_video

        for video_frame in read_video(args.video):
            result = predictor.step(video_frame.image)
            if result.skipped:
                skipped.append(video_frame.index)
                continue
            write_sav_masks(args.out / "masks", name, f"{video_frame.index:05d}", result.masks, result.object_ids)
            frames.append(overlay(video_frame.image, result.masks, result.object_ids))
            for object_id, score in zip(result.object_ids.tolist(), result.scores.tolist(), strict=True):
                tracks.setdefault(object_id, []).append([video_frame.index, round(score, 4)])
        if not frames:
            raise EmptyVideoError(f"{args.video}: no frame could be decoded")
        write_overlay_mp4(args.out / "overlay.mp4", frames, video_fps(args.video))
    except (FileNotFoundError, EmptyVideoError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    summary = {"video": str(args.video), "prompt": args.prompt, "frames": len(frames) + len(skipped),
               "skipped_frames": skipped, "objects": {str(k): {"frames": len(v), "first": v[0][0], "last": v[-1][0]}
                                                      for k, v in tracks.items()}}  # fmt: skip
    (args.out / "tracks.json").write_text(json.dumps(summary, indent=1) + "\n", encoding="utf-8")
    print(f"{len(frames)} frames, {len(tracks)} object ids, {len(skipped)} skipped -> {args.out}/overlay.mp4, "
          f"{args.out}/masks/{name}/")  # fmt: skip
    return 0


def run_distill(args: argparse.Namespace) -> int:
    """Train the memory; exit 0, 2 when the context options or the teacher cache do not fit."""
    from dataclasses import replace

    from sam3spec.video.stage import get_video_stage
    from sam3spec.video.teacher_context import TeacherContextError
    from sam3spec.video.train import VideoRunOptions, distill_video

    if args.init is None:
        print("note: no --init given; training the memory of a randomly initialised student (smoke tests only)",
              file=sys.stderr)  # fmt: skip
    stage = get_video_stage(args.stage)
    if args.epochs is not None:
        stage = replace(stage, stage=replace(stage.stage, epochs=args.epochs))
    if args.context is not None:
        stage = replace(stage, context_source=args.context)
    try:
        summary = distill_video(stage, VideoRunOptions(args.world, args.out, args.init, args.max_steps, args.limit,
                                                       args.threads, teacher_cache=args.teacher_cache))  # fmt: skip
    except TeacherContextError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(json.dumps(summary, indent=1))
    return 0


def run_eval(args: argparse.Namespace) -> int:
    from sam3spec.video.evaluate import evaluate_memory

    result = evaluate_memory(load_video_model(args), args.world, args.out, args.threshold, args.limit, args.select)
    print(json.dumps(result.as_dict(), indent=1))
    return 0
