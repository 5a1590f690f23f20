"""The fault-tolerant ``Dataset`` base: load, skip-and-count on a fault, transform, add prompts."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from sam3spec.data.faults import DataFault, FaultLog, Skipped

Sample = dict[str, Any]


class FaultTolerantDataset(Dataset):
    """Subclasses implement :meth:`load`; ``__getitem__`` never raises for bad data.

    Each item gets its own random stream ``default_rng([seed, epoch, index])`` (for clip and
    prompt sampling), so results do not depend on worker count or iteration order; call
    :meth:`set_epoch` to draw new clips and prompts each epoch.

    Args:
        transform: applied to the raw sample (e.g. :class:`~sam3spec.data.transforms.ResizeNormalize`).
        prompts: ``prompts(sample, rng)`` adds prompt keys (:class:`~sam3spec.data.prompts.PromptSampler`).
        seed: base seed.
        fault_log: where problems are recorded (a new one if None); ``self.faults``.
    """

    def __init__(
        self,
        transform: Callable[[Sample], Sample] | None = None,
        prompts: Callable[[Sample, np.random.Generator], Sample] | None = None,
        seed: int = 0,
        fault_log: FaultLog | None = None,
    ) -> None:
        self.transform = transform
        self.prompts = prompts
        self.seed = seed
        self.epoch = 0
        self.faults = fault_log if fault_log is not None else FaultLog()

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def rng(self, index: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, self.epoch, index])

    def load(self, index: int, rng: np.random.Generator) -> Sample:
        """The raw sample (uint8 pixels, masks at image size). Raises :class:`DataFault`."""
        raise NotImplementedError

    def raw(self, index: int) -> Sample:
        """:meth:`load` without transforms or prompts; raises :class:`DataFault` (for checks)."""
        return self.load(index, self.rng(index))

    def __getitem__(self, index: int) -> Sample | Skipped:
        rng = self.rng(index)
        try:
            sample = self.load(index, rng)
        except DataFault as fault:
            self.faults.extend(fault.problems)
            return Skipped(index, fault.problems)
        if self.transform is not None:
            sample = self.transform(sample)
        if self.prompts is not None:
            sample = self.prompts(sample, rng)
        return sample


def to_image_tensor(image: np.ndarray) -> torch.Tensor:
    """``[H, W, 3]`` uint8 -> ``[3, H, W]`` uint8 tensor (or ``[T, H, W, 3]`` -> ``[T, 3, H, W]``)."""
    return torch.from_numpy(np.ascontiguousarray(np.moveaxis(image, -1, -3)))


def subsample(count: int, limit: int | None, rng: np.random.Generator) -> np.ndarray:
    """Indices of at most ``limit`` of ``count`` items (all, in order, when under the limit)."""
    if limit is None or count <= limit:
        return np.arange(count)
    return np.sort(rng.choice(count, size=limit, replace=False))
