"""Video distillation data: SA-V videos as (context, query frame, prompt, masks).

The student is frozen outside its memory, so each annotated frame's FPN features are computed
once (:class:`FeatureBank`, fp16 in memory) and every sample is assembled from them: the query
frame's four levels, the level-3 maps of the T annotated frames before it (slots before the
stream's start are invalid, as at the start of a stream), a prompt and the SA-V ground truth of
the query frame. The prompt is the stage's choice (:class:`~sam3spec.video.stage.VideoStage`):

* ``"box"`` (SA-V as released, no phrases): one masklet, prompted by its box in the first annotated
  frame where it is visible (encoded on that frame's features; the stream starts there); the
  target is that masklet in the query frame (none when it is hidden there);
* ``"phrase"``: one object's phrase (given per video and object, e.g. the concept world's from its
  manifest); the targets are every object of the video with that phrase visible in the query frame.

Frames of any aspect ratio: masks and boxes go through the student's own letterbox transform
(:class:`~sam3spec.data.transforms.ResizeNormalize`) with the frame, so they cover the same cells
of the square input as the picture, and are kept at the loss's mask size (soft, fp16).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from sam3spec.data.faults import DataFault, DataFaultWarning
from sam3spec.data.sav import ANNOTATION_STRIDE, decode_masklet, find_videos, read_manual
from sam3spec.data.sources import TrainingDataError, video_training_folder
from sam3spec.data.transforms import Normalization, ResizeNormalize, TransformConfig, boxes_from_masks
from sam3spec.data.video_io import read_frames
from sam3spec.distill.adapters import StudentGeometry, resize_map

ENCODE_CHUNK = 16  # frames per student forward while building the bank (bounds peak memory)


@dataclass
class VideoRecord:
    """One video's frozen features and labels (K annotated frames, N masklets).

    Attributes:
        video_id: SA-V name.
        levels: per FPN level ``[K, C, h_l, w_l]`` fp16.
        masks: ``[K, N, h_m, w_m]`` fp16 in [0, 1]: each masklet letterboxed onto the student's
            square input like the frame, at the loss's mask size.
        boxes: ``[K, N, 4]`` normalised xyxy on the letterboxed input (zeros where hidden).
        visible: ``[K, N]`` bool.
        phrases: N phrases, or None (box prompts).
        frames: the annotated frames' indices in the 24 fps video (``ANNOTATION_STRIDE * k``).
        size: the frames' (H, W).
        context: ``[K, C, h3, w3]`` fp16 context maps from a teacher cache
            (:mod:`sam3spec.video.teacher_context`), or None: the context slots are the student's
            own level-3 maps.
    """

    video_id: str
    levels: list[torch.Tensor]
    masks: torch.Tensor
    boxes: torch.Tensor
    visible: torch.Tensor
    phrases: list[str] | None
    frames: list[int] = field(default_factory=list)
    size: tuple[int, int] = (0, 0)
    context: torch.Tensor | None = None

    def prompted(self) -> list[tuple[int, int]]:
        """``(masklet, first visible annotated frame)`` of every masklet that a box can prompt and
        that has an annotated frame after that one to query."""
        count = self.visible.shape[0]
        first = torch.where(self.visible.any(0), self.visible.float().argmax(0), count)
        return [(n, int(f)) for n, f in enumerate(first.tolist()) if f < count - 1]


class FeatureBank:
    """Frozen student features of every annotated frame of SA-V train videos.

    Args:
        student: the (frozen) student.
        videos: a plain SA-V train folder (``sav_*.mp4`` + ``sav_*_manual.json`` at any depth, as
            released: ``sav_train/sav_000/...``) or a data root (its ``sav/train``).
        phrases: ``{video_id: [phrase of object 0, object 1, ...]}`` for every video used
            (``prompt="phrase"`` only).
        limit: first ``limit`` videos only.
        prompt: ``"box"`` or ``"phrase"`` (see the module docstring).
        mask_size: side of the stored masks (default: the student's mask target grid).

    Raises:
        TrainingDataError: no SA-V train videos, or none with a usable masklet (one line naming
            the folder and what was skipped).
        KeyError: ``prompt="phrase"`` and a video has no phrases.
    """

    def __init__(
        self,
        student,
        videos: str | Path,
        phrases: Mapping[str, Sequence[str]] | None = None,
        limit: int | None = None,
        prompt: str = "phrase",
        mask_size: tuple[int, int] | None = None,
    ) -> None:
        if prompt not in ("box", "phrase"):
            raise ValueError(f"prompt must be 'box' or 'phrase', got {prompt!r}")
        root = video_training_folder(videos)
        found = [v for v in find_videos(root) if v.mp4 is not None and v.mp4.is_file() and v.manual.is_file()]
        found = found[:limit]
        if prompt == "phrase":
            missing = [v.video_id for v in found if v.video_id not in (phrases or {})]
            if missing:
                raise KeyError(
                    f"no object phrases for video(s) {', '.join(missing[:5])} "
                    f"(phrases has {len(phrases or {})} videos)"
                )
        self.prompt = prompt
        self.transform = ResizeNormalize(
            TransformConfig(student.config.image_size, "letterbox", Normalization.IMAGENET)
        )
        self.mask_size = mask_size or StudentGeometry.of(student.config).mask_target_size
        self.records: list[VideoRecord] = []
        self.pos: list[torch.Tensor] | None = None
        self.skipped: dict[str, str] = {}  # video id -> why it gives no sample
        for video in found:
            try:
                record = self._read(student, video, None if phrases is None else phrases.get(video.video_id))
            except DataFault as fault:
                self.skipped[video.video_id] = str(fault.problems[0])
                warnings.warn(
                    f"video {video.video_id} skipped: {fault.problems[0]}", DataFaultWarning, stacklevel=2
                )
                continue
            why = self._unusable(record)
            if why:
                self.skipped[video.video_id] = why
                continue
            self.records.append(record)
        if not self.records:
            reasons = "; ".join(f"{name}: {why}" for name, why in list(self.skipped.items())[:3])
            raise TrainingDataError(
                f"--data {videos}: no usable masklets in {len(found)} SA-V video(s) under {root}"
                + (f" ({reasons})" if reasons else "")
            )
        self._prompted = [record.prompted() for record in self.records]

    def _read(self, student, video, phrases: Sequence[str] | None) -> VideoRecord:
        """Decode one video's annotated frames and masklets, letterbox them, encode the frames."""
        masklet, _ = read_manual(video.manual)
        indices = [k * ANNOTATION_STRIDE for k in range(len(masklet))]
        frames = read_frames(video.mp4, indices) if indices else np.zeros((0, 1, 1, 3), np.uint8)
        height, width = frames.shape[1:3]
        pixels, masks, boxes, visible = [], [], [], []
        for k, frame in enumerate(frames):
            full = torch.from_numpy(decode_masklet(masklet, [k], height, width, video.manual)[0])  # [N, H, W]
            sample = self.transform(
                {
                    "image": torch.from_numpy(frame).permute(2, 0, 1),
                    "masks": full,
                    "boxes_xyxy": boxes_from_masks(full),  # from the full-size mask: thin objects kept
                }
            )
            pixels.append(sample["image"])
            masks.append(resize_map(sample["masks"][None].float(), self.mask_size)[0].clamp(0, 1).half())
            boxes.append(sample["boxes_xyxy"])
            visible.append(full.flatten(1).any(1))
        device = next(student.parameters()).device
        levels: list[list[torch.Tensor]] = []
        with torch.no_grad():
            for start in range(0, len(pixels), ENCODE_CHUNK):
                chunk = torch.stack(pixels[start : start + ENCODE_CHUNK]).to(device)
                features = student.encode_image(chunk)
                if self.pos is None:
                    self.pos = [p[:1].cpu() for p in features.pos]
                levels.append([f.half().cpu() for f in features.features])
        objects = len(masklet[0]) if masklet else 0
        return VideoRecord(
            video.video_id,
            [torch.cat(level) for level in zip(*levels, strict=True)] if levels else [],
            torch.stack(masks) if masks else torch.zeros(0, objects, *self.mask_size, dtype=torch.half),
            torch.stack(boxes) if boxes else torch.zeros(0, objects, 4),
            torch.stack(visible) if visible else torch.zeros(0, objects, dtype=torch.bool),
            None if phrases is None else list(phrases),
            indices,
            (int(height), int(width)),
        )

    def _unusable(self, record: VideoRecord) -> str:
        """Why a video gives no sample ('' when it gives some)."""
        frames, objects = record.visible.shape
        if frames < 2 or objects == 0:
            return f"{frames} annotated frame(s), {objects} masklet(s): a sample needs 2 frames and a masklet"
        if self.prompt == "phrase" and len(record.phrases) != objects:
            return f"{len(record.phrases)} phrase(s) for {objects} masklet(s)"
        if self.prompt == "box" and not record.prompted():
            return "no masklet is visible before the last annotated frame"
        return ""

    def samples(self, per_video: int, seed: int, epoch: int) -> list[tuple[int, int, int]]:
        """``(video, query frame k, object)`` triples of one epoch, shuffled from ``(seed, epoch)``.

        Phrase prompts: any object, k >= 1. Box prompts: a masklet of :meth:`VideoRecord.prompted`,
        k after its first visible frame."""
        rng = np.random.default_rng([seed, epoch])
        triples = []
        for v, record in enumerate(self.records):
            frames, objects = record.visible.shape
            for _ in range(per_video):
                if self.prompt == "phrase":
                    triples.append((v, int(rng.integers(1, frames)), int(rng.integers(0, objects))))
                else:
                    n, first = self._prompted[v][int(rng.integers(0, len(self._prompted[v])))]
                    triples.append((v, int(rng.integers(first + 1, frames)), n))
        return [triples[i] for i in rng.permutation(len(triples))]

    def first_visible(self, v: int, n: int) -> int:
        """The annotated frame where masklet ``n`` of video ``v`` is first visible (its prompt frame)."""
        return int(self.records[v].visible[:, n].float().argmax())

    def batch(self, triples: list[tuple[int, int, int]], context_frames: int, level: int) -> dict:
        """Stacked inputs and targets of some samples.

        Returns:
            ``features`` (per level ``[B, C, h, w]`` float), ``context`` ``[B, T, C, h3, w3]``
            (from ``record.context`` when a teacher cache was attached, else the student's level
            ``level``), ``valid`` ``[B, T]``, ``target_masks`` (B x ``[M, h_m, w_m]`` float),
            ``target_boxes_xyxy`` (B x ``[M, 4]`` normalised on the letterboxed input); phrase prompts:
            ``text`` (B phrases); box prompts: ``prompt_boxes_xyxy`` ``[B, 1, 4]`` and
            ``prompt_features`` (per level ``[B, C, h, w]``, the prompt frame's).
        """
        features = [[] for _ in self.records[0].levels]
        prompt_features = [[] for _ in self.records[0].levels]
        contexts, valids, texts, masks, boxes, prompt_boxes = [], [], [], [], [], []
        for v, k, n in triples:
            record = self.records[v]
            for index, level_maps in enumerate(record.levels):
                features[index].append(level_maps[k].float())
            start = 0 if self.prompt == "phrase" else self.first_visible(v, n)
            slots = [k - context_frames + j for j in range(context_frames)]
            maps = record.levels[level] if record.context is None else record.context
            context = torch.stack([maps[max(s, start)].float() for s in slots])
            valid = torch.tensor([s >= start for s in slots])
            contexts.append(context * valid[:, None, None, None])
            valids.append(valid)
            if self.prompt == "phrase":
                phrase = record.phrases[n]
                same = [m for m, p in enumerate(record.phrases) if p == phrase and bool(record.visible[k, m])]
                texts.append(phrase)
            else:
                same = [n] if bool(record.visible[k, n]) else []
                prompt_boxes.append(record.boxes[start, n][None])
                for index, level_maps in enumerate(record.levels):
                    prompt_features[index].append(level_maps[start].float())
            masks.append(record.masks[k, same].float())
            boxes.append(record.boxes[k, same].float())
        batch = {
            "features": [torch.stack(f) for f in features],
            "context": torch.stack(contexts),
            "valid": torch.stack(valids),
            "target_masks": masks,
            "target_boxes_xyxy": boxes,
        }
        if self.prompt == "phrase":
            batch["text"] = texts
        else:
            batch["prompt_boxes_xyxy"] = torch.stack(prompt_boxes)
            batch["prompt_features"] = [torch.stack(f) for f in prompt_features]
        return batch
