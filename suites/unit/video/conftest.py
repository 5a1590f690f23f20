"""Shared fixtures of the video unit tests: one random tiny student with a non-zero memory gate."""

from __future__ import annotations

import pytest
import torch

from sam3spec.config import TINY_PRESET
from sam3spec.models.build import build_student


@pytest.fixture(scope="session")
def video_student():
    """A random tiny student whose memory gate is open (0 would make memory a no-op). Read-only."""
    torch.manual_seed(0)
    student = build_student(TINY_PRESET).eval()
    with torch.no_grad():
        student.memory_attention.gate.fill_(0.5)
    return student


@pytest.fixture(scope="session")
def video_world(tmp_path_factory):
    """A small concept world: 2 images, 5 videos (4 train mp4, 1 val frames), seed 3."""
    from sam3spec.world import WorldConfig, generate_world

    root = tmp_path_factory.mktemp("video_world")
    generate_world(root, 2, 5, 3, WorldConfig(), progress=False)
    return root
