"""What the product takes as arguments, derived from a concept world.

The product never reads ``world.json`` or generates a world: export takes calibration images,
parity samples and a vocabulary (:class:`~sam3spec.export.pipeline.ExportInputs`), training and
evaluation take data roots and phrases. This module makes them from a world.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

from sam3spec.data.saco import GoldImage, gold_images
from sam3spec.world.generate import WorldPaths

SCRATCH_IMAGES = 24  # a world generated for export when none is given: 24 images, seed 0


def world_images(world: str | Path, limit: int | None = None) -> list[GoldImage]:
    """The held-out eval images of a world with their phrases and instances (Gold annotator a).

    Raises:
        FileNotFoundError: ``world`` is not a generated world.
    """
    paths = WorldPaths.of(world)
    if not paths.saco_eval[0].is_file():
        raise FileNotFoundError(
            f"{paths.saco_eval[0]} not found: generate a concept world first (sam3spec data generate --out {world})"
        )
    return list(gold_images(paths.saco_eval[0], paths.sa1b_eval, limit))


@dataclass(frozen=True)
class WorldExportInputs:
    """Export inputs from a concept world (an :class:`~sam3spec.export.artifacts.InputSource`).

    Calibration: the first 16 training images; parity: 6 (image, phrase) samples of the eval split;
    phrases: every phrase the world can ask (the text table's vocabulary).

    Attributes:
        world: a generated world, or None: a small one (24 images, seed 0) is generated in a
            temporary folder.
    """

    world: str | Path | None = None

    @property
    def key(self) -> str:
        return (
            "generated concept world (24 images, seed 0)"
            if self.world is None
            else f"concept world {self.world}"
        )

    def __call__(self, image_size: int):
        if self.world is not None:
            return self._from(Path(self.world), image_size)
        from sam3spec.world.generate import generate_world

        with tempfile.TemporaryDirectory(prefix="sam3spec-world-") as scratch:
            generate_world(Path(scratch) / "world", SCRATCH_IMAGES, 0, 0, progress=False)
            return self._from(Path(scratch) / "world", image_size)

    def _from(self, world: Path, image_size: int):
        from sam3spec.export.parity import parity_samples
        from sam3spec.export.pipeline import (
            CALIBRATION_IMAGES,
            PARITY_SAMPLES,
            ExportInputs,
            letterboxed_images,
        )
        from sam3spec.world.phrases import all_phrases

        train = sorted(WorldPaths.of(world).sa1b_train.glob("*.jpg"))[:CALIBRATION_IMAGES]
        if not train:
            raise FileNotFoundError(
                f"no images in {WorldPaths.of(world).sa1b_train}: generate a concept world"
            )
        return ExportInputs(
            calibration=letterboxed_images(train, image_size),
            parity=parity_samples(
                gold_images(WorldPaths.of(world).saco_eval[0], WorldPaths.of(world).sa1b_eval),
                image_size,
                PARITY_SAMPLES,
            ),
            phrases=all_phrases(),
            source=self.key,
        )
