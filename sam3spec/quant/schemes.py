"""The quantization schemes by name (a table; no torch at import, so the command line can list it).

Each :class:`QuantRecipe` builds its torchao configs on demand (:meth:`QuantRecipe.linear_config`,
:meth:`QuantRecipe.embedding_config`); :mod:`sam3spec.quant.recipes` applies them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

# Embedding tables at least this large are quantized by recipes with embedding_bits (the text
# tower's 49408-token table); the prompt encoder's 2-row label tables stay in float.
LARGE_EMBEDDING = 1024


@dataclass(frozen=True)
class QuantRecipe:
    """An eager quantization scheme.

    Attributes:
        name: registry key.
        what: one-line description.
        weight_bits: 4 or 8.
        group_size: weights per scale along the input dimension; None = one scale per row.
        dynamic_activations: int8 per-token dynamic activation quantization (8daXw).
        embedding_bits: bits of large embedding tables (None: kept in float).
        embedding_group: weights per scale of a 4-bit embedding row (a 512-wide CLIP row at
            group 128 stores 4 fp32 scales instead of 16 at group 32: 0.53 instead of 0.63 B
            per weight).
    """

    name: str
    what: str
    weight_bits: int
    group_size: int | None
    dynamic_activations: bool
    embedding_bits: int | None = None
    embedding_group: int = 32

    def linear_config(
        self, device: str | torch.device = "cpu", per_channel: bool = False, group: int | None = None
    ):
        """The torchao config for Linear layers on ``device`` (``per_channel``: one scale per row;
        ``group``: another group size than the recipe's)."""
        import torch
        from torchao.quantization import (
            Int4WeightOnlyConfig,
            Int8DynamicActivationIntxWeightConfig,
            IntxWeightOnlyConfig,
        )
        from torchao.quantization.granularity import PerAxis, PerGroup

        group = None if per_channel else (group or self.group_size)
        granularity = PerAxis(0) if group is None else PerGroup(group)
        dtype = torch.int4 if self.weight_bits == 4 else torch.int8
        if self.dynamic_activations:
            return Int8DynamicActivationIntxWeightConfig(weight_dtype=dtype, weight_granularity=granularity)
        if self.weight_bits == 4 and torch.device(device).type == "cuda" and group is not None:
            return Int4WeightOnlyConfig(group_size=group)
        return IntxWeightOnlyConfig(weight_dtype=dtype, granularity=granularity)

    def embedding_config(self, width: int | None = None):
        """Weight-only config for large embedding tables (4 bits: :attr:`embedding_group`; 8: per row).

        ``width``: the table's row width; a group that does not divide it shrinks to their greatest
        common divisor (the tiny preset's 64-wide rows at group 128: one scale per row).
        """
        import math

        import torch
        from torchao.quantization import IntxWeightOnlyConfig
        from torchao.quantization.granularity import PerAxis, PerGroup

        if self.embedding_bits is None:
            return None
        group = self.embedding_group if width is None else math.gcd(self.embedding_group, width)
        if self.embedding_bits == 4:
            return IntxWeightOnlyConfig(weight_dtype=torch.int4, granularity=PerGroup(group))
        return IntxWeightOnlyConfig(weight_dtype=torch.int8, granularity=PerAxis(0))


RECIPES: dict[str, QuantRecipe] = {
    recipe.name: recipe
    for recipe in (
        QuantRecipe("int4wo-g128", "int4 weight-only, group 128 (docs/PLAN.md 8)", 4, 128, False, 4),
        QuantRecipe(
            "8da4w", "int8 dynamic activations + int4 weights, group 32 (docs/PLAN.md 8)", 4, 32, True, 4
        ),
        QuantRecipe(
            "8da4w-g128",
            "int8 dynamic activations + int4 weights, group 128; int4 embedding, group 128",
            4,
            128,
            True,
            4,
            embedding_group=128,
        ),
        QuantRecipe("8da8w", "int8 dynamic activations + int8 per-channel weights", 8, None, True, 8),
        QuantRecipe("int8wo", "int8 per-channel weight-only", 8, None, False, 8),
    )
}


def get_recipe(name: str) -> QuantRecipe:
    """The recipe registered under ``name``; ``KeyError`` names the known ones."""
    if name not in RECIPES:
        raise KeyError(f"unknown quantization recipe {name!r}; known: {', '.join(RECIPES)}")
    return RECIPES[name]
