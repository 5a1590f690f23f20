"""Several fault-tolerant datasets read as one (several SA-Co files, several ``--data`` roots).

Sample ``i`` of the whole is sample ``i - offset`` of the part holding it. Two parts may hold the
same file name (``sa_000001.jpg`` in two roots) for different images, so every sample's image
identity (``file_name``, ``image_id``) is prefixed with its part (``"2/sa_000001.jpg"``): samples of
different images never share an image encoder pass or a cached target.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from typing import Any

from torch.utils.data import Dataset

from sam3spec.data.base import FaultTolerantDataset
from sam3spec.data.faults import FaultLog, Skipped


class ConcatSamples(Dataset):
    """The parts' samples one after the other; ``set_epoch`` reaches every part.

    Args:
        parts: the datasets (each with its own seed, so their prompt draws differ).
        fault_log: the log the parts record into (``self.faults``).
    """

    def __init__(self, parts: Sequence[FaultTolerantDataset], fault_log: FaultLog) -> None:
        self.parts = list(parts)
        self.faults = fault_log
        self.offsets = [0]
        for part in self.parts:
            self.offsets.append(self.offsets[-1] + len(part))

    def __len__(self) -> int:
        return self.offsets[-1]

    def set_epoch(self, epoch: int) -> None:
        for part in self.parts:
            part.set_epoch(epoch)

    def locate(self, index: int) -> tuple[int, int]:
        """``(part, index within it)`` of sample ``index``."""
        if not 0 <= index < len(self):
            raise IndexError(f"sample {index} out of range for {len(self)} samples")
        part = bisect.bisect_right(self.offsets, index) - 1
        return part, index - self.offsets[part]

    def image_keys(self) -> list[str]:
        """Per sample, the identity of its image (read from the parts' indexes; nothing decoded):
        a SA-Co pair's file name, else the sample itself."""
        keys = []
        for number, part in enumerate(self.parts):
            entries = getattr(part, "entries", None)
            for local in range(len(part)):
                name = entries[local]["file_name"] if entries is not None else f"#{local}"
                keys.append(f"{number}/{name}")
        return keys

    def __getitem__(self, index: int) -> dict[str, Any] | Skipped:
        number, local = self.locate(index)
        sample = self.parts[number][local]
        if isinstance(sample, Skipped):
            return Skipped(index, sample.problems)
        for key in ("file_name", "image_id"):
            if sample.get(key) is not None:
                sample[key] = f"{number}/{sample[key]}"
        return sample
