"""The concept world: procedurally generated images and videos of coloured shapes, with exact
instance masks and noun phrases, written in the real SA-1B / SA-Co / SA-V formats.

Entry point: :func:`generate_world` (CLI: ``sam3spec world generate``); :class:`WorldPaths` says
where each tree lives.
"""

from sam3spec.data.world.config import HELD_OUT_PAIRS, WorldConfig
from sam3spec.data.world.generate import WorldPaths, WorldSummary, generate_world

__all__ = ["HELD_OUT_PAIRS", "WorldConfig", "WorldPaths", "WorldSummary", "generate_world"]
