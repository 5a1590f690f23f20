"""``sam3spec track``: segment and track a prompted concept through a video."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from sam3spec.cli.common import fail, note
from sam3spec.config import TINY_PRESET


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "track",
        help="segment and track a prompted concept through a video",
        description="Stream a video through the video predictor (fixed-size memory) and write an overlay "
        "MP4, per-object masks in SA-V's PNG layout and tracks.json.",
    )
    parser.add_argument("video", type=Path, help="an MP4 (any FFmpeg container) or a folder of frames")
    parser.add_argument("--prompt", required=True, help="noun phrase, e.g. 'red circle'")
    parser.add_argument(
        "--out", required=True, type=Path, help="output folder (overlay.mp4, masks/, tracks.json)"
    )
    add_model_arguments(parser)
    parser.add_argument("--threshold", type=float, default=0.5, help="instance score threshold (default 0.5)")
    parser.add_argument(
        "--memory-every",
        type=int,
        default=4,
        help="push every k-th frame into the memory (default 4: SA-V's annotation spacing)",
    )
    parser.add_argument("--no-memory", action="store_true", help="decode every frame without memory")
    parser.set_defaults(func=run)


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--model", type=Path, default=None, help="student checkpoint folder (default: random weights)"
    )
    parser.add_argument(
        "--memory", type=Path, default=None, help="video-memory checkpoint folder (train video's final/)"
    )
    parser.add_argument("--preset", default=TINY_PRESET, help="preset for random weights")


def load_video_model(args: argparse.Namespace):
    """The student of ``--model`` (or a random ``--preset``) with ``--memory`` loaded onto it."""
    from sam3spec.checkpoint import load_student
    from sam3spec.models.build import build_student
    from sam3spec.video.checkpoint import load_memory

    if args.model is not None:
        model = load_student(args.model)
    else:
        note(f"no --model given; using randomly initialised weights of preset {args.preset!r}")
        model = build_student(args.preset)
    if args.memory is not None:
        load_memory(model, args.memory)
    return model.eval()


def run(args: argparse.Namespace) -> int:
    """Track; exit 0, 2 on bad input (missing / empty video, bad prompt)."""
    from sam3spec.video.frames import EmptyVideoError, read_video, video_fps
    from sam3spec.video.outputs import overlay, write_overlay_mp4, write_sav_masks
    from sam3spec.video.predictor import VideoPredictor

    try:
        model = load_video_model(args)
        predictor = VideoPredictor(model, args.threshold, not args.no_memory, args.memory_every)
        predictor.start(text=args.prompt)
        name = args.video.stem if args.video.is_file() else args.video.name
        frames, tracks, skipped = [], {}, []
        for video_frame in read_video(args.video):
            result = predictor.step(video_frame.image)
            if result.skipped:
                skipped.append(video_frame.index)
                continue
            write_sav_masks(
                args.out / "masks", name, f"{video_frame.index:05d}", result.masks, result.object_ids
            )
            frames.append(overlay(video_frame.image, result.masks, result.object_ids))
            for object_id, score in zip(result.object_ids.tolist(), result.scores.tolist(), strict=True):
                tracks.setdefault(object_id, []).append([video_frame.index, round(score, 4)])
        if not frames:
            raise EmptyVideoError(f"{args.video}: no frame could be decoded")
        write_overlay_mp4(args.out / "overlay.mp4", frames, video_fps(args.video))
    except (FileNotFoundError, EmptyVideoError, ValueError) as error:
        return fail(error)
    objects = {str(k): {"frames": len(v), "first": v[0][0], "last": v[-1][0]} for k, v in tracks.items()}
    summary = {
        "video": str(args.video),
        "prompt": args.prompt,
        "frames": len(frames) + len(skipped),
        "skipped_frames": skipped,
        "objects": objects,
    }
    (args.out / "tracks.json").write_text(json.dumps(summary, indent=1) + "\n", encoding="utf-8")
    print(
        f"{len(frames)} frames, {len(tracks)} object ids, {len(skipped)} skipped -> {args.out}/overlay.mp4, "
        f"{args.out}/masks/{name}/"
    )
    return 0
