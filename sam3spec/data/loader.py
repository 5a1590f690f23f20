"""Batching: drop skipped samples, carry their problems, pin memory only on CUDA."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset

from sam3spec.data.faults import FaultLog, Skipped

# Same shape in every sample after ResizeNormalize: stacked. Everything else stays a list
# (instance counts, prompt sizes and strings vary per sample).
STACKED_KEYS = ("image", "frames")


def collate_samples(items: Sequence[dict[str, Any] | Skipped]) -> dict[str, Any]:
    """Collate good samples; skipped ones are dropped and their problems kept.

    Args:
        items: what the dataset returned for a batch of indices.

    Returns:
        ``{"batch_size": B, "skipped": [Problem, ...], key: stacked tensor | list, ...}`` with
        B = number of good samples (0 when all were bad: then only the first two keys).
    """
    good = [item for item in items if not isinstance(item, Skipped)]
    skipped = [problem for item in items if isinstance(item, Skipped) for problem in item.problems]
    batch: dict[str, Any] = {"batch_size": len(good), "skipped": skipped}
    if not good:
        return batch
    for key in good[0]:
        values = [sample[key] for sample in good]
        batch[key] = torch.stack(values) if key in STACKED_KEYS else values
    return batch


def pin_memory_for(device: str | torch.device) -> bool:
    """Pinned memory speeds host-to-CUDA copies; on MPS it breaks, on CPU it is useless."""
    return torch.device(device).type == "cuda"


def make_loader(
    dataset: Dataset,
    batch_size: int,
    device: str | torch.device = "cpu",
    shuffle: bool = False,
    num_workers: int = 0,
    seed: int = 0,
    drop_last: bool = False,
) -> DataLoader:
    """A ``DataLoader`` that survives bad samples (see :func:`collate_samples`).

    Args:
        dataset: a fault-tolerant dataset.
        batch_size: samples per batch before skipping.
        device: where batches go; decides ``pin_memory``.
        shuffle: reshuffle each epoch (seeded).
        num_workers: loader processes.
        seed: shuffling seed.
        drop_last: drop the last incomplete batch.
    """
    generator = torch.Generator()
    generator.manual_seed(seed)
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=shuffle,
        num_workers=num_workers,
        collate_fn=collate_samples,
        pin_memory=pin_memory_for(device),
        drop_last=drop_last,
        generator=generator,
        persistent_workers=False,
    )


def good_batches(loader: DataLoader, faults: FaultLog | None = None) -> Iterator[dict[str, Any]]:
    """Iterate non-empty batches, recording skipped problems in the main process.

    Args:
        loader: from :func:`make_loader`.
        faults: where to record; default the dataset's own ``faults`` (with workers, the main
            process's copy of the dataset only learns of problems this way).
    """
    if faults is None:
        faults = getattr(loader.dataset, "faults", None)
    for batch in loader:
        if faults is not None:
            faults.extend(batch["skipped"])
        if batch["batch_size"]:
            yield batch
