"""The full-size rehearsal's fixtures (machinery: ``harness/mission.py``). The run folder is
``$MISSION_DIR`` (default: a pytest temporary folder)."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

from harness.mission import WRITE_TEACHER, WRITE_TOWERS, Chain, Layouts, write_layouts


@pytest.fixture(scope="session")
def chain(tmp_path_factory: pytest.TempPathFactory) -> Chain:
    root = os.environ.get("MISSION_DIR")
    return Chain(Path(root) if root else tmp_path_factory.mktemp("mission"))


@pytest.fixture(scope="session")
def layouts(chain: Chain) -> Layouts:
    return write_layouts(chain.root)


@pytest.fixture(scope="session")
def hub_teacher(chain: Chain) -> Path:
    """The full-size ``Sam3VideoModel(Sam3VideoConfig())`` with random weights, written as the
    hub's ``facebook/sam3`` (``config.json`` + ``model.safetensors``, fp32)."""
    folder = chain.root / "sam3"
    done = chain.records.get("write_teacher") is not None and chain.records["write_teacher"].ok
    if not done and not chain.report_only:
        shutil.rmtree(folder, ignore_errors=True)
    chain.run("write_teacher", [sys.executable, "-c", WRITE_TEACHER, str(folder)])
    chain.require("write_teacher")
    return folder


@pytest.fixture(scope="session")
def towers(chain: Chain) -> Path:
    """RepViT-M2.3 (timm) and MobileCLIP-S1 (open_clip) files in their published layouts."""
    folder = chain.root / "towers"
    chain.run("write_towers", [sys.executable, "-c", WRITE_TOWERS, str(folder)])
    chain.require("write_towers")
    return folder
