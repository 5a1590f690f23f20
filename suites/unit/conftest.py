"""Fixtures shared by the unit suites (session-scoped, built only when a test asks): a tiny random
SAM 3 teacher saved once, two small concept worlds and one copied into plain SA-1B / SA-Co folders
(read-only for tests)."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

from sam3spec.world import WorldConfig, WorldPaths, generate_world

TINY_WORLD = WorldConfig(
    image_size=64, video_min_frames=8, video_max_frames=8, video_min_objects=2, video_max_objects=2
)
SMALL = WorldConfig(image_size=64, video_min_frames=36, video_max_frames=40)


@pytest.fixture(scope="session")
def tiny_teacher_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random tiny teacher in the sam3spec layout (``detector/`` + ``tracker/``), fp32."""
    from sam3spec.teacher.architecture import TINY
    from sam3spec.teacher.hf_models import build_models
    from sam3spec.teacher.loading import save_teacher

    detector, tracker = build_models(TINY, seed=0)
    return save_teacher(tmp_path_factory.mktemp("teacher") / "tiny", detector, tracker, {"kind": "test"})


@pytest.fixture(scope="session")
def tiny_teacher(tiny_teacher_dir: Path):
    from sam3spec.teacher.loading import load_teacher

    return load_teacher(tiny_teacher_dir, dtype=torch.float32)


@pytest.fixture(scope="session")
def tiny_world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 64 px concept world: 10 images (8 train, 2 eval) and 3 videos of 8 frames."""
    root = tmp_path_factory.mktemp("world")
    generate_world(root, num_images=10, num_videos=3, seed=0, config=TINY_WORLD, progress=False)
    return root


@dataclass(frozen=True)
class PlainLayouts:
    """The train split of a concept world copied into the layouts real data comes in (no
    ``world.json``, no data-root trees): ``sa1b`` (``sa_*.jpg`` + ``sa_*.json`` pairs in one folder),
    ``saco`` (the Silver file with the images it names beside it), ``negatives`` (the same SA-Co
    folder with every annotation removed: all pairs negative)."""

    sa1b: Path
    saco: Path
    negatives: Path


@pytest.fixture(scope="session")
def plain_layouts(tiny_world: Path, tmp_path_factory: pytest.TempPathFactory) -> PlainLayouts:
    """:class:`PlainLayouts` of ``tiny_world`` (8 train images, 8 x ~5 pairs); do not modify."""
    root = tmp_path_factory.mktemp("plain_layouts")
    train = tiny_world / "sa1b" / "train"
    shutil.copytree(train, root / "sa1b")
    silver = next((tiny_world / "saco" / "train").glob("*.json"))
    shutil.copytree(train, root / "saco", ignore=shutil.ignore_patterns("sa_*.json"))
    shutil.copy(silver, root / "saco" / silver.name)
    shutil.copytree(root / "saco", root / "negatives")
    record = json.loads(silver.read_text())
    record["annotations"] = []
    (root / "negatives" / silver.name).write_text(json.dumps(record))
    return PlainLayouts(root / "sa1b", root / "saco", root / "negatives")


@pytest.fixture(scope="session")
def pixels() -> torch.Tensor:
    """Two random uint8 images, 64 px."""
    return torch.randint(
        0, 256, (2, 3, 64, 64), generator=torch.Generator().manual_seed(0), dtype=torch.uint8
    )


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


DEMO_SPECS = """
- id: demo.size
  what: size of the program
  metric: mb
  op: "<"
  value: 50
  goal: 40
  unit: MB
  source: test
  measured_on: any
- id: demo.latency_phone
  what: latency on a phone
  metric: ms
  op: "<"
  value: 100
  source: test
  measured_on: device
- id: demo.accuracy
  what: accuracy
  metric: ratio
  op: ">="
  value: 0.85
  source: test
  measured_on: any
"""


@pytest.fixture
def specs(tmp_path: Path) -> dict:
    """Three demo spec entries (a size with a goal, a phone latency, an accuracy ratio) by id."""
    from sam3spec.report import load_spec_file

    path = tmp_path / "demo.yaml"
    path.write_text(DEMO_SPECS)
    return {spec.id: spec for spec in load_spec_file(path)}
