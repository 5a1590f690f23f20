"""Student versus teacher on the same held-out pairs, with the same metric code.

:class:`StudentTeacherView` gives a :class:`~sam3spec.models.student.Student` the two calls of the
:class:`~sam3spec.teacher.protocol.Teacher` protocol (``encode_image`` once, ``predict`` per
prompt), so issue 4's evaluator (:func:`sam3spec.teacher.world_eval.score_pairs`: matched mIoU,
presence F1, cgF1 from :mod:`sam3spec.eval.metrics`) scores both models identically.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from sam3spec.data.transforms import Normalization, ResizeNormalize, TransformConfig
from sam3spec.models.image_encoder import ImageFeatures
from sam3spec.models.outputs import Sam3Outputs
from sam3spec.teacher.protocol import ImageEmbeddings

METRIC_KEYS = ("mIoU", "presence_f1", "cgF1", "pmF1", "IL_MCC")


class StudentTeacherView:
    """The student behind the teacher protocol (text prompts; square images).

    Images are letterboxed to the student's ``config.image_size``; for a square image (the concept
    world) the masks then cover the whole image, which is what the evaluator assumes when it
    resizes them to the image size.

    Args:
        student: the student (eval mode is set).
        tokenizer: text tokenizer; default the student's.
    """

    def __init__(self, student, tokenizer=None) -> None:
        from sam3spec.models.text_encoder import Tokenizer

        self.student = student.eval()
        self.tokenizer = tokenizer or Tokenizer(student.config.text)
        self.image_size = int(student.config.image_size)
        self.transform = ResizeNormalize(
            TransformConfig(self.image_size, "letterbox", Normalization.IMAGENET)
        )

    @property
    def device(self) -> torch.device:
        return next(self.student.parameters()).device

    def preprocess(self, images: torch.Tensor) -> torch.Tensor:
        """``[B, 3, H, W]`` uint8 -> ``[B, 3, S, S]`` letterboxed, ImageNet-normalised."""
        return torch.stack([self.transform({"image": image})["image"] for image in images]).to(self.device)

    @torch.no_grad()
    def encode_image(self, pixel_values: torch.Tensor) -> ImageEmbeddings:
        features = self.student.encode_image(pixel_values.to(self.device))
        return ImageEmbeddings(
            fpn_levels=list(features.features),
            position_encodings=list(features.pos),
            image_size=tuple(pixel_values.shape[-2:]),
        )

    @torch.no_grad()
    def predict(self, embeddings: ImageEmbeddings, text=None, boxes=None, box_labels=None, points=None,
                point_labels=None, return_intermediates: bool = False) -> Sam3Outputs:  # fmt: skip
        """Text, box or point prompts (normalised coordinates), one per embedded image."""
        batch = embeddings.batch_size
        features = ImageFeatures(list(embeddings.fpn_levels), list(embeddings.position_encodings))
        ids = None
        if text is not None:
            texts = [text] * batch if isinstance(text, str) else list(text)
            ids = self.tokenizer(texts).to(self.device)
        prompt, mask = self.student.encode_prompt(ids, boxes, box_labels, points, point_labels, features)
        return self.student.decode(features, prompt, mask, return_intermediates=return_intermediates)


def evaluate_models(
    models: dict[str, object], world: str | Path, limit: int | None = None
) -> dict[str, dict[str, float]]:
    """Metrics of each model (a :class:`~sam3spec.teacher.protocol.Teacher`) on the concept
    world's held-out eval split: ``{name: {mIoU, presence_f1, cgF1, ...}}``."""
    from sam3spec.teacher.world_eval import evaluate_world

    return {name: evaluate_world(model, world, limit) for name, model in models.items()}


def ratios(metrics: dict[str, dict[str, float]]) -> dict[str, float]:
    """Student / teacher for each headline metric (None where the teacher's is 0)."""
    teacher, student = metrics["teacher"], metrics["student"]
    return {key: (student[key] / teacher[key] if teacher[key] else None) for key in METRIC_KEYS}


def write_metrics(metrics: dict[str, dict[str, float]], path: str | Path) -> Path:
    """``metrics.json`` = ``{"teacher": {...}, "student": {...}}`` (+ ``stage3`` and ``by_kind``
    when the pipeline ran Stage 3; atomic)."""
    from sam3spec.atomic import atomic_write_json

    path = Path(path)
    atomic_write_json(
        {name: metrics[name] for name in ("teacher", "student", "stage3", "by_kind") if name in metrics}, path
    )
    return path


def read_metrics(path: str | Path) -> dict[str, dict[str, float]]:
    return json.loads(Path(path).read_text())
