"""The concept world: the embedded demo the whole pipeline runs on, on a laptop CPU, in minutes.

Procedurally generated images and videos of coloured shapes, with exact instance masks and noun
phrases, written in the real SA-1B / SA-Co / SA-V formats (:func:`generate_world`,
``sam3spec data generate``), plus everything that exists only for it: the small SAM 3 teacher
trained on it and shipped with the package (:mod:`sam3spec.world.teacher`), the concept-world
versions of the distillation stages (:mod:`sam3spec.world.stages`), the main job
(:mod:`sam3spec.world.pipeline`) and its evaluation (:mod:`sam3spec.world.evaluate`).

The product packages never import this one: they read the formats the world is written in, and
take calibration images, vocabularies and phrases as arguments (:mod:`sam3spec.world.inputs`
derives them from a world).
"""

from sam3spec.world.config import HELD_OUT_PAIRS, WorldConfig
from sam3spec.world.generate import WorldPaths, WorldSummary, generate_world

__all__ = ["HELD_OUT_PAIRS", "WorldConfig", "WorldPaths", "WorldSummary", "generate_world"]
