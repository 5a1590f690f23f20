"""Fixtures for the distillation unit tests: a tiny world, a tiny random teacher, a tiny student.

Sizes are chosen so that a training step takes milliseconds: a 64 px world, the teacher
architecture ``TINY`` (56 px, 8 queries), the ``efficientsam3-tiny`` student at 64 px.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from sam3spec.config import TINY_PRESET, get_preset, override
from sam3spec.world import WorldConfig, generate_world

TINY_WORLD = WorldConfig(image_size=64)
RESOLUTION = 64


@pytest.fixture(scope="session")
def distill_world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 64 px concept world: 12 images (10 train, 2 eval), no videos."""
    root = tmp_path_factory.mktemp("distill_world")
    generate_world(root, num_images=12, num_videos=0, seed=0, config=TINY_WORLD, progress=False)
    return root


@pytest.fixture(scope="session")
def stand_in_teacher_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A randomly initialised tiny SAM 3 (detector + tracker) in the sam3spec teacher layout."""
    from sam3spec.teacher.architecture import TINY
    from sam3spec.teacher.hf_models import build_models
    from sam3spec.teacher.loading import save_teacher

    detector, tracker = build_models(TINY, seed=0)
    return save_teacher(tmp_path_factory.mktemp("teacher") / "tiny", detector, tracker, {"kind": "test"})


@pytest.fixture(scope="session")
def stand_in_teacher(stand_in_teacher_dir: Path):
    from sam3spec.teacher.loading import load_teacher

    return load_teacher(stand_in_teacher_dir, dtype=torch.float32)


@pytest.fixture
def tiny_student():
    from sam3spec.models.build import build_student

    torch.manual_seed(0)
    return build_student(override(get_preset(TINY_PRESET), {"image_size": RESOLUTION}))


@pytest.fixture(scope="session")
def tokenizer():
    from sam3spec.models.text_encoder import Tokenizer

    return Tokenizer(get_preset(TINY_PRESET).text)
