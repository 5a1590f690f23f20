"""Fixtures shared by the gate suites."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from sam3spec.data.world import WorldConfig, WorldPaths, WorldSummary, generate_world

CONCEPT_WORLD_IMAGES = 200
CONCEPT_WORLD_VIDEOS = 10
CONCEPT_WORLD_SEED = 0


@dataclass(frozen=True)
class ConceptWorld:
    """A generated concept world (read-only for tests) and how long generating it took."""

    paths: WorldPaths
    config: WorldConfig
    seed: int
    num_images: int
    num_videos: int
    summary: WorldSummary


@pytest.fixture(scope="session")
def concept_world(tmp_path_factory: pytest.TempPathFactory) -> ConceptWorld:
    """The issue-3 world: 200 images + 10 videos, default config, seed 0, generated once per session
    (the generation time is the figure the data gate reports)."""
    root = tmp_path_factory.mktemp("concept_world")
    config = WorldConfig()
    summary = generate_world(
        root, CONCEPT_WORLD_IMAGES, CONCEPT_WORLD_VIDEOS, CONCEPT_WORLD_SEED, config, progress=False
    )
    return ConceptWorld(
        summary.paths, config, CONCEPT_WORLD_SEED, CONCEPT_WORLD_IMAGES, CONCEPT_WORLD_VIDEOS, summary
    )
