"""Shared fixtures of the data unit tests: one small concept world per session (read-only)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from sam3spec.world import WorldConfig, WorldPaths, generate_world

SMALL = WorldConfig(image_size=64, video_min_frames=36, video_max_frames=40)


@dataclass(frozen=True)
class SmallWorld:
    paths: WorldPaths
    config: WorldConfig
    seed: int
    num_images: int
    num_videos: int


@pytest.fixture(scope="session")
def small_world(tmp_path_factory: pytest.TempPathFactory) -> SmallWorld:
    """14 images (11 train / 3 eval) and 4 videos (3 train / 1 val) at 64 px; do not modify."""
    root = tmp_path_factory.mktemp("small_world")
    generate_world(root, 14, 4, seed=7, config=SMALL, progress=False)
    return SmallWorld(WorldPaths.of(root), SMALL, 7, 14, 4)
