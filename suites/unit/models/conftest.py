"""Shared fixtures for the student model unit tests (tiny preset, built once per session)."""

from __future__ import annotations

import pytest
import torch

from sam3spec.config import TINY_PRESET
from sam3spec.models import Student, Tokenizer, build_student


@pytest.fixture(scope="session")
def tiny_student() -> Student:
    """A random tiny student in eval mode. Tests that change it must work on a deepcopy."""
    torch.manual_seed(0)
    return build_student(TINY_PRESET).eval()


@pytest.fixture(scope="session")
def tokenizer() -> Tokenizer:
    return Tokenizer("MobileCLIP-S1", context_length=32)


@pytest.fixture(scope="session")
def tiny_inputs(tokenizer: Tokenizer) -> dict[str, torch.Tensor]:
    """A batch of two 128 px images with text, box and point prompts."""
    generator = torch.Generator().manual_seed(1)
    return {
        "pixel_values": torch.randn(2, 3, 128, 128, generator=generator),
        "input_ids": tokenizer(["red circle", "blue square"]),
        "boxes": torch.tensor(
            [[[0.1, 0.1, 0.5, 0.6], [0.0, 0.0, 0.0, 0.0]], [[0.2, 0.3, 0.9, 0.8], [0.5, 0.5, 1.0, 1.0]]]
        ),
        "box_labels": torch.tensor([[1, -1], [1, 0]]),
        # Two points per image: with a single key, attention weights are constant (q/k get no gradient).
        "points": torch.tensor([[[0.3, 0.4], [0.6, 0.5]], [[0.7, 0.2], [0.1, 0.9]]]),
        "point_labels": torch.tensor([[1, 0], [1, -1]]),
    }
