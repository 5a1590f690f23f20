"""What any teacher offers: encode an image once, then predict for many prompts.

The real teacher is SAM 3 through transformers (:class:`sam3spec.teacher.hf_adapter.HFTeacher`);
anything with the same two calls (a stub in a test, a remote service) can teach.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import torch

from sam3spec.models.outputs import Sam3Outputs


@dataclass
class ImageEmbeddings:
    """Image features computed once and reused for every prompt of the same images.

    Attributes:
        fpn_levels: detector FPN features, finest first, ``[B, C, H_l, W_l]`` (SAM 3: 288^2,
            144^2, 72^2, 36^2 x 256 at 1008 px; the detector uses the first three).
        position_encodings: sine position encodings, same shapes as ``fpn_levels``.
        tracker_levels: point-tracker features (SAM-style: ``conv_s0`` / ``conv_s1`` applied to the
            two finest levels, the no-memory embedding added to the third), or None without a
            tracker.
        image_size: ``(H, W)`` of the model input the features came from.
    """

    fpn_levels: list[torch.Tensor]
    position_encodings: list[torch.Tensor]
    tracker_levels: list[torch.Tensor] | None = None
    image_size: tuple[int, int] = (0, 0)
    extra: dict[str, torch.Tensor] = field(default_factory=dict)

    @property
    def batch_size(self) -> int:
        return int(self.fpn_levels[0].shape[0])

    def select(self, index: torch.Tensor) -> ImageEmbeddings:
        """Rows ``index`` (``[N]`` long): repeat an image's features for several prompts."""
        return ImageEmbeddings(
            fpn_levels=[level.index_select(0, index) for level in self.fpn_levels],
            position_encodings=[level.index_select(0, index) for level in self.position_encodings],
            tracker_levels=None
            if self.tracker_levels is None
            else [level.index_select(0, index) for level in self.tracker_levels],
            image_size=self.image_size,
        )


@runtime_checkable
class Teacher(Protocol):
    """A promptable concept segmenter that teaches the student.

    Coordinates are normalised to [0, 1] of the model input: boxes ``xyxy``, points ``(x, y)``.
    """

    image_size: int

    def preprocess(self, images: torch.Tensor) -> torch.Tensor:
        """``[B, 3, H, W]`` uint8 RGB -> normalised ``pixel_values`` at the teacher's input size."""
        ...

    def encode_image(self, pixel_values: torch.Tensor) -> ImageEmbeddings:
        """Run the image encoder once (``[B, 3, S, S]`` normalised pixels)."""
        ...

    def predict(
        self,
        embeddings: ImageEmbeddings,
        text: str | list[str] | None = None,
        boxes: torch.Tensor | None = None,
        box_labels: torch.Tensor | None = None,
        points: torch.Tensor | None = None,
        point_labels: torch.Tensor | None = None,
        return_intermediates: bool = False,
    ) -> Sam3Outputs:
        """Predict for one prompt per image (``B`` prompts for ``B`` embedded images).

        Args:
            embeddings: from :meth:`encode_image`.
            text: one noun phrase per image (or one for all).
            boxes: ``[B, K, 4]`` normalised xyxy exemplar boxes.
            box_labels: ``[B, K]`` 1 positive / 0 negative exemplar (default all 1).
            points: ``[B, P, 2]`` normalised ``(x, y)`` clicks (routed to the point tracker).
            point_labels: ``[B, P]`` 1 foreground / 0 background (default all 1).
            return_intermediates: also return FPN levels, encoder memory and per-layer decoder
                outputs (text / box prompts).
        """
        ...
