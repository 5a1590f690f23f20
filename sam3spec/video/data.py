"""Video distillation data: SA-V videos as (context, query frame, phrase, masks).

The student is frozen outside its memory, so each annotated frame's FPN features are computed
once (:class:`FeatureBank`, fp16 in memory) and every sample is assembled from them: the query
frame's four levels, the level-3 maps of the T annotated frames before it (slots before the
video's start are invalid, as at the start of a stream), a phrase naming one object of the video
(SA-V has no phrases: they are given per video and object, e.g. the concept world's from its
manifest) and the masks of every object the phrase names that is visible in the query frame
(SA-V ground truth).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from sam3spec.data.layout import DataLayout
from sam3spec.data.sav import ANNOTATION_STRIDE, decode_masklet, find_videos, read_manual
from sam3spec.data.transforms import Normalization, ResizeNormalize, TransformConfig, boxes_from_masks
from sam3spec.data.video_io import read_frames


@dataclass
class VideoRecord:
    """One video's frozen features and labels.

    Attributes:
        video_id: SA-V name.
        levels: per FPN level ``[K, C, h_l, w_l]`` fp16 (K annotated frames).
        masks: ``[K, N, H, W]`` bool visible masks (frame size).
        phrases: N phrases.
        frames: the annotated frames' indices in the 24 fps video (``ANNOTATION_STRIDE * k``).
        context: ``[K, C, h3, w3]`` fp16 context maps from a teacher cache
            (:mod:`sam3spec.video.teacher_context`), or None: the context slots are the student's
            own level-3 maps.
    """

    video_id: str
    levels: list[torch.Tensor]
    masks: torch.Tensor
    phrases: list[str]
    frames: list[int] = field(default_factory=list)
    context: torch.Tensor | None = None


class FeatureBank:
    """Frozen student features of every annotated frame of SA-V train videos.

    Args:
        student: the (frozen) student.
        videos: SA-V train folder (``sav_*.mp4`` + ``sav_*_manual.json``), or a data root (its
            ``sav/train``, :mod:`sam3spec.data.layout`).
        phrases: ``{video_id: [phrase of object 0, object 1, ...]}`` for every video used.
        limit: first ``limit`` videos only.
    """

    def __init__(
        self, student, videos: str | Path, phrases: Mapping[str, Sequence[str]], limit: int | None = None
    ) -> None:
        root = Path(videos)
        if DataLayout.of(root).is_data_root():
            root = DataLayout.of(root).sav_train
        found = [v for v in find_videos(root) if v.mp4 is not None]
        if not found:
            raise FileNotFoundError(f"no SA-V train videos (sav_*.mp4 + _manual.json) under {root}")
        missing = [v.video_id for v in found[:limit] if v.video_id not in phrases]
        if missing:
            raise KeyError(
                f"no object phrases for video(s) {', '.join(missing[:5])} (phrases has {len(phrases)} videos)"
            )
        transform = ResizeNormalize(
            TransformConfig(student.config.image_size, "letterbox", Normalization.IMAGENET)
        )
        device = next(student.parameters()).device
        self.records: list[VideoRecord] = []
        self.pos: list[torch.Tensor] | None = None
        for video in found[:limit]:
            masklet, _ = read_manual(video.manual)
            indices = [k * ANNOTATION_STRIDE for k in range(len(masklet))]
            frames = read_frames(video.mp4, indices)
            masks = decode_masklet(masklet, list(range(len(masklet))), *frames.shape[1:3], video.manual)
            pixels = torch.stack(
                [
                    transform({"image": torch.from_numpy(f).permute(2, 0, 1).float() / 255})["image"]
                    for f in frames
                ]
            )
            with torch.no_grad():
                features = student.encode_image(pixels.to(device))
            if self.pos is None:
                self.pos = [p[:1].cpu() for p in features.pos]
            self.records.append(
                VideoRecord(
                    video.video_id,
                    [f.half().cpu() for f in features.features],
                    torch.from_numpy(masks),
                    list(phrases[video.video_id]),
                    indices,
                )
            )

    def samples(self, per_video: int, seed: int, epoch: int) -> list[tuple[int, int, int]]:
        """``(video, query frame k >= 1, object)`` triples of one epoch, shuffled from ``(seed, epoch)``."""
        rng = np.random.default_rng([seed, epoch])
        triples = []
        for v, record in enumerate(self.records):
            frames, objects = record.masks.shape[:2]
            for _ in range(per_video):
                triples.append((v, int(rng.integers(1, frames)), int(rng.integers(0, objects))))
        return [triples[i] for i in rng.permutation(len(triples))]

    def batch(self, triples: list[tuple[int, int, int]], context_frames: int, level: int) -> dict:
        """Stacked inputs and targets of some samples.

        Returns:
            ``features`` (per level ``[B, C, h, w]`` float), ``context`` ``[B, T, C, h3, w3]``
            (from ``record.context`` when a teacher cache was attached, else the student's level ``level``),
            ``valid`` ``[B, T]``, ``text`` (B phrases), ``target_masks`` (B x ``[M, H, W]`` bool),
            ``target_boxes_xyxy`` (B x ``[M, 4]`` normalised).
        """
        features = [[] for _ in self.records[0].levels]
        contexts, valids, texts, masks, boxes = [], [], [], [], []
        for v, k, n in triples:
            record = self.records[v]
            for index, level_maps in enumerate(record.levels):
                features[index].append(level_maps[k].float())
            slots = [k - context_frames + j for j in range(context_frames)]
            maps = record.levels[level] if record.context is None else record.context
            context = torch.stack([maps[max(s, 0)].float() for s in slots])
            valid = torch.tensor([s >= 0 for s in slots])
            contexts.append(context * valid[:, None, None, None])
            valids.append(valid)
            phrase = record.phrases[n]
            same = [m for m, p in enumerate(record.phrases) if p == phrase and bool(record.masks[k, m].any())]
            target = record.masks[k, same]
            texts.append(phrase)
            masks.append(target)
            boxes.append(boxes_from_masks(target) if len(same) else torch.zeros(0, 4))
        return {
            "features": [torch.stack(f) for f in features],
            "context": torch.stack(contexts),
            "valid": torch.stack(valids),
            "text": texts,
            "target_masks": masks,
            "target_boxes_xyxy": boxes,
        }
