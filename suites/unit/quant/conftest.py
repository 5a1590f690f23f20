"""Fixtures of the quantization unit tests: a random tiny student and a small concept world."""

from __future__ import annotations

import pytest
import torch

from sam3spec.config import TINY_PRESET
from sam3spec.models.build import build_student
from sam3spec.models.student import Student


@pytest.fixture(scope="session")
def tiny_student() -> Student:
    """A random tiny student in eval mode; tests that change it work on a deepcopy."""
    torch.manual_seed(0)
    return build_student(TINY_PRESET).eval()


@pytest.fixture(scope="session")
def small_world(tmp_path_factory: pytest.TempPathFactory):
    """A 10-image concept world (2 eval images), no videos."""
    from sam3spec.world import generate_world

    root = tmp_path_factory.mktemp("quant_world")
    generate_world(root, 10, 0, 0, progress=False)
    return root
