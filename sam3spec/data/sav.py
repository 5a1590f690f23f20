"""SA-V: videos with masklets annotated every 4th frame (6 fps of a 24 fps video).

Two layouts, both read here:

* train (``mp4``): ``sav_<id>.mp4`` + ``sav_<id>_manual.json`` whose ``masklet[k][n]`` is the RLE
  of object ``n`` at annotated frame ``k`` (video frame ``4k``); an absent object has an empty RLE.
* val / test (``frames``): ``JPEGImages_24fps/<video>/<frame:05d>.jpg`` and
  ``Annotations_6fps/<video>/<obj:03d>/<frame:05d>.png`` (one binary PNG per object and annotated
  frame, since objects may overlap).

A sample is a clip of ``context_frames`` annotated frames followed by one query frame.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from sam3spec.data import rle
from sam3spec.data.base import FaultTolerantDataset, Sample, subsample, to_image_tensor
from sam3spec.data.faults import (
    BAD_ANNOTATION,
    EMPTY_VIDEO,
    MALFORMED_RLE,
    SIZE_MISMATCH,
    DataFault,
    FaultLog,
    Problem,
)
from sam3spec.data.files import read_binary_mask, read_image, read_json
from sam3spec.data.transforms import boxes_from_masks
from sam3spec.data.video_io import read_frames

ANNOTATION_STRIDE = 4


@dataclass(frozen=True)
class SAVVideo:
    """Where one video's media and masks are (``mp4`` + ``manual``, or the two frame folders)."""

    video_id: str
    mp4: Path | None = None
    manual: Path | None = None
    frames_dir: Path | None = None
    masks_dir: Path | None = None


def find_videos(root: str | Path) -> list[SAVVideo]:
    """Every video under ``root``: the val layout if ``JPEGImages_24fps`` / ``Annotations_6fps``
    exist there, else ``sav_*.mp4`` / ``sav_*_manual.json`` stems (recursive; an mp4 without its
    JSON, or the reverse, is listed so the loader reports what is missing)."""
    root = Path(root)
    if (root / "Annotations_6fps").is_dir() or (root / "JPEGImages_24fps").is_dir():
        names = sorted(
            {
                p.name
                for d in ("JPEGImages_24fps", "Annotations_6fps")
                if (root / d).is_dir()
                for p in (root / d).iterdir()
                if p.is_dir()
            }
        )
        return [
            SAVVideo(n, frames_dir=root / "JPEGImages_24fps" / n, masks_dir=root / "Annotations_6fps" / n)
            for n in names
        ]
    stems = {p.parent / p.stem for p in root.rglob("sav_*.mp4")}
    stems |= {p.parent / p.name[: -len("_manual.json")] for p in root.rglob("sav_*_manual.json")}
    return [
        SAVVideo(s.name, mp4=s.with_name(s.name + ".mp4"), manual=s.with_name(s.name + "_manual.json"))
        for s in sorted(stems)
    ]


def read_manual(path: Path) -> tuple[list[list[Any]], int]:
    """Read and structurally check a ``_manual.json``; returns ``(masklet, num_objects)``."""
    record = read_json(path)
    masklet = record.get("masklet") if isinstance(record, dict) else None
    if not isinstance(masklet, list) or not all(isinstance(frame, list) for frame in masklet):
        raise DataFault(
            Problem(str(path), BAD_ANNOTATION, detail="'masklet' must be a list (frames) of lists (objects)")
        )
    objects = len(masklet[0]) if masklet else 0
    if any(len(frame) != objects for frame in masklet):
        raise DataFault(
            Problem(str(path), BAD_ANNOTATION, detail="annotated frames list different numbers of objects")
        )
    return masklet, objects


def decode_masklet(
    masklet: list[list[Any]], annotated: list[int], height: int, width: int, path: Path
) -> np.ndarray:
    """Masks of the given annotated frames, ``[K, N, H, W]`` bool; every problem listed."""
    objects = len(masklet[0]) if masklet else 0
    masks = np.zeros((len(annotated), objects, height, width), dtype=bool)
    problems = []
    for k, frame in enumerate(annotated):
        for n, entry in enumerate(masklet[frame]):
            where = f"frame {frame * ANNOTATION_STRIDE} object {n}"
            try:
                size = rle.validate(entry)
            except rle.MalformedRLE as error:
                problems.append(Problem(str(path), MALFORMED_RLE, where, str(error)))
                continue
            if size != (height, width):
                problems.append(
                    Problem(
                        str(path), SIZE_MISMATCH, where, f"mask {size[0]}x{size[1]}, video {height}x{width}"
                    )
                )
                continue
            masks[k, n] = rle.decode(entry)
    if problems:
        raise DataFault(problems)
    return masks


def _annotated_pngs(video: SAVVideo) -> tuple[list[Path], list[int]]:
    """Object folders and the sorted 24 fps indices of frames annotated for any object."""
    if video.masks_dir is None or not video.masks_dir.is_dir():
        raise DataFault(Problem(str(video.masks_dir), BAD_ANNOTATION, detail="annotation folder not found"))
    objects = sorted(p for p in video.masks_dir.iterdir() if p.is_dir())
    frames = sorted({int(p.stem) for o in objects for p in o.glob("*.png") if p.stem.isdigit()})
    return objects, frames


def check_video(video: SAVVideo) -> dict[str, int]:
    """Decode every frame and every annotation of one video (``verify``).

    Returns:
        ``{"frames", "annotated_frames", "masklets"}``.

    Raises:
        DataFault: every problem found.
    """
    if video.mp4 is not None:
        masklet, objects = read_manual(video.manual)
        frames = read_frames(video.mp4)
        if len(masklet) > -(-len(frames) // ANNOTATION_STRIDE):
            raise DataFault(
                Problem(
                    str(video.manual),
                    SIZE_MISMATCH,
                    detail=f"{len(masklet)} annotated frames, video has {len(frames)} frames",
                )
            )
        decode_masklet(masklet, list(range(len(masklet))), *frames.shape[1:3], video.manual)
        return {"frames": len(frames), "annotated_frames": len(masklet), "masklets": objects}
    objects, annotated = _annotated_pngs(video)
    images = sorted(video.frames_dir.glob("*.jpg")) if video.frames_dir and video.frames_dir.is_dir() else []
    if not images:
        raise DataFault(Problem(str(video.frames_dir), EMPTY_VIDEO, detail="no JPEG frames"))
    problems = []
    size = read_image(images[0]).shape[:2]
    for path in images[1:]:
        if read_image(path).shape[:2] != size:
            problems.append(Problem(str(path), SIZE_MISMATCH, detail="frame size differs from frame 0"))
    for obj in objects:
        for path in sorted(obj.glob("*.png")):
            if read_binary_mask(path).shape != size:
                problems.append(
                    Problem(str(path), SIZE_MISMATCH, detail=f"mask size differs from the frames {size}")
                )
    if problems:
        raise DataFault(problems)
    return {"frames": len(images), "annotated_frames": len(annotated), "masklets": len(objects)}


class SAVDataset(FaultTolerantDataset):
    """Clips of SA-V videos: ``context_frames`` annotated frames, then one query frame.

    The query is a random annotated frame with at least ``context_frames`` annotated frames
    before it (earlier ones are repeated when the video is shorter); clip frames are
    ``step`` annotated frames apart (step 1 = every 4th video frame).

    Sample keys (raw): ``frames`` ``[T+1, 3, H, W]`` uint8 (query last), ``masks``
    ``[T+1, N, H, W]`` bool, ``boxes_xyxy`` ``[T+1, N, 4]`` normalised (zeros where absent),
    ``visible`` ``[T+1, N]`` bool, ``object_ids`` ``[N]`` long, ``frame_indices`` ``[T+1]`` long
    (24 fps indices), ``phrase`` None, ``positive`` (any object visible in the query),
    ``video_id``, ``source`` ``"sav"``, ``original_size`` (H, W).

    Args:
        root: an SA-V train folder (mp4 + json) or a val / test folder (frames + PNGs).
        context_frames: T.
        step: annotated frames between clip frames.
        max_objects: keep at most this many objects per clip.
        transform, prompts, seed, fault_log: see :class:`FaultTolerantDataset`.
    """

    def __init__(
        self,
        root: str | Path,
        context_frames: int = 8,
        step: int = 1,
        max_objects: int | None = None,
        transform: Callable[[Sample], Sample] | None = None,
        prompts: Callable[[Sample, np.random.Generator], Sample] | None = None,
        seed: int = 0,
        fault_log: FaultLog | None = None,
    ) -> None:
        super().__init__(transform, prompts, seed, fault_log)
        if context_frames < 0 or step < 1:
            raise ValueError("need context_frames >= 0 and step >= 1")
        self.root = Path(root)
        self.videos = find_videos(self.root)
        self.context_frames, self.step, self.max_objects = context_frames, step, max_objects

    def __len__(self) -> int:
        return len(self.videos)

    def _clip(self, annotated: int, rng: np.random.Generator) -> list[int]:
        """Annotated-frame indices of the clip, query last."""
        if annotated == 0:
            raise ValueError("no annotated frame")
        first = min(self.context_frames * self.step, annotated - 1)
        query = int(rng.integers(first, annotated))
        return [max(0, query - j * self.step) for j in range(self.context_frames, -1, -1)]

    def load(self, index: int, rng: np.random.Generator) -> Sample:
        video = self.videos[index]
        if video.mp4 is not None:
            masklet, _ = read_manual(video.manual)
            if not masklet:
                raise DataFault(Problem(str(video.manual), BAD_ANNOTATION, detail="no annotated frame"))
            clip = self._clip(len(masklet), rng)
            frame_indices = [k * ANNOTATION_STRIDE for k in clip]
            frames = read_frames(video.mp4, frame_indices)
            masks = decode_masklet(masklet, clip, *frames.shape[1:3], video.manual)
        else:
            objects, annotated = _annotated_pngs(video)
            if not annotated:
                raise DataFault(Problem(str(video.masks_dir), BAD_ANNOTATION, detail="no annotated frame"))
            frame_indices = [annotated[k] for k in self._clip(len(annotated), rng)]
            frames = np.stack([read_image(video.frames_dir / f"{t:05d}.jpg") for t in frame_indices])
            masks = np.zeros((len(frame_indices), len(objects), *frames.shape[1:3]), dtype=bool)
            for n, obj in enumerate(objects):
                for k, t in enumerate(frame_indices):
                    path = obj / f"{t:05d}.png"
                    if path.exists():  # an object not yet / no longer annotated has no PNG
                        mask = read_binary_mask(path)
                        if mask.shape != frames.shape[1:3]:
                            raise DataFault(
                                Problem(
                                    str(path),
                                    SIZE_MISMATCH,
                                    detail=f"mask {mask.shape}, frames {frames.shape[1:3]}",
                                )
                            )
                        masks[k, n] = mask
        keep = subsample(masks.shape[1], self.max_objects, rng)
        masks_t = torch.from_numpy(masks[:, keep])
        visible = masks_t.flatten(2).any(-1)
        return {
            "frames": to_image_tensor(frames),
            "masks": masks_t,
            "boxes_xyxy": boxes_from_masks(masks_t),
            "visible": visible,
            "object_ids": torch.from_numpy(keep.astype(np.int64)),
            "frame_indices": torch.tensor(frame_indices, dtype=torch.long),
            "phrase": None,
            "positive": bool(visible[-1].any()),
            "video_id": video.video_id,
            "source": "sav",
            "original_size": tuple(frames.shape[1:3]),
        }
