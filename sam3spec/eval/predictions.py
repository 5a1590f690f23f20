"""One model's answers to SA-Co pairs, written as SAM 3 writes its predictions.

Three kinds of model answer "every instance of this phrase in this image", each with its own
image geometry, mapped back to the image's pixels here:

* a **teacher** (SAM 3 through transformers, any :class:`~sam3spec.teacher.protocol.Teacher`):
  the image is stretched to the square input, so masks are resized to ``H x W`` and boxes scale
  by ``(W, H)``;
* a **student behind the teacher protocol**
  (:class:`~sam3spec.eval.student_view.StudentTeacherView`, ``letterbox = True``): the longer
  side is scaled to the input and the rest padded bottom / right, so masks are cropped to the
  valid region before resizing and boxes scale by the longer side (the
  :class:`~sam3spec.predictor.ImagePredictor`'s geometry, exactly);
* a **two-call predictor** (``set_image`` / ``predict``: :class:`~sam3spec.predictor.ImagePredictor`,
  :class:`~sam3spec.export.runtime.PtePredictor` for a ``.pte``), which answers in pixels already.

Only queries scoring at least ``min_score`` are upsampled (a 1500 x 1000 image with 200 queries
would need 1.2 GB of float masks per phrase otherwise).

The COCO results follow SAM 3's ``PredictionDumper`` (``sam3/eval/coco_writer.py``, segm, with the
eval configs' post-processor: masks at the original size, boxes not rescaled)::

    {"image_id": pair id, "category_id": 1, "segmentation": compressed RLE (H x W),
     "bbox": [x, y, w, h] normalised by the image size, "score", "area": normalised}

so SAM 3's evaluator reads them as it reads its own dumps, box variant included.
:func:`predict_pairs` runs a model over every pair of an SA-Co file and returns them.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from pycocotools import mask as mask_utils

from sam3spec.data.files import read_image
from sam3spec.models.outputs import resize_mask_logits

# Phrases decoded per forward: a real Gold image asks dozens, and SAM 3's 200 queries x 288^2 mask
# logits are 33 MB per phrase in bf16.
PHRASE_BATCH = 16


@dataclass
class PhrasePrediction:
    """Predictions of one (image, phrase) pair at the image's resolution.

    Attributes:
        masks: ``[Q, H, W]`` bool (mask logits upsampled bilinearly, > 0).
        boxes_xywh: ``[Q, 4]`` pixel boxes.
        scores: ``[Q]`` sigmoid(query logit) x sigmoid(presence).
        presence: presence probability.
    """

    masks: np.ndarray
    boxes_xywh: np.ndarray
    scores: np.ndarray
    presence: float


def _xyxy_to_xywh(boxes: np.ndarray) -> np.ndarray:
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    return np.concatenate([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]], axis=1).clip(min=0)


def _from_predictor(predictor: Any, image: np.ndarray, texts: list[str], min_score: float):
    """A two-call predictor: its :class:`~sam3spec.predictor.Prediction` is in pixels already."""
    predictor.set_image(image)
    out = []
    for text in texts:
        prediction = predictor.predict(text=text, threshold=min_score)
        out.append(
            PhrasePrediction(
                prediction.masks,
                _xyxy_to_xywh(prediction.boxes_xyxy),
                np.asarray(prediction.scores, dtype=np.float64),
                float(prediction.presence),
            )
        )
    return out


@torch.no_grad()
def predict_phrases(
    model: Any, image: np.ndarray, texts: list[str], min_score: float = 0.0
) -> list[PhrasePrediction]:
    """One image, several phrases (the image is encoded once), in the image's pixels.

    Args:
        model: a teacher-protocol model (a student through ``StudentTeacherView``) or a two-call
            predictor (``set_image`` / ``predict``), see the module docstring.
        image: ``[H, W, 3]`` uint8 RGB, any aspect ratio.
        texts: phrases.
        min_score: queries scoring below it are left out (0: every query).
    """
    if hasattr(model, "set_image"):
        return _from_predictor(model, image, list(texts), min_score)
    height, width = image.shape[:2]
    pixels = model.preprocess(torch.from_numpy(np.array(image, copy=True)).permute(2, 0, 1)[None])
    image_embeddings = model.encode_image(pixels)
    if getattr(model, "letterbox", False):
        side = int(model.image_size)
        scale = side / max(height, width)
        valid = (max(1, round(height * scale)), max(1, round(width * scale)))
        box_scale = torch.tensor([max(height, width)] * 4, dtype=torch.float32)
    else:
        side, valid = 0, None
        box_scale = torch.tensor([width, height, width, height], dtype=torch.float32)
    results = []
    for start in range(0, len(texts), PHRASE_BATCH):
        chunk = list(texts[start : start + PHRASE_BATCH])
        outputs = model.predict(
            image_embeddings.select(torch.zeros(len(chunk), dtype=torch.long)), text=chunk
        )
        scores = outputs.scores().float().cpu()
        presence = outputs.presence_logits.float().sigmoid()[:, 0].cpu()
        boxes = outputs.pred_boxes.float().clamp(0, 1).cpu()
        for row in range(len(chunk)):
            keep = torch.nonzero(scores[row] >= min_score)[:, 0]
            logits = outputs.pred_masks[row, keep].float().cpu()
            if valid is not None and valid != (side, side):  # crop the letterbox padding first
                logits = resize_mask_logits(logits, (side, side))[..., : valid[0], : valid[1]]
            masks = (resize_mask_logits(logits, (height, width)) > 0).numpy()
            pixel_boxes = (boxes[row, keep] * box_scale).numpy()
            pixel_boxes[:, 0::2] = pixel_boxes[:, 0::2].clip(0, width)
            pixel_boxes[:, 1::2] = pixel_boxes[:, 1::2].clip(0, height)
            results.append(
                PhrasePrediction(
                    masks.reshape(len(keep), height, width),
                    _xyxy_to_xywh(pixel_boxes),
                    scores[row, keep].numpy().astype(np.float64),
                    float(presence[row]),
                )
            )
    return results


def coco_results(
    pair_id: int, prediction: PhrasePrediction, min_score: float, height: int, width: int
) -> list[dict[str, Any]]:
    """COCO result entries of one pair as SAM 3's dumper writes them (see the module docstring);
    queries scoring below ``min_score`` are not written."""
    out = []
    scale = np.array([width, height, width, height], dtype=np.float64)
    for mask, box, score in zip(prediction.masks, prediction.boxes_xywh, prediction.scores, strict=True):
        if score < min_score:
            continue
        encoded = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
        area = float(mask_utils.area(encoded)) / (height * width)
        encoded["counts"] = encoded["counts"].decode("ascii")
        out.append(
            {
                "image_id": int(pair_id),
                "category_id": 1,
                "segmentation": encoded,
                "bbox": [round(float(v), 5) for v in np.asarray(box, dtype=np.float64) / scale],
                "score": round(float(score), 5),
                "area": area,
            }
        )
    return out


def predict_pairs(
    model,
    gt_path: Path,
    image_root: Path,
    min_score: float = 0.05,
    limit: int | None = None,
    progress: bool = False,
) -> tuple[list[dict[str, Any]], dict[str, float]]:
    """Predict every pair of an SA-Co file.

    Args:
        model: see :func:`~sam3spec.eval.predictions.predict_phrases`.
        gt_path: SA-Co file defining the pairs (``images[]`` with ``file_name``, ``text_input``,
            ``height``, ``width``).
        image_root: folder holding the ``file_name`` images.
        min_score: results below this score are not written.
        limit: only the first ``limit`` images (sorted by file name).

    Returns:
        ``(COCO results, {pair id (str): presence probability})``.

    Raises:
        FileNotFoundError: an image is missing; ValueError: an image's size differs from its entry.
    """
    from tqdm import tqdm

    data = json.loads(Path(gt_path).read_text())
    by_file: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for pair in data["images"]:
        by_file[pair["file_name"]].append(pair)
    files = sorted(by_file)[:limit] if limit else sorted(by_file)
    results, presence = [], {}
    for name in tqdm(files, desc=Path(gt_path).name, disable=not progress):
        path = Path(image_root) / name
        if not path.is_file():
            raise FileNotFoundError(
                f"image {path} of {gt_path} not found (is the image folder right? see --images)"
            )
        image = read_image(path)  # the GT's pixel grid: no EXIF turn, no downscale
        height, width = image.shape[:2]
        pairs = by_file[name]
        for pair in pairs:
            if (int(pair["height"]), int(pair["width"])) != (height, width):
                raise ValueError(
                    f"image {path} is {height}x{width}, but {gt_path} says {pair['height']}x{pair['width']} "
                    f"for pair {pair['id']} (a resized copy of the image?)"
                )
        predictions = predict_phrases(model, image, [p["text_input"] for p in pairs], min_score)
        for pair, prediction in zip(pairs, predictions, strict=True):
            results.extend(coco_results(pair["id"], prediction, min_score, height, width))
            presence[str(pair["id"])] = prediction.presence
    return results, presence
