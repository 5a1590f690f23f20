"""Fixtures shared by the gate suites."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from sam3spec.world import WorldConfig, WorldPaths, WorldSummary, generate_world

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
    """The data gate's world: 200 images + 10 videos, default config, seed 0, generated once per session
    (the generation time is the figure the data gate reports)."""
    root = tmp_path_factory.mktemp("concept_world")
    config = WorldConfig()
    summary = generate_world(
        root, CONCEPT_WORLD_IMAGES, CONCEPT_WORLD_VIDEOS, CONCEPT_WORLD_SEED, config, progress=False
    )
    return ConceptWorld(
        summary.paths, config, CONCEPT_WORLD_SEED, CONCEPT_WORLD_IMAGES, CONCEPT_WORLD_VIDEOS, summary
    )


@pytest.fixture(scope="session")
def distill_run(run_dir):
    """A distillation run directory (``phase1/``, ``phase2/``, ``metrics.json``): ``--run-dir`` when
    given, else the concept-world main job in ``runs/concept-world`` (world -> shipped teacher ->
    Phase 1 -> Phase 2 -> student vs teacher; minutes on a CPU), reused when its configuration
    hash matches (``pipeline.json``). Returns ``(path, problem)``: ``problem`` says why there is
    no run (e.g. the shipped teacher is missing), else None."""
    from pathlib import Path

    from sam3spec.teacher.loading import TeacherLoadError
    from sam3spec.world.pipeline import DEFAULT_RUN_DIR, run_pipeline

    if run_dir is not None:
        return Path(run_dir), None
    out = Path(__file__).resolve().parents[2] / DEFAULT_RUN_DIR
    try:
        run_pipeline(out, progress=False)
    except TeacherLoadError as error:
        return out, f"no teacher to distil from: {error}"
    return out, None


@pytest.fixture(scope="session")
def trained_student(run_dir):
    """``(checkpoint, world)`` of the best trained concept-world student found, and where it looked.

    Stage 3's final weights first, then Phase 2's, then Phase 1's; in ``--run-dir`` first, then in the
    distillation pipeline's default folder.
    """
    from pathlib import Path

    trained_run = Path(__file__).resolve().parents[2] / "runs" / "concept-world"
    roots = [Path(root) for root in (run_dir, trained_run) if root is not None]
    looked = []
    for stage in ("stage3", "phase2", "phase1"):
        for root in roots:
            candidate = root / stage / "final"
            looked.append(candidate)
            world = root / "world"
            if (candidate / "model.safetensors").is_file() and (world / "world.json").is_file():
                return candidate, world, looked
    return None, None, looked
