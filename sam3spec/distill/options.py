"""Where a run reads and writes, and how it runs: :class:`RunOptions` (not part of a stage's identity).

Every stage kind (image distillation, video memory, QAT) takes the same options; a field a kind
does not read is ignored by it (``phrases`` is read by video stages only; several ``data`` roots
and ``vocabulary`` by image stages only; ``teacher_cache`` by both, each in its own cache kind).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sam3spec.data.sources import DataSource


@dataclass
class RunOptions:
    """Where a stage reads and writes, and how it runs.

    Attributes:
        data: a data root (:mod:`sam3spec.data.layout`), an SA-Co folder or an SA-1B folder
            (:mod:`sam3spec.data.sources`), or for image stages several of them mixed by weight
            (a sequence of :class:`~sam3spec.data.sources.DataSource`); for a video stage an SA-V
            train folder as released or a data root (its ``sav/train``).
        out: the run directory.
        teacher: teacher folder (required by stages whose targets come from a teacher).
        init: student checkpoint to start from, or None (loaded into the stage's student and
            reported, :mod:`sam3spec.distill.initial`: modules it lacks start fresh, but a key it
            has that the student lacks, or has at another shape, is an error unless
            ``allow_partial``; video stages also refuse a missing frozen key or another student
            config).
        allow_partial: load what fits of an ``init`` checkpoint made for another student.
        pretrained_backbone: RepViT weights file for a fresh student (local file).
        pretrained_text: MobileCLIP text-tower weights file for a fresh student (local file).
        resume: continue from the run directory's latest checkpoint.
        max_steps: stop after this many optimizer steps (debug / smoke runs).
        limit: use only the first ``limit`` samples (video stages: videos).
        device: ``cpu`` / ``cuda`` / ``mps``; None auto-detects.
        cache_targets: cache the teacher's targets once per run (else compute them every batch).
        tensorboard: write TensorBoard scalars (and pictures with ``visualize_every``).
        progress: show a tqdm bar.
        step_pause: seconds to sleep after each step (tests interrupt a run mid-way).
        threads: torch CPU threads (None: leave as they are).
        phrases: ``{video_id: [phrase of object 0, ...]}`` for video stages (SA-V has no phrases;
            the concept world's come from its manifest, :func:`sam3spec.world.manifest.object_phrases`).
        vocabulary: phrases for text prompts on SA-1B images (no phrases of their own; the teacher
            decides what each phrase names); None: the shipped LVIS + COCO category names
            (:mod:`sam3spec.data.vocabulary`). Not used by stages trained on labels.
        teacher_cache: teacher cache folder (``sam3spec teacher cache``). Image stages that distil
            from a teacher read their targets from it (made with ``--stage``,
            :mod:`sam3spec.distill.store`) instead of running the teacher; for a video stage its
            per-video level-3 maps are the context frames (required by, and only allowed with, a
            video stage whose ``context_source`` is ``"teacher_cache"``).
    """

    data: Path | Sequence[DataSource]
    out: Path
    teacher: str | None = None
    init: Path | None = None
    allow_partial: bool = False
    pretrained_backbone: Path | None = None
    pretrained_text: Path | None = None
    resume: bool = False
    max_steps: int | None = None
    limit: int | None = None
    device: str | None = None
    cache_targets: bool = True
    tensorboard: bool = True
    progress: bool = True
    step_pause: float = 0.0
    threads: int | None = None
    phrases: Mapping[str, Sequence[str]] = field(default_factory=dict)
    vocabulary: Sequence[str] | None = None
    teacher_cache: Path | None = None
