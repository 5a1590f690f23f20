"""Score calibration of a teacher: one offset added to its query logits, fitted on training images.

A detection counts when ``sigmoid(query logit + offset) x presence`` reaches SA-Co's fixed 0.5. A
teacher trained with few positives among its queries can be under-confident: a concept-world
teacher before calibration scored 18% of the held-out instances below 0.5 although one of its queries
held a good mask (best-query IoU 0.68 on those), so they counted as misses. Refitting the
operating point, as Platt scaling does for a classifier's bias, moves that threshold without
touching the masks; because cgF1 also counts false positives (pmF1) and images wrongly declared
present (IL_MCC), the offset that maximises it is not the one that merely finds more.

The offset is chosen on a concept world's **training** split (SA-Co Silver) by cgF1 and stored
in the teacher's ``teacher.json`` (``score_offset``, with the table it came from); the held-out
split is only used to report. :class:`~sam3spec.teacher.hf_adapter.HFTeacher` adds it to the
``pred_logits`` of text / box prompts (the distillation targets included). A real SAM 3
checkpoint has no ``teacher.json`` and so no offset.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
from tqdm.auto import tqdm

from sam3spec.eval.metrics import PairResult, evaluate_pair, summarize
from sam3spec.world.evaluate import detection_scores, image_outputs

DEFAULT_OFFSETS: tuple[float, ...] = tuple(round(-1.0 + 0.25 * step, 2) for step in range(17))  # -1 .. 3
OBJECTIVE = "cgF1"
REPORTED = ("mIoU", "presence_f1", "pmF1", "IL_MCC", "cgF1")


@dataclass
class PairOutputs:
    """One (image, phrase) pair's raw outputs, kept for rescoring at any offset.

    Attributes:
        masks: ``[K, H, W]`` bool masks of the queries that can pass the threshold at the largest
            offset tried (the others cannot count at any offset, so they are dropped to save memory).
        logits: ``[K]`` their raw query logits (without any offset).
        presence: presence probability.
        targets: ``[G, H, W]`` bool ground-truth instances.
    """

    masks: np.ndarray
    logits: np.ndarray
    presence: float
    targets: np.ndarray


@dataclass
class Calibration:
    """A fitted offset and the table it was chosen from.

    Attributes:
        offset: the chosen logit offset.
        objective: the metric maximised (``cgF1``).
        table: per offset tried, the :data:`REPORTED` metrics on the fitting images.
        pairs: (image, phrase) pairs the fit used.
    """

    offset: float
    objective: str = OBJECTIVE
    table: list[dict[str, float]] = field(default_factory=list)
    pairs: int = 0

    def as_meta(self, source: str) -> dict:
        """The ``calibration`` record written into ``teacher.json``."""
        return {"objective": self.objective, "fitted_on": source, "pairs": self.pairs, "table": self.table}


def collect_outputs(
    teacher, samples: Iterable[tuple[np.ndarray, Sequence[str], Sequence[np.ndarray]]], max_offset: float
) -> list[PairOutputs]:
    """Run ``teacher`` once over ``(image, phrases, instances)`` samples; the logits are stored
    without the teacher's current ``score_offset`` so that a refit starts from the raw model."""
    current = float(getattr(teacher, "score_offset", 0.0))
    kept: list[PairOutputs] = []
    for image, texts, instances in tqdm(samples, desc="calibration", unit="img"):
        if not texts:
            continue
        masks, logits, presence = image_outputs(teacher, image, texts)
        logits = logits - current
        for index, targets in enumerate(instances):
            can_pass = detection_scores(logits[index] + max_offset, presence[index]) >= 0.5
            kept.append(
                PairOutputs(masks[index][can_pass], logits[index][can_pass], float(presence[index]), targets)
            )
    return kept


def score_at(outputs: Sequence[PairOutputs], offset: float) -> dict[str, float]:
    """:func:`~sam3spec.eval.metrics.summarize` of the pairs with ``offset`` added to every logit."""
    results: list[PairResult] = []
    for pair in outputs:
        scores = detection_scores(pair.logits + offset, pair.presence)
        results.append(evaluate_pair(pair.masks, scores, pair.targets, pair.presence))
    return summarize(results)


def fit_offset(outputs: Sequence[PairOutputs], offsets: Sequence[float] = DEFAULT_OFFSETS) -> Calibration:
    """The offset with the best cgF1 (ties: the smallest ``|offset|``), with the whole table.

    Raises:
        ValueError: no offsets, or no pairs to fit on.
    """
    if not offsets:
        raise ValueError("give at least one offset to try")
    if not outputs:
        raise ValueError("no (image, phrase) pairs to fit the score offset on")
    table = []
    for offset in offsets:
        summary = score_at(outputs, float(offset))
        if summary[OBJECTIVE] is None:  # e.g. only negative pairs: nothing to fit cgF1 on
            raise ValueError(f"cannot fit the score offset: {OBJECTIVE} {summary['note']}")
        table.append(
            {
                "offset": float(offset),
                **{
                    name: None if summary[name] is None else round(float(summary[name]), 4)
                    for name in REPORTED
                },
            }
        )
    best = max(table, key=lambda row: (row[OBJECTIVE], -abs(row["offset"])))
    return Calibration(offset=best["offset"], table=table, pairs=len(outputs))


def calibrate(teacher, samples, offsets: Sequence[float] = DEFAULT_OFFSETS) -> Calibration:
    """:func:`collect_outputs` then :func:`fit_offset`."""
    return fit_offset(collect_outputs(teacher, samples, max(offsets)), offsets)
