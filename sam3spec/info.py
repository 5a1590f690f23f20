"""Model facts: parameters per component and multiply-accumulates per image.

Used by ``sam3spec info`` and the student gate.
"""

from __future__ import annotations

from typing import Any

import torch

from sam3spec.models.student import Student


def count_parameters(model: Student) -> dict[str, int]:
    """Parameters per component (:data:`~sam3spec.models.student.COMPONENTS`) and ``total``.

    Raises:
        RuntimeError: if a parameter belongs to no component or to two (the partition must hold).
    """
    counts = model.parameter_counts()
    owners: dict[int, str] = {}
    for name, module in model.component_modules().items():
        for parameter in module.parameters():
            if id(parameter) in owners:
                raise RuntimeError(
                    f"a parameter is shared by components {owners[id(parameter)]!r} and {name!r}"
                )
            owners[id(parameter)] = name
    if len(owners) != sum(1 for _ in model.parameters()):
        raise RuntimeError("some parameters belong to no component of component_modules()")
    return counts


def example_inputs(model: Student, resolution: int, batch: int = 1) -> dict[str, torch.Tensor]:
    """Inputs for one text-prompted forward at ``resolution`` (random image, a padded 4-token prompt)."""
    device = next(model.parameters()).device
    context = model.config.text.context_length
    input_ids = torch.zeros(batch, context, dtype=torch.long, device=device)
    input_ids[:, :4] = torch.tensor(
        [49406, 320, 321, 49407]
    )  # <start> two tokens <end>: cost is length-independent
    return {
        "pixel_values": torch.randn(batch, 3, resolution, resolution, device=device),
        "input_ids": input_ids,
    }


@torch.no_grad()
def count_gmacs(model: Student, resolution: int) -> float:
    """Multiply-accumulates (x1e9) of one text-prompted forward at ``resolution``, batch 1.

    Counted by ``torch.utils.flop_counter`` (matmul/conv FLOPs; MACs = FLOPs / 2).
    """
    from torch.utils.flop_counter import FlopCounterMode

    was_training = model.training
    model.eval()
    counter = FlopCounterMode(display=False)
    with counter:
        model(**example_inputs(model, resolution))
    model.train(was_training)
    return counter.get_total_flops() / 2 / 1e9


def model_info(model: Student, resolutions: tuple[int, ...] = ()) -> dict[str, Any]:
    """``{"preset": str, "params": {component: int, ..., "total": int}, "gmacs": {"<res>": float}}``."""
    return {
        "preset": model.config.name,
        "params": count_parameters(model),
        "gmacs": {str(resolution): round(count_gmacs(model, resolution), 3) for resolution in resolutions},
    }


def preset_info(preset: str, resolutions: tuple[int, ...] = ()) -> dict[str, Any]:
    """:func:`model_info` of a preset built on the meta device: shapes only, no weights are
    allocated or initialised, so counting the seed's 100M parameters takes no memory and little time."""
    from sam3spec.models.build import build_student

    with torch.device("meta"):
        model = build_student(preset)
    return model_info(model.eval(), resolutions)
