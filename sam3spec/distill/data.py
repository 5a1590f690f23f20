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

from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from sam3spec.data.faults import Skipped
from sam3spec.data.layout import DataLayout
from sam3spec.data.prompts import PromptConfig, PromptSampler
from sam3spec.data.transforms import Normalization, ResizeNormalize, TransformConfig

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


class IndexedDataset(Dataset):
    """Adds ``index`` (the dataset position) to every sample; passes ``set_epoch`` through.

    Args:
        dataset: a fault-tolerant dataset.
        limit: expose only the first ``limit`` samples (smoke runs).
    """

    def __init__(self, dataset: Dataset, limit: int | None = None) -> None:
        self.dataset = dataset
        self.limit = limit

    def __len__(self) -> int:
        return len(self.dataset) if self.limit is None else min(self.limit, len(self.dataset))

    def set_epoch(self, epoch: int) -> None:
        self.dataset.set_epoch(epoch)

    @property
    def faults(self):
        return self.dataset.faults

    def __getitem__(self, index: int):
        sample = self.dataset[index]
        if isinstance(sample, Skipped):
            return sample
        sample["index"] = index
        return sample


def training_dataset(
    data: str | Path,
    resolution: int,
    prompts: PromptConfig,
    teacher_size: int | None = None,
    seed: int = 0,
    vocabulary: tuple[str, ...] = (),
    limit: int | None = None,
) -> IndexedDataset:
    """The training set of ``data`` with prompts and both views.

    ``data`` is a data root (:mod:`sam3spec.data.layout`) with SA-Co train files (its ``saco/train``
    split: phrases, positives and negatives, images in ``sa1b/train``), or an SA-1B folder (no
    phrases: text prompts need ``vocabulary``; targets come from the teacher).
    """
    transform = DistillTransform(resolution, teacher_size)
    sampler = PromptSampler(prompts, vocabulary)
    layout = DataLayout.of(data)
    saco_files = layout.saco_files("train")
    if saco_files:
        from sam3spec.data.saco import SACoDataset

        dataset = SACoDataset(saco_files, layout.sa1b_train, transform=transform, prompts=sampler, seed=seed)
    else:
        from sam3spec.data.sa1b import SA1BDataset

        dataset = SA1BDataset(data, max_masks=64, transform=transform, prompts=sampler, seed=seed)
    if len(dataset) == 0:
        raise FileNotFoundError(
            f"no training samples under {data} (a data root with saco/train/*.json, or an SA-1B folder)"
        )
    return IndexedDataset(dataset, limit)


def epoch_order(count: int, seed: int, epoch: int) -> torch.Tensor:
    """The permutation of ``count`` samples visited in ``epoch``."""
    generator = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    return torch.randperm(count, generator=generator)


def image_groups(dataset: IndexedDataset) -> list[list[int]]:
    """Sample indices grouped by image, in dataset order (SA-Co: the pairs of one image; SA-1B:
    one sample per image). Read from the annotation index, no image is decoded."""
    inner = dataset.dataset
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
