"""Accuracy of any predictor with the two-call API (eager, quantized or ``.pte``) on SA-Co images.

:func:`evaluate_predictor` runs ``set_image`` / ``predict(text=...)`` on every (image, phrase)
pair of some :class:`~sam3spec.data.saco.GoldImage` items (:func:`~sam3spec.data.saco.gold_images`
reads them from an SA-Co file) and scores them with :mod:`sam3spec.eval.metrics` (matched mIoU,
presence F1, cgF1). The same code scores the float student, every quantization recipe and the
exported program, so their figures compare.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sam3spec.data.saco import GoldImage


def evaluate_predictor(
    predictor: Any, pairs: Sequence[GoldImage], threshold: float = 0.5
) -> dict[str, float]:
    """Score a predictor (``set_image`` + ``predict(text=...)``) on SA-Co images.

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
