"""Bad data never kills a run: problems are named, warned about once, counted, and skipped.

Every loader and ``sam3spec data verify`` share this vocabulary:

* a :class:`Problem` names a file, a fault kind (one of :data:`FAULT_KINDS`) and where in the file
  it is (``"annotation 17"``, ``"frame 12"``, or ``""`` for the whole file);
* readers raise :class:`DataFault` carrying the problems of one sample;
* a dataset's ``__getitem__`` turns that into a :class:`Skipped` item and records the problems in
  its :class:`FaultLog` (one warning per new problem);
* :func:`sam3spec.data.loader.collate_samples` drops ``Skipped`` items and hands their problems to
  the training loop inside the batch, so counts survive ``DataLoader`` worker processes.

Why skip-at-load instead of validating everything when a dataset is built: a full check means
decoding every JPEG, RLE and MP4 up front (hours for SA-1B's 11M images), and some faults (a
truncated JPEG payload) only show when decoding. ``verify`` is the eager full scan; loaders are
lazy and tolerant, and both call the same reader functions, so they agree on what is a fault.
"""

from __future__ import annotations

import warnings
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from torch.utils.data import get_worker_info

MISSING_FILE = "missing_file"
MISSING_JSON = "missing_json"
BAD_JSON = "bad_json"
BAD_ANNOTATION = "bad_annotation"
TRUNCATED_IMAGE = "truncated_image"
UNREADABLE_IMAGE = "unreadable_image"
MALFORMED_RLE = "malformed_rle"
SIZE_MISMATCH = "size_mismatch"
EMPTY_VIDEO = "empty_video"
UNREADABLE_VIDEO = "unreadable_video"

FAULT_KINDS = (
    MISSING_FILE,
    MISSING_JSON,
    BAD_JSON,
    BAD_ANNOTATION,
    TRUNCATED_IMAGE,
    UNREADABLE_IMAGE,
    MALFORMED_RLE,
    SIZE_MISMATCH,
    EMPTY_VIDEO,
    UNREADABLE_VIDEO,
)


class DataFaultWarning(UserWarning):
    """Warned once per new problem when a loader skips a bad sample."""


@dataclass(frozen=True)
class Problem:
    """One fault in one file.

    Attributes:
        path: the file at fault (as given to the loader).
        kind: one of :data:`FAULT_KINDS`.
        where: the place inside the file (``"annotation 3"``), or ``""`` for the whole file.
        detail: a human explanation; not part of the identity of the problem.
    """

    path: str
    kind: str
    where: str = ""
    detail: str = ""

    @property
    def key(self) -> tuple[str, str, str]:
        """Identity used to count a problem once, however many samples it spoils."""
        return (self.path, self.kind, self.where)

    def __str__(self) -> str:
        where = f" ({self.where})" if self.where else ""
        detail = f": {self.detail}" if self.detail else ""
        return f"{self.kind} {self.path}{where}{detail}"

    def to_dict(self) -> dict[str, str]:
        return {"path": self.path, "kind": self.kind, "where": self.where, "detail": self.detail}


class DataFault(Exception):
    """Raised by readers: the sample cannot be used. Carries one or more problems."""

    def __init__(self, problems: Problem | Iterable[Problem]) -> None:
        self.problems: tuple[Problem, ...] = (problems,) if isinstance(problems, Problem) else tuple(problems)
        if not self.problems:
            raise ValueError("DataFault needs at least one problem")
        super().__init__("; ".join(str(problem) for problem in self.problems))


@dataclass(frozen=True)
class Skipped:
    """What a dataset returns in place of a bad sample (picklable, so it crosses workers)."""

    index: int
    problems: tuple[Problem, ...]


class FaultLog:
    """Counts problems once each and warns once per new problem.

    Inside a ``DataLoader`` worker it records silently: the problems travel to the main process
    in the batch (:func:`sam3spec.data.loader.good_batches` records them there and warns), so each
    problem is warned about once, not once per process.

    Attributes:
        problems: every distinct problem recorded, in the order first seen.
    """

    def __init__(self, warn: bool = True) -> None:
        self.problems: list[Problem] = []
        self._keys: set[tuple[str, str, str]] = set()
        self.warn = warn

    def record(self, problem: Problem) -> bool:
        """Record ``problem``; returns True (and warns) if it was not seen before."""
        if problem.key in self._keys:
            return False
        self._keys.add(problem.key)
        self.problems.append(problem)
        if self.warn and get_worker_info() is None:
            warnings.warn(f"skipping bad data: {problem}", DataFaultWarning, stacklevel=3)
        return True

    def extend(self, problems: Iterable[Problem]) -> int:
        """Record several problems; returns how many were new."""
        return sum(self.record(problem) for problem in problems)

    def __len__(self) -> int:
        return len(self.problems)

    def __iter__(self) -> Iterator[Problem]:
        return iter(self.problems)

    def __contains__(self, problem: object) -> bool:
        return isinstance(problem, Problem) and problem.key in self._keys

    def counts_by_kind(self) -> dict[str, int]:
        """``{kind: count}`` for the kinds present."""
        return dict(Counter(problem.kind for problem in self.problems))

    def files(self) -> list[str]:
        """The distinct files named by problems, in first-seen order."""
        return list(dict.fromkeys(problem.path for problem in self.problems))
