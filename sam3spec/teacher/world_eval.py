"""Score a teacher on (image, phrase) pairs: matched mIoU, presence F1, cgF1.

:func:`score_pairs` runs any :class:`~sam3spec.teacher.protocol.Teacher` over images with their
phrases and ground-truth instances, upsamples the mask logits to the image size and scores each
pair with :mod:`sam3spec.eval.metrics`. :func:`evaluate_world` does it on the held-out eval split
of a generated concept world (the SA-Co Gold files ``sam3spec world generate`` writes).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import torch

from sam3spec.eval.metrics import PairResult, evaluate_pair, summarize
from sam3spec.models.outputs import resize_mask_logits
from sam3spec.teacher.protocol import Teacher


@torch.no_grad()
def predict_image(
    teacher: Teacher, image: np.ndarray, texts: Sequence[str]
) -> list[tuple[np.ndarray, np.ndarray, float]]:
    """Masks, scores and presence for each phrase of one image.

    Args:
        teacher: the teacher.
        image: ``[H, W, 3]`` uint8 RGB.
        texts: phrases.

    Returns:
        Per phrase: ``masks`` ``[Q, H, W]`` bool (logits upsampled bilinearly to the image size,
        > 0), ``scores`` ``[Q]`` (sigmoid(logit) x sigmoid(presence)), presence probability.
    """
    if not texts:
        return []
    height, width = image.shape[:2]
    pixels = teacher.preprocess(torch.from_numpy(np.array(image, copy=True)).permute(2, 0, 1)[None])
    embeddings = teacher.encode_image(pixels)
    embeddings = embeddings.select(torch.zeros(len(texts), dtype=torch.long))
    outputs = teacher.predict(embeddings, text=list(texts))
    logits = resize_mask_logits(outputs.pred_masks.float(), (height, width))
    masks = (logits > 0).cpu().numpy()
    scores = outputs.scores().float().cpu().numpy()
    presence = outputs.presence_logits.float().sigmoid()[:, 0].cpu().numpy()
    return [(masks[index], scores[index], float(presence[index])) for index in range(len(texts))]


def score_pairs(
    teacher: Teacher, samples: Iterable[tuple[np.ndarray, Sequence[str], Sequence[np.ndarray]]]
) -> tuple[dict[str, float], list[PairResult]]:
    """Evaluate ``(image, phrases, instance masks per phrase)`` samples.

    Returns:
        ``(summary, pair results)``; summary keys as :func:`sam3spec.eval.metrics.summarize`.
    """
    results = []
    for image, texts, instances in samples:
        for (masks, scores, presence), targets in zip(
            predict_image(teacher, image, texts), instances, strict=True
        ):
            results.append(evaluate_pair(masks, scores, targets, presence))
    return summarize(results), results


def world_eval_samples(world_dir: str | Path, limit: int | None = None):
    """Yield ``(image, phrases, instances)`` per image of a concept world's held-out eval split.

    Reads the SA-Co Gold file of annotator ``a`` (the world writes three identical copies) with
    the data layer's :class:`~sam3spec.data.saco.SACoDataset`; pairs of one image are consecutive.
    """
    from sam3spec.data.faults import Skipped
    from sam3spec.data.saco import SACoDataset
    from sam3spec.data.world import WorldPaths

    paths = WorldPaths.of(world_dir)
    if not paths.saco_eval[0].is_file():
        raise FileNotFoundError(
            f"{paths.saco_eval[0]} not found: generate a world first (sam3spec world generate --out {world_dir} ...)"
        )
    dataset = SACoDataset(list(paths.saco_eval), paths.sa1b_eval)
    current, image, texts, instances, count = None, None, [], [], 0
    for index in range(len(dataset)):
        sample = dataset[index]
        if isinstance(sample, Skipped):
            continue
        if sample["file_name"] != current:
            if current is not None:
                yield image, texts, instances
                count += 1
                if limit is not None and count >= limit:
                    return
            current, texts, instances = sample["file_name"], [], []
            image = sample["image"].permute(1, 2, 0).numpy()
        texts.append(sample["phrase"])
        instances.append(sample["masks"].numpy())
    if current is not None:
        yield image, texts, instances


def evaluate_world(teacher: Teacher, world_dir: str | Path, limit: int | None = None) -> dict[str, float]:
    """Teacher metrics on the held-out eval split of the concept world in ``world_dir``."""
    summary, _ = score_pairs(teacher, world_eval_samples(world_dir, limit))
    return summary
