"""Frames of a video for streaming: an MP4 (PyAV, decoded packet by packet) or a folder of JPEG /
PNG frames (SA-V's ``JPEGImages_24fps/<video>/`` layout).

A frame that cannot be decoded in the middle of a video is skipped with a warning (and reported
as ``None`` so the caller keeps frame numbers aligned); a video with no decodable frame at all is
an error naming the file.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

FRAME_SUFFIXES = (".jpg", ".jpeg", ".png")


class EmptyVideoError(ValueError):
    """A video without any decodable frame."""


@dataclass
class VideoFrame:
    """One position of the video: ``image`` ``[H, W, 3]`` uint8 RGB, or None when it was corrupt."""

    index: int
    image: np.ndarray | None
    name: str


def frame_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in FRAME_SUFFIXES)


def _folder_frames(folder: Path) -> Iterator[VideoFrame]:
    from sam3spec.data.files import read_image
    from sam3spec.data.image_io import ImageReadError

    files = frame_files(folder)
    if not files:
        raise EmptyVideoError(f"{folder}: no frames (expected *.jpg / *.png files)")
    for index, path in enumerate(files):
        try:  # the project's image reader (16-bit, palette, alpha), at the stored size
            array = read_image(path)
        except ImageReadError as error:
            warnings.warn(f"{path}: corrupt frame {index} skipped ({error})", stacklevel=2)
            array = None
        yield VideoFrame(index, array, path.stem)


def _mp4_frames(path: Path) -> Iterator[VideoFrame]:
    import av

    index = 0
    try:
        container = av.open(str(path))
    except (av.error.FFmpegError, OSError) as error:
        raise EmptyVideoError(f"{path}: not a readable video ({error})") from error
    with container:
        if not container.streams.video:
            raise EmptyVideoError(f"{path}: the video has zero frames (no video stream)")
        stream = container.streams.video[0]
        for packet in container.demux(stream):
            try:
                decoded = packet.decode()
            except av.error.FFmpegError as error:  # a damaged packet: that frame only
                warnings.warn(f"{path}: corrupt frame {index} skipped ({error})", stacklevel=2)
                yield VideoFrame(index, None, f"{index:05d}")
                index += 1
                continue
            for frame in decoded:
                yield VideoFrame(index, frame.to_ndarray(format="rgb24"), f"{index:05d}")
                index += 1
    if index == 0:
        raise EmptyVideoError(f"{path}: the video has zero frames")


def read_video(path: str | Path) -> Iterator[VideoFrame]:
    """Stream the frames of ``path`` (an MP4 / any FFmpeg container, or a folder of frames).

    Raises:
        FileNotFoundError: ``path`` does not exist.
        EmptyVideoError: no frame at all (raised when the stream ends, or at once for a folder).
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"video {path} not found")
    if path.is_dir():
        yield from _folder_frames(path)
    else:
        yield from _mp4_frames(path)


def video_fps(path: str | Path, default: float = 24.0) -> float:
    """Frame rate of an MP4 (``default`` for a frame folder or an unknown rate)."""
    path = Path(path)
    if path.is_dir():
        return default
    import av

    try:
        with av.open(str(path)) as container:
            rate = container.streams.video[0].average_rate if container.streams.video else None
            return float(rate) if rate else default
    except (av.error.FFmpegError, OSError):
        return default
