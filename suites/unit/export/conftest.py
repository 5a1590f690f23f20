"""Fixtures of the export unit tests: a random tiny student (randomised BN) and its export wrappers."""

from __future__ import annotations

import pytest
import torch

from sam3spec.config import TINY_PRESET
from sam3spec.export.wrappers import ExportModules, export_modules
from sam3spec.models.build import build_student
from sam3spec.models.image_encoder import randomise_batch_norms
from sam3spec.models.student import Student


class EagerProgram:
    """``PteProgram``'s interface over eager wrappers."""

    def __init__(self, modules: ExportModules) -> None:
        config = modules.student.config
        self.modules = modules
        self.shapes = modules.shapes
        self.method_names = {"encode_image", "encode_text", "decode", "track"}
        self.metadata = {
            "preset": config.name,
            "image_size": config.image_size,
            "context_length": config.text.context_length,
            "tokenizer": config.text.model_name,
            "backend": "eager",
            "recipe": "none",
        }
        self.calls: list[str] = []

    def run(self, name, *inputs):
        self.calls.append(name)
        with torch.no_grad():
            return list(getattr(self.modules, name)(*inputs))


@pytest.fixture(scope="session")
def eager_program():
    """A factory: ``eager_program(modules)`` -> an :class:`EagerProgram`."""
    return EagerProgram


@pytest.fixture(scope="session")
def tiny_student() -> Student:
    torch.manual_seed(0)
    return randomise_batch_norms(build_student(TINY_PRESET).eval())


@pytest.fixture(scope="session")
def modules(tiny_student) -> ExportModules:
    """Wrappers with every delegation rewrite (what the XNNPACK export traces)."""
    return export_modules(tiny_student)


@pytest.fixture(scope="session")
def plain_modules(tiny_student) -> ExportModules:
    """Wrappers without the rewrites (Core ML / QNN, and the reference for the rewrites)."""
    return export_modules(tiny_student, rewrite=False)
