"""Quantization by part for the XNNPACK recipes: which Linear of the program gets which scheme.

An :class:`~sam3spec.export.recipes.ExportRecipe` names a torchao scheme
(:mod:`sam3spec.quant.schemes`) per part:

========================= =================== ======================================================
part                      recipe field        layers
========================= =================== ======================================================
image encoder, 1x1 convs  ``conv1x1``         rewritten as Linear (:mod:`~sam3spec.export.conv_linear`);
                                              a 4-bit scheme falls back to 8da8w per channel where
                                              the input width is not a multiple of 32
text tower                ``text``            Linear layers and the token embedding
prompt encoder, DETR,     ``linear``          Linear layers (``text`` unset: the text tower too)
mask decoder
IoU head, scoring,        ``sensitive``       Linear layers (unset: float)
Perceiver, memory attn.
========================= =================== ======================================================

:func:`linear_schemes` reads back what each Linear / embedding holds after quantization (the
manifest line and the tests read it).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from sam3spec.export.recipes import ExportRecipe
from sam3spec.quant.recipes import _once, get_recipe, quantize_modules
from sam3spec.quant.sensitivity import sensitive_modules

# XNNPACK's 4-bit groups are multiples of 32; narrower-input layers take int8 per channel instead.
FALLBACK_RECIPE = "8da8w"


def _quantize_rest(root: nn.Module, names: list[str], recipe_name: str) -> None:
    """Quantize the Linear layers ``names`` under ``root`` with ``recipe_name`` per channel."""
    from torchao.quantization import quantize_

    if names:
        config = get_recipe(recipe_name).linear_config(per_channel=True)
        quantize_(root, config, filter_fn=_once({id(root.get_submodule(name)) for name in names}))


def quantize_pointwise(image_encoder: nn.Module, recipe_name: str) -> str:
    """Rewrite the 1x1 convolutions under ``image_encoder`` as Linear and quantize them, in place.

    Returns the line that says what was done. Linear layers a 4-bit scheme cannot group (input
    width not a multiple of 32: the seed's 80-channel stage) take :data:`FALLBACK_RECIPE`.
    """
    from sam3spec.export.conv_linear import convs_as_linear

    replaced = convs_as_linear(image_encoder)
    parameters = sum(image_encoder.get_submodule(name).linear.weight.numel() for name in replaced)
    plan, _ = quantize_modules(image_encoder, get_recipe(recipe_name), {}, log=None, embeddings=False)
    rest = list(plan.kept_float)
    _quantize_rest(image_encoder, rest, FALLBACK_RECIPE)
    return (
        f"image encoder: {len(replaced)} 1x1 convolutions ({parameters / 1e6:.2f}M parameters) as Linear, "
        f"{len(plan.quantized)} {recipe_name}, {len(rest)} {FALLBACK_RECIPE} (input width not a multiple of 32)"
    )


def quantize_linear_parts(
    modules, recipe: ExportRecipe, log: Callable[[str], None] | None = None
) -> list[str]:
    """Quantize the Linear layers (and token embedding) of ``encode_text``, ``decode``, ``track``.

    Args:
        modules: the :class:`~sam3spec.export.wrappers.ExportModules` (quantized in place).
        recipe: the export recipe (``linear``, ``text``, ``sensitive``).
        log: where each line goes (None: silent).

    Returns:
        One line per part.
    """
    sensitive = sensitive_modules(modules.student)
    lines = []
    groups: list[tuple[str, str, nn.Module, dict]] = []
    heads = nn.ModuleDict({name: getattr(modules, name) for name in ("decode", "track")})
    if recipe.text is not None:
        groups.append(("text tower", recipe.text, modules.encode_text, {}))
    else:
        heads["encode_text"] = modules.encode_text
    groups.append(("Linear", recipe.linear, heads, sensitive))
    if recipe.sensitive is not None and sensitive:
        groups.append(("sensitive parts", recipe.sensitive, nn.ModuleDict(sensitive), {}))
    for label, name, root, keep in groups:
        plan, embeddings = quantize_modules(root, get_recipe(name), keep, log=None)
        lines.append(f"{label} {name}: {plan.describe()}; embeddings: {', '.join(embeddings) or 'none'}")
        if log is not None:
            log(lines[-1])
    return lines


def weight_scheme(module: nn.Module) -> str:
    """``"float"`` or ``"int<bits> g<group>"`` / ``"int<bits> per channel"`` of a layer's weight."""
    from sam3spec.quant.recipes import _BITS

    weight = getattr(module, "weight", None)
    data = weight.data if isinstance(weight, nn.Parameter) else weight
    if data is None or type(data) is torch.Tensor:
        return "float"
    bits = _BITS.get(getattr(data, "target_dtype", None), 8)
    block = tuple(getattr(data, "block_size", ()))
    columns = data.shape[-1]
    group = block[-1] if block else columns
    return f"int{bits} per channel" if group == columns else f"int{bits} g{group}"


def linear_schemes(root: nn.Module) -> dict[str, str]:
    """``{qualified name: weight_scheme}`` of every Linear and Embedding under ``root`` (shared once)."""
    seen: set[int] = set()
    schemes = {}
    for name, module in root.named_modules():
        if isinstance(module, nn.Linear | nn.Embedding) and id(module) not in seen:
            seen.add(id(module))
            schemes[name] = weight_scheme(module)
    return schemes
