"""Training data for distillation: datasets, the two image views, data order, student inputs.

**Views.** Student and teacher see the *same letterboxed square*: the student at its resolution,
normalised (:class:`~sam3spec.data.transforms.ResizeNormalize`), the teacher as uint8 at its own
size (``teacher_image``; the teacher's ``preprocess`` normalises). So normalised prompt
coordinates and the teacher's normalised outputs mean the same place for both, whatever the
aspect ratio.

**Order.** Epoch ``e`` visits *units* in an order drawn from ``(seed, e)``: single samples, or
with ``prompts_per_image`` k > 1 chunks of up to k samples (prompts) of one image, which then
share the student's image encoder pass. With ``W`` processes, rank ``r`` takes every ``W``-th
unit (``r``, ``r + W``, ...), truncated to equal length, and cuts them into micro-batches.
Micro-batch ``i`` of a single process with ``W * B`` units holds exactly the samples of
micro-batch ``i`` of the ``W`` ranks with ``B`` units. A data position is ``(epoch,
micro-batch)``: resuming recomputes the order and skips, nothing is replayed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from sam3spec.data.concat import ConcatSamples
from sam3spec.data.faults import FaultLog, Skipped
from sam3spec.data.prompts import PromptConfig, PromptSampler
from sam3spec.data.sources import DataSource, TrainingDataError, TrainingFiles, data_sources, training_files
from sam3spec.data.transforms import Normalization, ResizeNormalize, TransformConfig
from sam3spec.data.vocabulary import default_vocabulary

PAD_GREY = 128


def letterbox_uint8(image: torch.Tensor, size: int, fill: int = PAD_GREY) -> torch.Tensor:
    """``[3, H, W]`` uint8 -> ``[3, size, size]`` uint8: long side scaled to ``size``, padded
    bottom / right with ``fill`` (the student's letterbox geometry at another size)."""
    height, width = image.shape[-2:]
    scale = size / max(height, width)
    new_h, new_w = max(1, round(height * scale)), max(1, round(width * scale))
    if (new_h, new_w) != (height, width):
        resized = F.interpolate(
            image[None].float(), size=(new_h, new_w), mode="bilinear", align_corners=False, antialias=True
        )[0]
        image = resized.round().clamp(0, 255).to(torch.uint8)
    canvas = torch.full((3, size, size), fill, dtype=torch.uint8)
    canvas[:, :new_h, :new_w] = image
    return canvas


class DistillTransform:
    """Student view (resized, normalised) plus, when ``teacher_size`` is set, ``teacher_image``.

    Args:
        resolution: student input side.
        teacher_size: teacher input side, or None (targets from a cache or ground truth).
    """

    def __init__(self, resolution: int, teacher_size: int | None = None) -> None:
        self.student = ResizeNormalize(TransformConfig(resolution, "letterbox", Normalization.IMAGENET))
        self.teacher_size = teacher_size

    def __call__(self, sample: dict[str, Any]) -> dict[str, Any]:
        out = self.student(sample)
        if self.teacher_size is not None:
            out["teacher_image"] = letterbox_uint8(sample["image"], self.teacher_size)
        return out


@dataclass(frozen=True)
class SourceSpan:
    """Where one ``--data`` root's samples are in a training set.

    Attributes:
        files: what the root holds (:func:`~sam3spec.data.sources.training_files`).
        weight: its share of each epoch relative to the other roots' weights.
        start: its first sample index; ``stop``: one past its last.
    """

    files: TrainingFiles
    weight: float
    start: int
    stop: int


class IndexedDataset(Dataset):
    """Adds ``index`` (the dataset position) to every sample; passes ``set_epoch`` through.

    Args:
        dataset: a fault-tolerant dataset.
        limit: expose only the first ``limit`` samples (smoke runs).
        sources: where each ``--data`` root's samples are (several: they mix by weight,
            :func:`data_units`).
    """

    def __init__(
        self, dataset: Dataset, limit: int | None = None, sources: Sequence[SourceSpan] = ()
    ) -> None:
        self.dataset = dataset
        self.limit = limit
        self.sources = list(sources)

    def __len__(self) -> int:
        return len(self.dataset) if self.limit is None else min(self.limit, len(self.dataset))

    def set_epoch(self, epoch: int) -> None:
        self.dataset.set_epoch(epoch)

    @property
    def faults(self):
        return self.dataset.faults

    def part(self, index: int) -> tuple[Dataset, int]:
        """``(the loader holding sample index, its index there)``."""
        if isinstance(self.dataset, ConcatSamples):
            number, local = self.dataset.locate(index)
            return self.dataset.parts[number], local
        return self.dataset, index

    def __getitem__(self, index: int):
        sample = self.dataset[index]
        if isinstance(sample, Skipped):
            return sample
        sample["index"] = index
        return sample


def part_seed(seed: int, part: int) -> int:
    """The seed of the ``part``-th dataset of a training set (the first keeps ``seed``), so the
    prompt draws of different SA-Co files or roots are independent."""
    return seed if part == 0 else int(np.random.SeedSequence([seed, part]).generate_state(1)[0])


def training_dataset(
    data: str | Path | DataSource | Sequence[str | Path | DataSource],
    resolution: int,
    prompts: PromptConfig,
    teacher_size: int | None = None,
    seed: int = 0,
    vocabulary: Sequence[str] | None = None,
    limit: int | None = None,
) -> IndexedDataset:
    """The training set of ``data`` with prompts and both views.

    ``data`` is one root or several (:class:`~sam3spec.data.sources.DataSource`, mixed by weight):
    a data root with SA-Co train files, an SA-Co folder (phrases, positives and negatives), or SA-1B
    (a data root's ``sa1b/train``, an SA-1B folder: no phrases, so a text prompt is a ``vocabulary``
    phrase whose targets come from the teacher; :mod:`sam3spec.data.sources`). One dataset per SA-Co
    file (a Gold triple: annotator a).

    Args:
        vocabulary: phrases for text prompts on SA-1B images; None: the shipped LVIS + COCO names
            (:func:`~sam3spec.data.vocabulary.default_vocabulary`); empty: no text prompts there.

    Raises:
        TrainingDataError: a root holds no training samples.
    """
    from sam3spec.data.sa1b import SA1BDataset
    from sam3spec.data.saco import SACoDataset

    transform = DistillTransform(resolution, teacher_size)
    labelled = PromptSampler(prompts)
    unlabelled = None
    log = FaultLog()
    parts: list[Dataset] = []
    spans: list[SourceSpan] = []
    for source in data_sources(data):
        files = training_files(source.root, log)
        start = sum(len(part) for part in parts)
        for annotation_files, images in files.saco:
            parts.append(
                SACoDataset(
                    annotation_files,
                    images,
                    transform=transform,
                    prompts=labelled,
                    seed=part_seed(seed, len(parts)),
                    fault_log=log,
                )
            )
        if files.sa1b is not None:
            if unlabelled is None:
                unlabelled = PromptSampler(
                    prompts, default_vocabulary() if vocabulary is None else vocabulary
                )
            parts.append(
                SA1BDataset(
                    files.sa1b,
                    max_masks=64,
                    transform=transform,
                    prompts=unlabelled,
                    seed=part_seed(seed, len(parts)),
                    fault_log=log,
                )
            )
        stop = sum(len(part) for part in parts)
        if stop == start:
            raise TrainingDataError(
                f"--data {source.root}: no training samples (SA-Co files without pairs, or no SA-1B pairs)"
            )
        spans.append(SourceSpan(files, source.weight, start, stop))
    dataset = parts[0] if len(parts) == 1 else ConcatSamples(parts, log)
    return IndexedDataset(dataset, limit, spans)


def epoch_order(count: int, seed: int, epoch: int) -> torch.Tensor:
    """The permutation of ``count`` samples visited in ``epoch``."""
    generator = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    return torch.randperm(count, generator=generator)


def image_groups(dataset: IndexedDataset) -> list[list[int]]:
    """Sample indices grouped by image, in dataset order (SA-Co: the pairs of one image; SA-1B:
    one sample per image). Read from the annotation index, no image is decoded."""
    inner = dataset.dataset
    if isinstance(inner, ConcatSamples):
        keys = inner.image_keys()
    else:
        keys = [entry["file_name"] for entry in inner.entries] if hasattr(inner, "entries") else None
    groups: dict[object, list[int]] = {}
    for index in range(len(dataset)):
        groups.setdefault(index if keys is None else keys[index], []).append(index)
    return list(groups.values())


def epoch_units(groups: list[list[int]], seed: int, epoch: int, per_image: int) -> list[list[int]]:
    """The units visited in ``epoch``: chunks of at most ``per_image`` samples of one image, in a
    random order (``per_image`` 1: single samples in a random permutation).

    Samples sharing an image in a micro-batch share the student's image encoder pass.
    """
    if per_image == 1:
        return [[index] for index in epoch_order(sum(map(len, groups)), seed, epoch).tolist()]
    generator = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    units = []
    for group in groups:
        shuffled = [group[i] for i in torch.randperm(len(group), generator=generator).tolist()]
        units += [shuffled[start : start + per_image] for start in range(0, len(shuffled), per_image)]
    return [units[i] for i in torch.randperm(len(units), generator=generator).tolist()]


def data_units(
    dataset: IndexedDataset, groups: list[list[int]], seed: int, epoch: int, per_image: int
) -> list[list[int]]:
    """The units visited in ``epoch``: :func:`epoch_units` for one ``--data`` root; for several,
    each root's share by weight.

    With roots of ``n_s`` units each (``N`` in all) and weights ``w_s``, an epoch holds
    ``round(N * w_s / sum(w))`` units of root ``s`` (at least 1): consecutive positions of that root's
    own stream of shuffled passes (pass ``c`` is :func:`epoch_units` of its units with its own seed at
    ``c``), so a root is visited without repeats until all of it has been seen, then again in a new
    order. The roots' units are then shuffled together (``(seed, epoch)``).
    """
    if len(dataset.sources) <= 1:
        return epoch_units(groups, seed, epoch, per_image)
    streams = []  # a root cut off by ``limit`` has no units and no share
    for number, span in enumerate(dataset.sources):
        mine = [group for group in groups if span.start <= group[0] < span.stop]
        streams.append((mine, span.weight, part_seed(seed, number + 1)))
    passes: dict[tuple[int, int], list[list[int]]] = {}

    def one_pass(number: int, cycle: int) -> list[list[int]]:
        if (number, cycle) not in passes:
            mine, _, own_seed = streams[number]
            units = epoch_units(mine, own_seed, cycle, per_image)
            if per_image == 1:  # epoch_units numbers single samples 0..n-1: back to their indices
                indices = sorted(index for group in mine for index in group)
                units = [[indices[unit[0]]] for unit in units]
            passes[(number, cycle)] = units
        return passes[(number, cycle)]

    sizes = [len(one_pass(number, 0)) for number in range(len(streams))]
    total, weights = (
        sum(sizes),
        sum(weight for (_, weight, _), size in zip(streams, sizes, strict=True) if size),
    )
    units = []
    for number, ((_, weight, _), size) in enumerate(zip(streams, sizes, strict=True)):
        if not size:
            continue
        share = max(1, round(total * weight / weights))
        for position in range(epoch * share, (epoch + 1) * share):
            cycle, offset = divmod(position, size)
            units.append(one_pass(number, cycle)[offset])
    generator = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    return [units[i] for i in torch.randperm(len(units), generator=generator).tolist()]


def rank_batches(units: list[list[int]], rank: int, world_size: int, units_per_batch: int) -> list[list[int]]:
    """Micro-batches (flat index lists) of ``rank``: every ``world_size``-th unit from ``rank``,
    truncated to equal length, ``units_per_batch`` units each; the incomplete last one is dropped."""
    per_rank = len(units) // world_size
    mine = units[rank::world_size][:per_rank]
    return [
        [index for unit in mine[start : start + units_per_batch] for index in unit]
        for start in range(0, per_rank - units_per_batch + 1, units_per_batch)
    ]


def share_images(batch: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
    """``(pixels of the distinct images [U, 3, H, W], owner [B])``: samples of the same image
    (same ``file_name`` / ``image_id``) point at one row."""
    from sam3spec.distill.targets import image_key

    keys = [image_key(batch, index) for index in range(batch["batch_size"])]
    unique = list(dict.fromkeys(keys))
    rows = torch.tensor([keys.index(key) for key in unique])
    return batch["image"].index_select(0, rows), torch.tensor([unique.index(key) for key in keys])


def student_inputs(batch: dict[str, Any], tokenizer, device: torch.device) -> dict[str, torch.Tensor]:
    """Student inputs for a mixed batch of text / point / box prompts: :meth:`Student.forward`'s
    keywords, except that ``pixel_values`` holds each distinct image once and ``image_index``
    ``[B]`` says which row each sample uses (:class:`~sam3spec.distill.task.DistillModel`).

    Text samples get their token ids; point / box samples get an all-padding text row (masked out
    everywhere) and their geometry; absent geometry is padded with label -1.
    """
    kinds = batch["prompt_type"]
    size = len(kinds)
    pixels, owner = share_images(batch)
    inputs: dict[str, torch.Tensor] = {"pixel_values": pixels.to(device), "image_index": owner.to(device)}
    if "text" in kinds:
        ids = tokenizer(
            [text if kind == "text" else "visual" for kind, text in zip(kinds, batch["text"], strict=True)]
        )
        ids[torch.tensor([kind != "text" for kind in kinds])] = 0
        inputs["input_ids"] = ids.to(device)
    for kind, coords_key, labels_key, name, width in (
        ("point", "points_xy", "point_labels", "points", 2),
        ("box", "prompt_boxes_xyxy", "prompt_box_labels", "boxes", 4),
    ):
        if kind not in kinds:
            continue
        count = max(len(batch[coords_key][index]) for index in range(size))
        coords = torch.full((size, count, width), 0.5)
        labels = torch.full((size, count), -1, dtype=torch.long)
        for index in range(size):
            if kinds[index] == kind:
                number = len(batch[coords_key][index])
                coords[index, :number] = batch[coords_key][index]
                labels[index, :number] = batch[labels_key][index]
        if width == 4:  # a padded box must still be ordered xyxy for the validation
            coords[labels == -1] = torch.tensor([0.25, 0.25, 0.75, 0.75])
        inputs[name] = coords.to(device)
        inputs[f"{kind}_labels"] = labels.to(device)
    return inputs
