"""The video distillation stage as data: a stage kind (:class:`~sam3spec.distill.tasks.StageKind`)
holding a :class:`~sam3spec.distill.stages.StageConfig` (what trains, losses, schedule: the
trainer's own mechanism) plus the few fields only video needs. The trainer runs it like any stage
(``distill(VIDEO, RunOptions(...))``); its task is :class:`~sam3spec.video.task.MemoryTask`.

What prompts an object is the stage's choice (``prompt``), never the data folder's: SA-V as
released has no phrases, so the plan's ``VIDEO`` stage prompts each masklet with its box in the
first annotated frame where it is visible (the frame where the stream starts, as SA-V's own
protocol prompts its first frame); the concept world's ``video-world`` prompts with the object's
phrase, which only a concept world's ``world.json`` gives.

Only the Perceiver resampler and the gated memory cross-attention train
(``memory_resampler.*``, ``memory_attention.*``; ~1.86M parameters on the seed preset): the image
stages freeze exactly these, this stage freezes everything else. Targets are SA-V ground truth
(``targets="ground_truth"``: the prompted masklet, or each visible instance of the prompted phrase,
in the query frame is a query with probability 1), losses mask Dice + BCE, box L1 + GIoU, IoU token, presence, and the
query score (without it the memory could not move which instances pass the score threshold).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sam3spec.distill.options import RunOptions
from sam3spec.distill.registry import register_stage
from sam3spec.distill.stages import LossWeights, StageConfig
from sam3spec.distill.tasks import Setup, StageKind, Task
from sam3spec.models.video import CONTEXT_FRAMES

MEMORY_PARAMETERS = ("memory_resampler.*", "memory_attention.*")
VIDEO_LOSSES = LossWeights(semantic=0.0, fpn_feature=0.0, encoder_feature=0.0)
PROMPTS = ("box", "phrase")


@dataclass(frozen=True)
class VideoStage(StageKind):
    """A video distillation stage.

    Attributes:
        stage: the trainer's stage (trainable patterns, losses, matcher, schedule, seed).
        context_frames: T, annotated frames before the query that the memory reads.
        context_source: ``"student"``: the frozen student's own FPN level-3 maps of the context
            frames (what the memory reads at inference; the concept world's stage uses it
            by default), or ``"teacher_cache"``: cached teacher FPN level-3 features (the teacher
            cache, ``RunOptions.teacher_cache`` / ``--teacher-cache``;
            :mod:`sam3spec.video.teacher_context`, docs/VIDEO.md).
        samples_per_video: (query frame, object) samples drawn per video per epoch.
        prompt: ``"box"``: each masklet is prompted by its box in its first visible annotated frame
            (encoded on that frame's features, as :class:`~sam3spec.video.predictor.VideoPredictor`
            encodes a box on the stream's first frame) and its targets are that masklet alone;
            context slots before that frame are invalid (the stream starts there). ``"phrase"``:
            each object's phrase (``RunOptions.phrases``, a concept world's), targets every object
            with that phrase; slots before the video's start are invalid.
    """

    stage: StageConfig
    context_frames: int = CONTEXT_FRAMES
    context_source: str = "student"
    samples_per_video: int = 16
    prompt: str = "box"

    def __post_init__(self) -> None:
        if self.prompt not in PROMPTS:
            raise ValueError(f"prompt must be one of {', '.join(PROMPTS)}, got {self.prompt!r}")
        if self.context_source not in ("student", "teacher_cache"):
            raise ValueError(
                f"context_source must be 'student' or 'teacher_cache', got {self.context_source!r}"
            )
        if self.context_frames < 1 or self.samples_per_video < 1:
            raise ValueError("context_frames and samples_per_video must be >= 1")

    def check(self, options: RunOptions) -> None:
        """Before anything is written: ``options.data`` holds SA-V train videos; a phrase stage has
        phrases; a teacher-context stage has ``options.teacher_cache`` and a student-context stage
        none (it would be silently ignored).

        Raises:
            TrainingDataError: no SA-V train videos, or a phrase stage without phrases.
            TeacherContextError: naming the stage and the option.
        """
        from sam3spec.data.sources import TrainingDataError, video_training_folder
        from sam3spec.video.teacher_context import TeacherContextError

        if not isinstance(options.data, (str, Path)):
            raise TrainingDataError(f"stage {self.name!r} reads one SA-V folder; got several --data roots")
        video_training_folder(options.data)
        if self.prompt == "phrase" and not options.phrases:
            raise TrainingDataError(
                f"stage {self.name!r} prompts each object with its phrase, and --data {options.data} gives "
                "none (phrases come from a concept world's world.json; SA-V has none): run a box-prompted "
                "stage (--stage video) on SA-V"
            )

        if self.context_source == "teacher_cache" and options.teacher_cache is None:
            raise TeacherContextError(
                f"stage {self.name!r} reads its context from a teacher cache "
                "(context_source='teacher_cache'): pass --teacher-cache DIR "
                "(RunOptions.teacher_cache), made by `sam3spec teacher cache`"
            )
        if self.context_source == "student" and options.teacher_cache is not None:
            raise TeacherContextError(
                f"stage {self.name!r} reads the student's own context maps "
                f"(context_source='student') but a teacher cache was given ({options.teacher_cache}); "
                "add --context teacher_cache to use it"
            )

    def task(self, setup: Setup) -> Task:
        from sam3spec.video.task import MemoryTask

        return MemoryTask(setup, self)


VIDEO = register_stage(
    VideoStage(
        StageConfig(
            name="video",
            trainable=MEMORY_PARAMETERS,
            frozen=(),
            losses=VIDEO_LOSSES,
            targets="ground_truth",
            init_from="phase2",
            # docs/PLAN.md 4.3: 5 epochs, lr 1e-4, warm-up 200, batch 1 x gradient accumulation 4.
            batch_size=1,
            grad_accum=4,
            learning_rate=1e-4,
            warmup_steps=200,
            epochs=5,
            amp="off",  # fp32 on every device: the J&F figures of docs/VIDEO.md were measured so
        ),
        context_source="teacher_cache",
        prompt="box",
    )
)
