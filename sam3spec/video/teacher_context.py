"""Teacher context for the video stage: the context frames' level-3 maps from a teacher cache.

``context_source="teacher_cache"`` (the plan-scale ``VIDEO`` stage, or ``video-world`` with
``--context teacher_cache``): the T context frames of a sample are the teacher's cached FPN maps
(``sam3spec teacher cache``: per video ``video:<id>`` -> ``fpn.<video_level>`` ``[F, C, h, w]``
fp16 of the annotated frames) instead of the frozen student's own. The query frame still goes
through the frozen student (:class:`~sam3spec.video.data.FeatureBank`).

Rules (each failure is a :class:`TeacherContextError` naming the stage / video / cache):

* the cache's video level must be the student's ``memory.context_level`` (both 3: SAM 3's and the
  student's coarsest FPN level);
* the teacher's channel width must equal the student's width (the resampler's input): SAM 3's
  level 3 is 256 wide, the seed preset's hidden width. No adapter is added: a trainable adapter
  would exist only in training, while at inference the memory reads the student's own maps;
* the cached frame indices must be the annotated frames the bank uses;
* a different spatial size is resized to the student's grid (:func:`to_student_grid`), because
  the teacher may run at another resolution (SAM 3 at 1008 px: level 3 is 36 x 36; at 504 px
  18 x 18; the seed student at 504 px: 16 x 16).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
import torch.nn.functional as F


class TeacherContextError(ValueError):
    """A teacher cache that cannot serve as the video stage's context (the message says why)."""


def to_student_grid(maps: torch.Tensor, grid: tuple[int, int], frame_size: tuple[int, int]) -> torch.Tensor:
    """Teacher maps of whole frames placed on the student's letterboxed grid.

    The teacher stretches a frame to its square input (``HFTeacher.preprocess``), the student
    letterboxes it (longer side to the input size, padding bottom / right). So the teacher's map
    is resized (bilinear; antialiased, as the teacher's own input resize, because SAM 3's 36 x 36
    map shrinks) onto the grid cells that hold the frame, and the padding cells are zero (the
    teacher saw no padding). Square frames (the concept world's) fill the whole grid.

    Args:
        maps: ``[F, C, h, w]`` teacher maps (any float dtype).
        grid: ``(h3, w3)`` the student's level-3 grid.
        frame_size: ``(H, W)`` of the video frames, pixels.

    Returns:
        ``[F, C, h3, w3]`` float32.
    """
    height, width = frame_size
    longest = max(height, width)
    content = (max(1, round(grid[0] * height / longest)), max(1, round(grid[1] * width / longest)))
    maps = maps.float()
    if tuple(maps.shape[-2:]) != content:
        maps = F.interpolate(maps, size=content, mode="bilinear", align_corners=False, antialias=True)
    if content == tuple(grid):
        return maps
    return F.pad(maps, (0, grid[1] - content[1], 0, grid[0] - content[0]))


def attach_teacher_context(bank, cache_dir: str | Path, level: int, width: int, stage: str) -> dict:
    """Give every video of ``bank`` its context maps from the teacher cache in ``cache_dir``.

    Sets ``record.context`` ``[K, C, h3, w3]`` fp16 (K annotated frames, the student's level-3
    grid) on each :class:`~sam3spec.video.data.VideoRecord`; ``FeatureBank.batch`` then builds the
    context slots from it.

    Args:
        bank: a :class:`~sam3spec.video.data.FeatureBank`.
        cache_dir: a finished teacher cache folder.
        level: the student's ``memory.context_level``.
        width: the student's context width (``config.hidden``: the resampler's input width).
        stage: stage name, for messages.

    Returns:
        What was attached: cache folder, video level, teacher width, teacher and student grids,
        whether maps were resized.
    """
    from sam3spec.teacher.cache import TeacherCache

    cache_dir = Path(cache_dir)
    meta_path = cache_dir / "cache.json"
    if not meta_path.is_file():
        raise TeacherContextError(
            f"stage {stage!r}: {meta_path} not found: {cache_dir} is not a teacher cache "
            "(make one with `sam3spec teacher cache --data WORLD --out DIR`)"
        )
    video_level = int(json.loads(meta_path.read_text())["options"]["video_level"])
    if video_level != level:
        raise TeacherContextError(
            f"stage {stage!r}: teacher cache {cache_dir} stores video level {video_level}, "
            f"the student's memory reads level {level} (rerun the cache with --video-level {level})"
        )
    try:
        cache = TeacherCache(cache_dir)
    except FileNotFoundError as error:
        raise TeacherContextError(f"stage {stage!r}: {error}") from error
    info = {
        "teacher_cache": str(cache_dir),
        "video_level": video_level,
        "teacher_width": None,
        "teacher_grid": None,
        "student_grid": None,
        "resized": False,
    }
    for record in bank.records:
        key = f"video:{record.video_id}"
        if key not in cache.index["items"]:
            raise TeacherContextError(
                f"stage {stage!r}: video {record.video_id} is not in the teacher cache "
                f"{cache_dir} (cache the same data, without a --limit that leaves it out)"
            )
        description = cache.describe(key)
        if "skipped" in description:
            raise TeacherContextError(
                f"stage {stage!r}: the teacher cache {cache_dir} skipped video "
                f"{record.video_id}: {description['skipped']}"
            )
        if list(description["frames"]) != list(record.frames):
            raise TeacherContextError(
                f"stage {stage!r}: video {record.video_id}: the teacher cache {cache_dir} holds "
                f"frames {description['frames']}, the annotated frames are {record.frames}"
            )
        maps = cache[key][f"fpn.{level}"]  # [F, C, h, w] fp16
        grid = tuple(record.levels[level].shape[-2:])
        if maps.shape[1] != width:
            raise TeacherContextError(
                f"stage {stage!r}: teacher cache {cache_dir} level-{level} features are "
                f"{maps.shape[1]} wide, the student's context width is {width}; the memory must "
                "read the student's own features at inference, so no adapter is added: use a "
                "teacher and student of the same width"
            )
        if maps.shape[0] != len(record.frames):
            raise TeacherContextError(
                f"stage {stage!r}: video {record.video_id}: {maps.shape[0]} cached maps for "
                f"{len(record.frames)} frames in {cache_dir}"
            )
        record.context = to_student_grid(maps, grid, record.size).half()
        info.update(
            teacher_width=int(maps.shape[1]), teacher_grid=list(maps.shape[-2:]), student_grid=list(grid)
        )
        info["resized"] = info["resized"] or tuple(maps.shape[-2:]) != grid
    return info
