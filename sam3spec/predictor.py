"""Two-call image API: ``ImagePredictor(student).set_image(image)``, then ``.predict(...)``.

The image is resized so its longer side equals the model resolution and padded bottom/right to a
square (as segment-anything does; the data layer's ``letterbox`` transform), normalised with
ImageNet statistics (RepViT's), and encoded once; every ``predict`` call reuses the features. Results come back in the original image's
pixel frame.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F

if TYPE_CHECKING:
    from sam3spec.models.student import Student


@dataclass
class Prediction:
    """Instances found for one prompt, best first.

    Attributes:
        masks: ``[N, H, W]`` bool, in the original image's size.
        boxes_xyxy: ``[N, 4]`` float pixel boxes (x0, y0, x1, y1).
        scores: ``[N]`` = sigmoid(query logit) x sigmoid(presence).
        presence: probability that the concept is in the image at all.
    """

    masks: np.ndarray
    boxes_xyxy: np.ndarray
    scores: np.ndarray
    presence: float


def image_to_tensor(image: Any) -> torch.Tensor:
    """An RGB image (H x W x 3 uint8 array, PIL image, or ``[3, H, W]`` tensor) -> ``[3, H, W]`` float in [0, 1].

    Raises:
        TypeError: for an unsupported type or dtype.
        ValueError: for a wrong number of channels or an empty image.
    """
    if hasattr(image, "convert") and hasattr(image, "size"):  # PIL.Image: 16-bit, palette, alpha -> RGB
        from sam3spec.data.image_io import to_rgb

        image = to_rgb(image)
    if isinstance(image, np.ndarray):
        if image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f"image: expected an H x W x 3 RGB array, got shape {image.shape}")
        if image.dtype != np.uint8:
            raise TypeError(f"image: expected dtype uint8 for an array (0-255), got {image.dtype}")
        tensor = torch.from_numpy(np.array(image, copy=True)).permute(2, 0, 1).float() / 255.0
    elif isinstance(image, torch.Tensor):
        if image.ndim != 3 or image.shape[0] != 3:
            raise ValueError(f"image: expected a [3, H, W] tensor, got shape {tuple(image.shape)}")
        if image.dtype == torch.uint8:
            tensor = image.float() / 255.0
        elif image.is_floating_point():
            tensor = image.float()
            if tensor.numel() and (tensor.min() < 0 or tensor.max() > 1):
                raise ValueError("image: a float tensor must hold values in [0, 1]")
        else:
            raise TypeError(f"image: expected a uint8 or float tensor, got {image.dtype}")
    else:
        raise TypeError(
            f"image: expected a numpy array, PIL image or torch tensor, got {type(image).__name__}"
        )
    if tensor.shape[1] == 0 or tensor.shape[2] == 0:
        raise ValueError(f"image: empty image of shape {tuple(tensor.shape)}")
    return tensor


def _as_array(values: Any, name: str, width: int) -> np.ndarray | None:
    if values is None:
        return None
    array = np.asarray(values, dtype=np.float64)
    if array.ndim == 1:
        array = array[None]
    if array.ndim != 2 or array.shape[1] != width or array.shape[0] == 0:
        raise ValueError(f"{name}: expected shape [N, {width}] with N >= 1, got {array.shape}")
    if not np.isfinite(array).all():
        raise ValueError(f"{name}: contains NaN or infinite coordinates")
    return array


def _labels(labels: Any, count: int, name: str) -> np.ndarray:
    if labels is None:
        return np.ones(count, dtype=np.int64)
    array = np.asarray(labels, dtype=np.int64).reshape(-1)
    if array.shape[0] != count or not np.isin(array, (0, 1)).all():
        raise ValueError(
            f"{name}: expected {count} labels, each 1 (positive) or 0 (negative), got {labels!r}"
        )
    return array


class ImagePredictor:
    """Promptable concept segmentation of one image at a time with a :class:`Student`."""

    def __init__(self, model: Student, tokenizer: Any = None) -> None:
        self.model = model.eval()
        self._tokenizer = tokenizer
        self._features: Any = None
        self._size: tuple[int, int] | None = None
        self._scale = 1.0
        self._valid_size = (0, 0)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def tokenizer(self) -> Any:
        if self._tokenizer is None:
            from sam3spec.models.text_encoder import Tokenizer

            self._tokenizer = Tokenizer(self.model.config.text)
        return self._tokenizer

    @torch.no_grad()
    def set_image(self, image: Any) -> None:
        """Encode ``image`` (see :func:`image_to_tensor` for accepted types) once."""
        from sam3spec.data.transforms import Normalization, ResizeNormalize, TransformConfig

        tensor = image_to_tensor(image)
        height, width = tensor.shape[1:]
        side = self.model.config.image_size
        transform = ResizeNormalize(TransformConfig(side, "letterbox", Normalization.IMAGENET))
        sample = transform({"image": tensor})
        self._valid_size = sample["valid_size"]
        self._scale = side / max(height, width)
        self._features = self.model.encode_image(sample["image"][None].to(self.device))
        self._size = (height, width)

    @torch.no_grad()
    def predict(
        self,
        text: str | None = None,
        boxes: Any = None,
        box_labels: Any = None,
        points: Any = None,
        point_labels: Any = None,
        threshold: float = 0.5,
    ) -> Prediction:
        """Segment every instance matching the prompt.

        Args:
            text: a noun phrase, e.g. ``"red car"``.
            boxes: ``[N, 4]`` pixel xyxy exemplar boxes in the original image.
            box_labels: ``[N]`` 1 positive / 0 negative (default all positive).
            points: ``[N, 2]`` pixel xy points.
            point_labels: ``[N]`` 1 positive / 0 negative (default all positive).
            threshold: keep instances whose score is at least this.

        Raises:
            RuntimeError: before :meth:`set_image`.
            ValueError: for an empty prompt or boxes/points that are NaN or outside the image.
        """
        if self._features is None or self._size is None:
            raise RuntimeError("call set_image(image) before predict(...)")
        if text is not None and not text.strip():
            raise ValueError("empty prompt: the text is empty; give a noun phrase, boxes or points")
        box_array = _as_array(boxes, "boxes", 4)
        point_array = _as_array(points, "points", 2)
        if text is None and box_array is None and point_array is None:
            raise ValueError("empty prompt: give text, boxes or points")
        height, width = self._size
        side = self.model.config.image_size
        device = self.device
        inputs: dict[str, torch.Tensor] = {}
        if text is not None:
            inputs["input_ids"] = self.tokenizer([text]).to(device)
        if box_array is not None:
            x0, y0, x1, y1 = box_array.T
            if (
                (x0 < 0).any()
                or (y0 < 0).any()
                or (x1 > width).any()
                or (y1 > height).any()
                or (x1 <= x0).any()
                or (y1 <= y0).any()
            ):
                raise ValueError(
                    f"boxes: expected x0 < x1 <= {width} and y0 < y1 <= {height} (pixel xyxy), got {box_array.tolist()}"
                )
            inputs["boxes"] = torch.tensor(
                box_array * self._scale / side, dtype=torch.float32, device=device
            )[None]
            inputs["box_labels"] = torch.tensor(
                _labels(box_labels, len(box_array), "box_labels"), device=device
            )[None]
        if point_array is not None:
            x, y = point_array.T
            if (x < 0).any() or (y < 0).any() or (x > width).any() or (y > height).any():
                raise ValueError(
                    f"points: expected 0 <= x <= {width} and 0 <= y <= {height}, got {point_array.tolist()}"
                )
            inputs["points"] = torch.tensor(
                point_array * self._scale / side, dtype=torch.float32, device=device
            )[None]
            inputs["point_labels"] = torch.tensor(
                _labels(point_labels, len(point_array), "point_labels"), device=device
            )[None]
        prompt_tokens, prompt_mask = self.model.encode_prompt(image_features=self._features, **inputs)
        outputs = self.model.decode(self._features, prompt_tokens, prompt_mask)
        return self._postprocess(outputs, threshold)

    def _postprocess(self, outputs: Any, threshold: float) -> Prediction:
        height, width = self._size  # type: ignore[misc]
        side = self.model.config.image_size
        scores = outputs.scores()[0].float().cpu()
        order = torch.argsort(scores, descending=True)
        keep = order[scores[order] >= threshold]
        valid_h, valid_w = self._valid_size
        masks = torch.zeros(0, height, width, dtype=torch.bool)
        if len(keep):
            logits = outputs.pred_masks[0, keep].float().cpu()[:, None]
            logits = F.interpolate(logits, (side, side), mode="bilinear", align_corners=False)
            logits = logits[..., :valid_h, :valid_w]
            masks = F.interpolate(logits, (height, width), mode="bilinear", align_corners=False)[:, 0] > 0
        boxes = outputs.pred_boxes[0, keep].float().cpu() * side / self._scale
        boxes[:, 0::2] = boxes[:, 0::2].clamp(0, width)
        boxes[:, 1::2] = boxes[:, 1::2].clamp(0, height)
        return Prediction(
            masks=masks.numpy(),
            boxes_xyxy=boxes.numpy(),
            scores=scores[keep].numpy(),
            presence=float(outputs.presence_logits[0, 0].sigmoid()),
        )
