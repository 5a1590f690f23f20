"""The student behind the teacher protocol, so one evaluator scores student and teacher alike.

:class:`StudentTeacherView` gives a :class:`~sam3spec.models.student.Student` the two calls of the
:class:`~sam3spec.teacher.protocol.Teacher` protocol (``encode_image`` once, ``predict`` per
prompt): :mod:`sam3spec.eval.model_eval` (SA-Co cgF1 / pmF1 / IL_MCC) and the concept world's
evaluator (:mod:`sam3spec.world.evaluate`) then score both models with the same code.
"""

from __future__ import annotations

import torch

from sam3spec.data.transforms import Normalization, ResizeNormalize, TransformConfig
from sam3spec.models.image_encoder import ImageFeatures
from sam3spec.models.outputs import Sam3Outputs
from sam3spec.teacher.protocol import ImageEmbeddings


class StudentTeacherView:
    """The student behind the teacher protocol (text prompts; any aspect ratio).

    Images are letterboxed to the student's ``config.image_size`` (the longer side scaled to it,
    the rest padded bottom / right); :attr:`letterbox` tells the evaluator
    (:func:`~sam3spec.eval.predictions.predict_phrases`) to crop the padding before resizing masks
    to the image, as the :class:`~sam3spec.predictor.ImagePredictor` does.

    Args:
        student: the student (eval mode is set).
        tokenizer: text tokenizer; default the student's.
    """

    letterbox = True  # a teacher stretches its input instead: no attribute, or False

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
    def predict(
        self,
        embeddings: ImageEmbeddings,
        text=None,
        boxes=None,
        box_labels=None,
        points=None,
        point_labels=None,
        return_intermediates: bool = False,
    ) -> Sam3Outputs:
        """Text, box or point prompts (normalised coordinates), one per embedded image."""
        batch = embeddings.batch_size
        features = ImageFeatures(list(embeddings.fpn_levels), list(embeddings.position_encodings))
        ids = None
        if text is not None:
            texts = [text] * batch if isinstance(text, str) else list(text)
            ids = self.tokenizer(texts).to(self.device)
        prompt, mask = self.student.encode_prompt(ids, boxes, box_labels, points, point_labels, features)
        return self.student.decode(features, prompt, mask, return_intermediates=return_intermediates)
