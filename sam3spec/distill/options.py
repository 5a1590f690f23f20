"""Where a run reads and writes, and how it runs: :class:`RunOptions` (not part of a stage's identity).

Every stage kind (image distillation, video memory, QAT) takes the same options; a field a kind
does not read is ignored by it (``phrases`` and ``teacher_cache`` are read by video stages only).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class RunOptions:
    """Where a stage reads and writes, and how it runs.

    Attributes:
        data: a data root with SA-Co train files (:mod:`sam3spec.data.layout`) or an SA-1B folder;
            for a video stage an SA-V train folder or a data root (its ``sav/train``).
        out: the run directory.
        teacher: teacher folder (required by stages whose targets come from a teacher).
        init: student checkpoint to start from, or None (image stages load it ``strict=False``
            into the stage's student and report; video stages load it as it is).
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
        teacher_cache: teacher cache folder (``sam3spec teacher cache``) whose per-video level-3
            maps are a video stage's context frames; required by (and only allowed with) a video
            stage whose ``context_source`` is ``"teacher_cache"``.
    """

    data: Path
    out: Path
    teacher: str | None = None
    init: Path | None = None
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
    teacher_cache: Path | None = None
