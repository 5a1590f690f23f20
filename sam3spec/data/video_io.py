"""MP4 encoding and decoding with PyAV, failures translated to :class:`DataFault`.

Encoding is byte-reproducible: libx264 with one thread (x264's output depends on its thread
count, which otherwise follows the machine's cores) and no wall-clock metadata (the mp4 muxer
only writes ``creation_time`` when asked). The bytes still depend on the libx264 / FFmpeg build
bundled with PyAV, so "same seed, same bytes" holds for one PyAV version.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import av
import numpy as np

from sam3spec.data.faults import (
    EMPTY_VIDEO,
    MISSING_FILE,
    SIZE_MISMATCH,
    UNREADABLE_VIDEO,
    DataFault,
    Problem,
)


def _codec_name() -> str:
    return "libx264" if "libx264" in av.codecs_available else "mpeg4"


def encode_mp4(path: str | Path, frames: np.ndarray, fps: int = 24, crf: int = 18) -> None:
    """Write frames as an H.264 (yuv420p) MP4.

    Args:
        path: output file.
        frames: ``[T, H, W, 3]`` uint8 RGB, H and W even (yuv420p subsamples chroma by 2).
        fps: frame rate.
        crf: x264 constant rate factor (lower = better quality).
    """
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"frames must be [T, H, W, 3] uint8, got {frames.shape} {frames.dtype}")
    height, width = frames.shape[1:3]
    if height % 2 or width % 2:
        raise ValueError(f"frame size must be even for yuv420p, got {height}x{width}")
    codec = _codec_name()
    with av.open(str(path), mode="w", format="mp4") as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.codec_context.thread_count = 1
        if codec == "libx264":
            stream.options = {"crf": str(crf), "preset": "veryfast", "threads": "1"}
        container.start_encoding()
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def write_empty_mp4(path: str | Path, height: int = 64, width: int = 64, fps: int = 24) -> None:
    """Write a valid MP4 container whose video stream has zero frames (a fault fixture)."""
    with av.open(str(path), mode="w", format="mp4") as container:
        stream = container.add_stream(_codec_name(), rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        container.start_encoding()


def read_frames(path: str | Path, indices: Sequence[int] | None = None) -> np.ndarray:
    """Decode frames of a video, stopping after the last one asked for.

    Args:
        path: an MP4 (or any container FFmpeg reads).
        indices: frame indices to keep (any order, repeats allowed); None keeps every frame.

    Returns:
        ``[K, H, W, 3]`` uint8 RGB in the order of ``indices``.

    Raises:
        DataFault: ``missing_file``; ``unreadable_video`` (not a video, corrupt stream);
            ``empty_video`` (no video stream or no frame); ``size_mismatch`` (an index beyond
            the last decoded frame, i.e. the annotation outlives the video).
    """
    path = Path(path)
    if not path.exists():
        raise DataFault(Problem(str(path), MISSING_FILE, detail="video not found"))
    wanted = None if indices is None else set(int(i) for i in indices)
    last = None if wanted is None else max(wanted, default=-1)
    kept: dict[int, np.ndarray] = {}
    count = 0
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise DataFault(Problem(str(path), EMPTY_VIDEO, detail="no video stream"))
            for frame in container.decode(video=0):
                if wanted is None or count in wanted:
                    kept[count] = frame.to_ndarray(format="rgb24")
                count += 1
                if last is not None and count > last:
                    break
    except DataFault:
        raise
    except (av.error.FFmpegError, OSError, ValueError) as error:
        raise DataFault(Problem(str(path), UNREADABLE_VIDEO, detail=str(error))) from error
    if count == 0:
        raise DataFault(Problem(str(path), EMPTY_VIDEO, detail="zero decodable frames"))
    if indices is None:
        return np.stack([kept[i] for i in range(count)])
    missing = sorted(wanted - kept.keys())
    if missing:
        raise DataFault(
            Problem(
                str(path), SIZE_MISMATCH, detail=f"frame {missing[0]} asked for, video has {count} frames"
            )
        )
    return np.stack([kept[int(i)] for i in indices])
