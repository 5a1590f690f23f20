"""Streaming video API: ``VideoPredictor(student).start(text="red circle")``, then ``step(frame)``
per camera frame, or ``propagate(path)`` for a file.

The predictor wraps a :class:`~sam3spec.models.student.Student` (it does not subclass it) and owns
three things between frames: the prompt tokens (a text prompt is encoded once; a box / point
prompt is encoded on the first frame, so the exemplar's appearance becomes the concept and later
frames are not sampled at stale coordinates), the explicit :class:`~sam3spec.models.video.VideoState`
(fixed size whatever the video length), and an :class:`~sam3spec.video.tracker.IdTracker` that
keeps object ids across frames, occlusions and exits.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from sam3spec.models.video import CONTEXT_FRAMES, VideoState
from sam3spec.predictor import _as_array, _labels, image_to_tensor
from sam3spec.video.frames import read_video
from sam3spec.video.tracker import IdTracker, TrackerConfig


@dataclass
class FrameResult:
    """Instances of the prompted concept in one frame, best first.

    Attributes:
        index: frame number in the video (0-based; corrupt frames count).
        masks: ``[N, H, W]`` bool in the frame's size.
        boxes_xyxy: ``[N, 4]`` pixel boxes.
        scores: ``[N]`` sigmoid(query logit) x sigmoid(presence).
        object_ids: ``[N]`` int64 ids, stable across frames (>= 1).
        presence: probability that the concept is in the frame.
        skipped: the frame could not be decoded (nothing predicted, memory unchanged).
    """

    index: int
    masks: np.ndarray
    boxes_xyxy: np.ndarray
    scores: np.ndarray
    object_ids: np.ndarray
    presence: float
    skipped: bool = False


def empty_result(index: int, height: int, width: int, skipped: bool = False) -> FrameResult:
    return FrameResult(
        index,
        np.zeros((0, height, width), bool),
        np.zeros((0, 4), np.float32),
        np.zeros(0, np.float32),
        np.zeros(0, np.int64),
        0.0,
        skipped,
    )


def instances(outputs: Any, size: tuple[int, int], side: int, valid_size: tuple[int, int], threshold: float):
    """``(masks [N, H, W] bool, boxes [N, 4] px, scores [N], presence)`` of batch row 0, best first.

    Masks are upsampled to the letterboxed square, cropped to the valid region and resized to the
    original ``size`` (the image predictor's geometry).
    """
    height, width = size
    scale = side / max(height, width)
    scores = outputs.scores()[0].float().cpu()
    order = torch.argsort(scores, descending=True)
    keep = order[scores[order] >= threshold]
    masks = torch.zeros(0, height, width, dtype=torch.bool)
    if len(keep):
        logits = F.interpolate(
            outputs.pred_masks[0, keep].float().cpu()[:, None],
            (side, side),
            mode="bilinear",
            align_corners=False,
        )[..., : valid_size[0], : valid_size[1]]
        masks = F.interpolate(logits, (height, width), mode="bilinear", align_corners=False)[:, 0] > 0
    boxes = outputs.pred_boxes[0, keep].float().cpu() * side / scale
    boxes[:, 0::2] = boxes[:, 0::2].clamp(0, width)
    boxes[:, 1::2] = boxes[:, 1::2].clamp(0, height)
    presence = float(outputs.presence_logits[0, 0].float().sigmoid())
    return masks.numpy(), boxes.numpy(), scores[keep].numpy(), presence


class VideoPredictor:
    """Promptable concept segmentation and tracking over a video stream.

    Args:
        model: the student (put in eval mode).
        threshold: keep instances whose score is at least this.
        use_memory: False decodes every frame without memory (the image-only baseline).
        memory_every: push every k-th frame into the memory (the memory was trained on frames
            ``k`` apart: SA-V annotates every 4th frame of 24 fps video).
        context_frames: T, frames the memory reads.
        tracker: id association thresholds.
        tokenizer: text tokenizer (default: the student's).
    """

    def __init__(
        self,
        model: Any,
        threshold: float = 0.5,
        use_memory: bool = True,
        memory_every: int = 1,
        context_frames: int = CONTEXT_FRAMES,
        tracker: TrackerConfig | None = None,
        tokenizer: Any = None,
    ) -> None:
        if memory_every < 1 or context_frames < 1:
            raise ValueError(
                f"memory_every and context_frames must be >= 1, got {memory_every}, {context_frames}"
            )
        self.model = model.eval()
        self.threshold, self.use_memory, self.memory_every = threshold, use_memory, memory_every
        self.context_frames = context_frames
        self.tracker = IdTracker(tracker)
        self._tokenizer = tokenizer
        self._prompt: dict[str, Any] | None = None
        self._tokens: tuple[torch.Tensor, torch.Tensor] | None = None
        self.state: VideoState | None = None
        self.frame_index = 0

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def tokenizer(self) -> Any:
        if self._tokenizer is None:
            from sam3spec.models.text_encoder import Tokenizer

            self._tokenizer = Tokenizer(self.model.config.text)
        return self._tokenizer

    def start(
        self,
        text: str | None = None,
        boxes: Any = None,
        box_labels: Any = None,
        points: Any = None,
        point_labels: Any = None,
    ) -> None:
        """Set the prompt and forget any previous video (memory, ids, frame count).

        ``boxes`` / ``points`` are pixel coordinates in the *first* frame.

        Raises:
            ValueError: an empty prompt, or malformed boxes / points.
        """
        if text is not None and not text.strip():
            raise ValueError("empty prompt: the text is empty; give a noun phrase, boxes or points")
        box_array, point_array = _as_array(boxes, "boxes", 4), _as_array(points, "points", 2)
        if text is None and box_array is None and point_array is None:
            raise ValueError("empty prompt: give text, boxes or points")
        self._prompt = {
            "text": text,
            "boxes": box_array,
            "box_labels": None if box_array is None else _labels(box_labels, len(box_array), "box_labels"),
            "points": point_array,
            "point_labels": None
            if point_array is None
            else _labels(point_labels, len(point_array), "point_labels"),
        }
        self._tokens, self.state, self.frame_index = None, None, 0
        self.tracker.reset()

    def _encode_prompt(
        self, features: Any, size: tuple[int, int], scale: float
    ) -> tuple[torch.Tensor, torch.Tensor]:
        prompt, device, side = self._prompt, self.device, self.model.config.image_size
        height, width = size
        inputs: dict[str, torch.Tensor] = {}
        if prompt["text"] is not None:
            inputs["input_ids"] = self.tokenizer([prompt["text"]]).to(device)
        if prompt["boxes"] is not None:
            b = prompt["boxes"]
            if (
                (b[:, 0] < 0).any()
                or (b[:, 1] < 0).any()
                or (b[:, 2] > width).any()
                or (b[:, 3] > height).any()
                or (b[:, 2] <= b[:, 0]).any()
                or (b[:, 3] <= b[:, 1]).any()
            ):
                raise ValueError(
                    f"boxes: expected x0 < x1 <= {width} and y0 < y1 <= {height} (pixel xyxy), got {b.tolist()}"
                )
            inputs["boxes"] = torch.tensor(b * scale / side, dtype=torch.float32, device=device)[None]
            inputs["box_labels"] = torch.tensor(prompt["box_labels"], device=device)[None]
        if prompt["points"] is not None:
            p = prompt["points"]
            if (p < 0).any() or (p[:, 0] > width).any() or (p[:, 1] > height).any():
                raise ValueError(
                    f"points: expected 0 <= x <= {width} and 0 <= y <= {height}, got {p.tolist()}"
                )
            inputs["points"] = torch.tensor(p * scale / side, dtype=torch.float32, device=device)[None]
            inputs["point_labels"] = torch.tensor(prompt["point_labels"], device=device)[None]
        return self.model.encode_prompt(image_features=features, **inputs)

    @torch.no_grad()
    def step(self, frame: Any) -> FrameResult:
        """Segment and track the prompted concept in the next frame.

        Args:
            frame: RGB frame (``H x W x 3`` uint8 array, PIL image or ``[3, H, W]`` tensor), or
                None for a frame that could not be decoded (skipped: empty result, memory kept).

        Raises:
            RuntimeError: before :meth:`start`.
        """
        from sam3spec.data.transforms import Normalization, ResizeNormalize, TransformConfig

        if self._prompt is None:
            raise RuntimeError("call start(prompt) before step(frame)")
        index = self.frame_index
        self.frame_index += 1
        if frame is None:
            return empty_result(index, 0, 0, skipped=True)
        tensor = image_to_tensor(frame)
        height, width = tensor.shape[1:]
        side = self.model.config.image_size
        sample = ResizeNormalize(TransformConfig(side, "letterbox", Normalization.IMAGENET))(
            {"image": tensor}
        )
        features = self.model.encode_image(sample["image"][None].to(self.device))
        if self._tokens is None:
            self._tokens = self._encode_prompt(features, (height, width), side / max(height, width))
        push = index % self.memory_every == 0
        outputs, state = self.model.decode_video(
            features, *self._tokens, self.state, self.context_frames, push=push, use_memory=self.use_memory
        )
        self.state = state
        masks, boxes, scores, presence = instances(
            outputs, (height, width), side, sample["valid_size"], self.threshold
        )
        ids = self.tracker.update(masks, boxes)
        return FrameResult(index, masks, boxes, scores, ids, presence)

    def propagate(self, video_path: str | Path) -> Iterator[FrameResult]:
        """Every frame of a file (MP4 or a frame folder), in order; corrupt frames come back with
        ``skipped=True``. Call :meth:`start` first.

        Raises:
            FileNotFoundError, EmptyVideoError: see :func:`~sam3spec.video.frames.read_video`.
        """
        if self._prompt is None:
            raise RuntimeError("call start(prompt) before propagate(video_path)")
        for video_frame in read_video(video_path):
            yield self.step(video_frame.image)
