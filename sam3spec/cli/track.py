"""``sam3spec track``: segment and track a prompted concept through a video."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from sam3spec.cli.common import note, positive_int, probability, replaceable_output
from sam3spec.cli.errors import UsageError
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
        "--out",
        required=True,
        type=Path,
        help="output folder (overlay.mp4, masks/, tracks.json), written atomically; an earlier output is replaced",
    )
    add_model_arguments(parser)
    parser.add_argument(
        "--threshold", type=probability, default=0.5, help="instance score threshold in [0, 1] (default 0.5)"
    )
    parser.add_argument(
        "--memory-every",
        type=positive_int,
        default=4,
        help="push every k-th frame into the memory (default 4: SA-V's annotation spacing)",
    )
    parser.add_argument("--no-memory", action="store_true", help="decode every frame without memory")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
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
    """Track; exit 0 (also when nothing is found: an empty but valid output), 2 on bad input.

    The output folder is written atomically (a temporary sibling renamed at the end): an
    interrupted run leaves nothing, or the previous output."""
    if not args.prompt.strip():  # the cheap checks before torch loads
        raise UsageError("--prompt is empty; expected a noun phrase, e.g. --prompt 'red circle'")
    if not args.video.exists():
        raise UsageError(f"video {args.video}: no such file or folder")
    replaceable_output(args.out, "tracks.json")
    from tqdm import tqdm

    from sam3spec.atomic import atomic_directory
    from sam3spec.video.frames import EmptyVideoError, read_video, video_fps
    from sam3spec.video.outputs import overlay, write_overlay_mp4, write_sav_masks
    from sam3spec.video.predictor import VideoPredictor

    model = load_video_model(args)
    predictor = VideoPredictor(model, args.threshold, not args.no_memory, args.memory_every)
    predictor.start(text=args.prompt)
    name = args.video.stem if args.video.is_file() else args.video.name
    frames, tracks, skipped = [], {}, []
    with atomic_directory(args.out) as out:
        (out / "masks" / name).mkdir(parents=True)
        for video_frame in tqdm(read_video(args.video), desc="tracking", unit=" frames", disable=args.quiet):
            result = predictor.step(video_frame.image)
            if result.skipped:
                skipped.append(video_frame.index)
                continue
            write_sav_masks(out / "masks", name, f"{video_frame.index:05d}", result.masks, result.object_ids)
            frames.append(overlay(video_frame.image, result.masks, result.object_ids))
            for object_id, score in zip(result.object_ids.tolist(), result.scores.tolist(), strict=True):
                tracks.setdefault(object_id, []).append([video_frame.index, round(score, 4)])
        if not frames:
            raise EmptyVideoError(f"video {args.video}: no frame could be decoded")
        write_overlay_mp4(out / "overlay.mp4", frames, video_fps(args.video))
        objects = {str(k): {"frames": len(v), "first": v[0][0], "last": v[-1][0]} for k, v in tracks.items()}
        summary = {
            "video": str(args.video),
            "prompt": args.prompt,
            "frames": len(frames) + len(skipped),
            "skipped_frames": skipped,
            "objects": objects,
        }
        (out / "tracks.json").write_text(json.dumps(summary, indent=1) + "\n", encoding="utf-8")
    found = f"{len(tracks)} object id(s)" if tracks else f"no instance of {args.prompt!r} found"
    print(
        f"{len(frames)} frames, {found}, {len(skipped)} skipped -> {args.out}/overlay.mp4, "
        f"{args.out}/masks/{name}/, {args.out}/tracks.json"
    )
    return 0
