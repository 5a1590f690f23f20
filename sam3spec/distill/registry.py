"""Stages by name, for the command line's ``--stage`` and :func:`get_stage`.

The registry starts with the distillation stages of the plan (:mod:`sam3spec.distill.stages`);
other stage sets register theirs: the video memory stage (:mod:`sam3spec.video.stage`, a stage
kind), the concept world's (:mod:`sam3spec.world.stages`). One registry holds both plain
``StageConfig`` s and stage kinds (:class:`~sam3spec.distill.tasks.StageKind`); each has a ``name``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Union

from sam3spec.distill.stages import PHASE1, PHASE2, STAGE3, StageConfig

if TYPE_CHECKING:
    from sam3spec.distill.tasks import StageKind

Stage = Union[StageConfig, "StageKind"]

STAGES: dict[str, Stage] = {stage.name: stage for stage in (PHASE1, PHASE2, STAGE3)}


def register_stage(stage: Stage) -> Stage:
    """Make ``stage`` known by its name; returns it.

    Raises:
        ValueError: another stage is registered under the same name.
    """
    if stage.name in STAGES and STAGES[stage.name] != stage:
        raise ValueError(f"another stage is already registered as {stage.name!r}")
    STAGES[stage.name] = stage
    return stage


def get_stage(name: str) -> Stage:
    """A registered stage by name; ``KeyError`` naming the known ones."""
    if name not in STAGES:
        raise KeyError(f"unknown stage {name!r}; known stages: {', '.join(sorted(STAGES))}")
    return STAGES[name]
