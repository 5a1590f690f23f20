"""Shared fixtures of the video unit tests: one random tiny student with a non-zero memory gate."""

from __future__ import annotations

import pytest
import torch

from sam3spec.config import TINY_PRESET
from sam3spec.models.student import build_student


@pytest.fixture(scope="session")
def video_student():
    """A random tiny student whose memory gate is open (0 would make memory a no-op). Read-only."""
    torch.manual_seed(0)
    student = build_student(TINY_PRESET).eval()
    with torch.no_grad():
        student.memory_attention.gate.fill_(0.5)
    return student
