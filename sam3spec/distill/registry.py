"""Stages by name: MISSION.md's (:mod:`sam3spec.distill.stages`) and their concept-world versions
(:mod:`sam3spec.distill.world_stages`), for the CLI's ``--stage`` and :func:`get_stage`."""

from __future__ import annotations

from sam3spec.distill.stages import PHASE1, PHASE2, STAGE3, StageConfig
from sam3spec.distill.world_stages import PHASE1_WORLD, PHASE2_WORLD, STAGE3_WORLD

STAGES: dict[str, StageConfig] = {
    stage.name: stage for stage in (PHASE1, PHASE2, STAGE3, PHASE1_WORLD, PHASE2_WORLD, STAGE3_WORLD)
}


def get_stage(name: str) -> StageConfig:
    """A registered stage by name; ``KeyError`` naming the known ones."""
    if name not in STAGES:
        raise KeyError(f"unknown stage {name!r}; known stages: {', '.join(sorted(STAGES))}")
    return STAGES[name]
