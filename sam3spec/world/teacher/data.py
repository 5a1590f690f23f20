"""Training samples for the concept-world teacher, drawn from the concept world's generator.

The teacher trains on an endless stream of fresh scenes (``generate_scene`` + ``sample_queries``
of :mod:`sam3spec.world`, the same code ``sam3spec data generate`` writes files with) under
the *train* split rule: no phrase names a held-out (colour, shape) pair. Every image goes through
the same JPEG round trip as the written files, so training pixels look like the files it is
evaluated on. Each image has its own random stream ``default_rng([seed, stream, step, index])``:
a run is reproducible from its seed and a resumed run sees exactly the data it would have seen.
The held-out evaluation reads the files of a generated world (:mod:`sam3spec.world.evaluate`).
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from sam3spec.world.config import WorldConfig
from sam3spec.world.generate import scene_and_queries

TRAIN_STREAM, VALIDATION_STREAM = 101, 102


@dataclass
class WorldImage:
    """One image with the phrases asked about it.

    Attributes:
        image: ``[H, W, 3]`` uint8 (after the JPEG round trip).
        texts: the phrases.
        instances: per phrase, ``[n, H, W]`` bool instance masks (n = 0 for a negative).
        object_masks: ``[N, H, W]`` bool masks of every object (point-prompt targets).
        object_words: per object, the words that name it (``("large", "red", "circle")``);
            the word-alignment loss's targets (:func:`attribute_labels`).
    """

    image: np.ndarray
    texts: list[str]
    instances: list[np.ndarray]
    object_masks: np.ndarray
    object_words: list[tuple[str, ...]]


def jpeg_round_trip(image: np.ndarray, quality: int) -> np.ndarray:
    """Encode and decode as the world writer does (baseline JPEG, Pillow)."""
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="JPEG", quality=quality, optimize=False, progressive=False)
    return np.asarray(Image.open(io.BytesIO(buffer.getvalue())).convert("RGB"))


def draw_image(
    rng: np.random.Generator, world: WorldConfig, held_out_allowed: bool, phrases: int | None
) -> WorldImage:
    """One scene and up to ``phrases`` of its queries (all when None).

    ``held_out_allowed`` False applies the train rule; True mimics the eval split (a held-out
    pair is planted and asked first).
    """
    scene, queries = scene_and_queries(rng, "eval" if held_out_allowed else "train", world)
    if phrases is not None and len(queries) > phrases:
        queries = [queries[index] for index in sorted(rng.choice(len(queries), size=phrases, replace=False))]
    return WorldImage(
        image=jpeg_round_trip(scene.image, world.jpeg_quality),
        texts=[query.phrase.text for query in queries],
        instances=[scene.masks[list(query.instances)] for query in queries],
        object_masks=scene.masks,
        object_words=[(obj.size, obj.colour, obj.shape) for obj in scene.objects],
    )


def training_images(seed: int, step: int, count: int, phrases: int, world: WorldConfig) -> list[WorldImage]:
    """The images of one training step (train split rule)."""
    return [
        draw_image(np.random.default_rng([seed, TRAIN_STREAM, step, index]), world, False, phrases)
        for index in range(count)
    ]


def validation_images(seed: int, count: int, world: WorldConfig) -> list[WorldImage]:
    """A fixed eval-like set (held-out pairs planted and asked) for monitoring a run."""
    return [
        draw_image(np.random.default_rng([seed, VALIDATION_STREAM, index]), world, True, None)
        for index in range(count)
    ]


def to_pixels(images: list[np.ndarray], size: int) -> torch.Tensor:
    """``[B, 3, size, size]`` float in [-1, 1] (SAM 3's normalisation: mean 0.5, std 0.5)."""
    batch = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float() / 255.0
    if batch.shape[-1] != size or batch.shape[-2] != size:
        batch = F.interpolate(batch, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
    return (batch - 0.5) / 0.5


def boxes_xyxy(masks: torch.Tensor) -> torch.Tensor:
    """Tight normalised xyxy boxes of ``[n, H, W]`` bool masks (pixel edges)."""
    height, width = masks.shape[-2:]
    rows, cols = masks.any(dim=2), masks.any(dim=1)
    row_index = torch.arange(height, dtype=torch.float32)
    col_index = torch.arange(width, dtype=torch.float32)
    big = 1e9
    x0 = torch.where(cols, col_index, big).amin(dim=1)
    x1 = torch.where(cols, col_index, -big).amax(dim=1) + 1
    y0 = torch.where(rows, row_index, big).amin(dim=1)
    y1 = torch.where(rows, row_index, -big).amax(dim=1) + 1
    return torch.stack([x0 / width, y0 / height, x1 / width, y1 / height], dim=-1)


def mask_targets(masks: np.ndarray, size: int) -> torch.Tensor:
    """``[n, H, W]`` bool -> ``[n, size, size]`` soft targets (area average) at the mask resolution."""
    tensor = torch.from_numpy(masks).float()
    if tensor.shape[0] == 0:
        return torch.zeros(0, size, size)
    return F.interpolate(tensor[None], size=(size, size), mode="area")[0]


IGNORE = -100  # label of cells no object covers (cross-entropy ignore index)


def attribute_labels(image: WorldImage, words: list[str], size: int) -> torch.Tensor:
    """``[size, size]`` long: per cell, the index in ``words`` of the attribute (one of a colour,
    shape or size vocabulary) of the object covering more than half of it; ``IGNORE`` elsewhere."""
    labels = torch.full((size, size), IGNORE, dtype=torch.long)
    covered = mask_targets(image.object_masks, size) > 0.5  # [N, size, size], one resize for all objects
    for cells, attributes in zip(covered, image.object_words, strict=True):
        word = next(word for word in attributes if word in words)
        labels[cells] = words.index(word)
    return labels
