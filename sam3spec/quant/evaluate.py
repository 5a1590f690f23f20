"""Concept-world accuracy of any predictor with the two-call API (eager, quantized or ``.pte``).

:func:`world_pairs` reads the held-out eval split of a generated concept world (its SA-Co Gold
file and images); :func:`evaluate_predictor` runs ``set_image`` / ``predict(text=...)`` on every
(image, phrase) pair and scores it with :mod:`sam3spec.eval.metrics` (matched mIoU, presence F1,
cgF1). The same code scores the float student, every quantization recipe and the exported
program, so their figures compare.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np


@dataclass
class WorldPair:
    """One eval image with its phrases and their ground-truth instances.

    Attributes:
        file_name: the image's file name.
        image: ``[H, W, 3]`` uint8 RGB.
        phrases: the phrases asked about it.
        instances: per phrase, ``[G, H, W]`` bool masks (G = 0 for a negative phrase).
    """

    file_name: str
    image: np.ndarray
    phrases: list[str]
    instances: list[np.ndarray]


def world_pairs(world_dir: str | Path, limit: int | None = None) -> Iterator[WorldPair]:
    """Yield the eval images of the concept world in ``world_dir`` (sorted by file name).

    Raises:
        FileNotFoundError: when ``world_dir`` holds no generated world.
    """
    from sam3spec.data.files import read_image, read_json
    from sam3spec.data.rle import decode
    from sam3spec.data.world import WorldPaths

    paths = WorldPaths.of(world_dir)
    gold_path = paths.saco_eval[0]
    if not gold_path.is_file():
        raise FileNotFoundError(
            f"{gold_path} not found: generate a concept world first (sam3spec world generate --out {world_dir})"
        )
    gold = read_json(gold_path)
    by_pair: dict[Any, list[dict]] = {}
    for annotation in gold["annotations"]:
        by_pair.setdefault(annotation["image_id"], []).append(annotation)
    by_file: dict[str, list[dict]] = {}
    for entry in gold["images"]:
        by_file.setdefault(entry["file_name"], []).append(entry)
    for count, (file_name, entries) in enumerate(sorted(by_file.items())):
        if limit is not None and count >= limit:
            return
        image = read_image(paths.sa1b_eval / Path(file_name).name)
        height, width = image.shape[:2]
        phrases, instances = [], []
        for entry in entries:
            masks = [decode(annotation["segmentation"]) for annotation in by_pair.get(entry["id"], [])]
            phrases.append(entry["text_input"])
            instances.append(
                np.stack(masks).astype(bool) if masks else np.zeros((0, height, width), dtype=bool)
            )
        yield WorldPair(file_name, image, phrases, instances)


def evaluate_predictor(predictor: Any, pairs: list[WorldPair], threshold: float = 0.5) -> dict[str, float]:
    """Score a predictor (``set_image`` + ``predict(text=...)``) on concept-world pairs.

    Returns:
        :func:`sam3spec.eval.metrics.summarize`'s keys (``mIoU``, ``presence_f1``, ``cgF1``, ...).
    """
    from sam3spec.eval.metrics import evaluate_pair, summarize

    results = []
    for pair in pairs:
        predictor.set_image(pair.image)
        for phrase, targets in zip(pair.phrases, pair.instances, strict=True):
            prediction = predictor.predict(text=phrase, threshold=threshold)
            results.append(
                evaluate_pair(prediction.masks, prediction.scores, targets, prediction.presence, threshold)
            )
    return summarize(results)
