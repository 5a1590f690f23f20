"""The video distillation stage as data: a :class:`~sam3spec.distill.stages.StageConfig` (what
trains, losses, schedule: the engine's own mechanism) plus the few fields only video needs.

Only the Perceiver resampler and the gated memory cross-attention train
(``memory_resampler.*``, ``memory_attention.*``; ~1.86M parameters on the seed preset): the image
stages freeze exactly these, this stage freezes everything else. Targets are SA-V ground truth
(``targets="ground_truth"``: each visible instance of the prompted phrase in the query frame is a
query with probability 1), losses mask Dice + BCE, box L1 + GIoU, IoU token, presence, and the
query score (without it the memory could not move which instances pass the score threshold).
"""

from __future__ import annotations

from dataclasses import dataclass

from sam3spec.distill.stages import LossWeights, StageConfig
from sam3spec.models.video import CONTEXT_FRAMES

MEMORY_PARAMETERS = ("memory_resampler.*", "memory_attention.*")
VIDEO_LOSSES = LossWeights(semantic=0.0, fpn_feature=0.0, encoder_feature=0.0)


@dataclass(frozen=True)
class VideoStage:
    """A video distillation stage.

    Attributes:
        stage: the engine's stage (trainable patterns, losses, matcher, schedule, seed).
        context_frames: T, annotated frames before the query that the memory reads.
        context_source: ``"student"``: the frozen student's own FPN level-3 maps of the context
            frames (what the memory reads at inference; the concept world's stage uses it
            by default), or ``"teacher_cache"``: cached teacher FPN level-3 features (the teacher
            cache, ``VideoRunOptions.teacher_cache`` / ``--teacher-cache``;
            :mod:`sam3spec.video.teacher_context`, docs/VIDEO.md).
        samples_per_video: (query frame, phrase) samples drawn per video per epoch.
    """

    stage: StageConfig
    context_frames: int = CONTEXT_FRAMES
    context_source: str = "student"
    samples_per_video: int = 16

    def __post_init__(self) -> None:
        if self.context_source not in ("student", "teacher_cache"):
            raise ValueError(f"context_source must be 'student' or 'teacher_cache', got {self.context_source!r}")
        if self.context_frames < 1 or self.samples_per_video < 1:
            raise ValueError("context_frames and samples_per_video must be >= 1")

    @property
    def name(self) -> str:
        return self.stage.name


VIDEO = VideoStage(
    StageConfig(
        name="video",
        trainable=MEMORY_PARAMETERS,
        frozen=(),
        losses=VIDEO_LOSSES,
        targets="ground_truth",
        init_from="phase2",
        batch_size=8,
        grad_accum=1,
        learning_rate=1e-4,
        warmup_steps=200,
        epochs=2,
    ),
    context_source="teacher_cache",
)
VIDEO_STAGES: dict[str, VideoStage] = {VIDEO.name: VIDEO}


def register_video_stage(stage: VideoStage) -> VideoStage:
    """Make ``stage`` known to :func:`get_video_stage` (and the command line) by its name."""
    if stage.name in VIDEO_STAGES and VIDEO_STAGES[stage.name] != stage:
        raise ValueError(f"another video stage is already registered as {stage.name!r}")
    VIDEO_STAGES[stage.name] = stage
    return stage


def get_video_stage(name: str) -> VideoStage:
    if name not in VIDEO_STAGES:
        raise KeyError(f"unknown video stage {name!r}; known: {', '.join(sorted(VIDEO_STAGES))}")
    return VIDEO_STAGES[name]
