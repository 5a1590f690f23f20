"""The training set an image stage reads, and the check that it can train on it.

One function builds it for the student's pass and for the teacher-target cache alike
(:func:`stage_dataset`), so both see the same samples and prompts. A stage trained on labels
(``targets="ground_truth"``, Stage 3) gets no vocabulary: a vocabulary phrase on an SA-1B image has
no known instances, and taking it as absent would teach the student that nothing is there. Such a
stage refuses data that gives it nothing to learn (:func:`require_labels`) instead of training on
empty targets.
"""

from __future__ import annotations

from sam3spec.data.sources import TrainingDataError
from sam3spec.distill.data import IndexedDataset, training_dataset
from sam3spec.distill.options import RunOptions
from sam3spec.distill.stages import StageConfig


def stage_dataset(stage: StageConfig, options: RunOptions, teacher_size: int | None = None) -> IndexedDataset:
    """The stage's training set on ``options.data`` (teacher view at ``teacher_size`` when given).

    Raises:
        TrainingDataError: a root holds nothing to train on, or (a stage trained on labels) the
            data give no labelled target (:func:`require_labels`).
    """
    labels = stage.targets == "ground_truth"
    dataset = training_dataset(
        options.data,
        stage.resolution,
        stage.prompts,
        teacher_size,
        stage.seed,
        vocabulary=() if labels else options.vocabulary,
        limit=options.limit,
    )
    if labels:
        require_labels(dataset, stage)
    return dataset


def require_labels(dataset: IndexedDataset, stage: StageConfig) -> None:
    """Refuse a label-trained stage's data when it gives no instance to learn from.

    Text prompts need phrases (SA-Co); an SA-1B root gives a label-trained stage only point / box
    prompts (its instances are known), so with text prompts alone it gives nothing. And at least one
    sample must have an instance: with negatives only, the mask and box losses are 0 all along.

    Raises:
        TrainingDataError: naming the root and what it lacks.
    """
    geometric = stage.prompts.point > 0 or stage.prompts.box > 0
    positives = 0
    for span in dataset.sources:
        if not span.files.has_phrases:
            if not geometric:
                raise TrainingDataError(
                    f"stage {stage.name!r} trains on labels with text prompts only, but --data "
                    f"{span.files.root} is SA-1B (no phrases): give SA-Co files (a data root with "
                    "saco/train/*.json, or an SA-Co folder), or distil from the teacher (--set targets=teacher)"
                )
            positives += max(0, min(span.stop, len(dataset)) - span.start)  # SA-1B: every image has masks
            continue
        for index in range(span.start, min(span.stop, len(dataset))):
            part, local = dataset.part(index)
            positives += part.positive(local)
    if positives == 0:
        roots = ", ".join(str(span.files.root) for span in dataset.sources)
        raise TrainingDataError(
            f"stage {stage.name!r}: no usable samples in --data {roots}: all {len(dataset)} (image, phrase) "
            "pair(s) are negatives (no instance), so the mask and box losses would train on nothing"
        )
