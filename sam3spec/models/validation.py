"""Input checks for the student's entry points, raising ``ValueError`` with a clear message.

Shape and dtype checks always run (they are static under ``torch.export``). Checks on *values*
(finite, in range) would need data-dependent control flow, so they are skipped while exporting,
compiling or tracing; the exported program assumes valid inputs.
"""

from __future__ import annotations

import torch


def value_checks_enabled() -> bool:
    """False while ``torch.export`` / ``torch.compile`` / ``torch.jit`` trace the model."""
    return not (
        torch.compiler.is_exporting()
        or torch.compiler.is_compiling()
        or torch.jit.is_tracing()
        or torch.jit.is_scripting()
    )


def check_image(pixel_values: torch.Tensor) -> None:
    """``pixel_values`` must be a float ``[B, 3, H, W]`` tensor."""
    if not isinstance(pixel_values, torch.Tensor) or pixel_values.dim() != 4:
        shape = tuple(pixel_values.shape) if isinstance(pixel_values, torch.Tensor) else type(pixel_values)
        raise ValueError(f"pixel_values must be [B, 3, H, W], got {shape}")
    if pixel_values.shape[1] != 3:
        raise ValueError(f"pixel_values must have 3 channels (RGB), got {pixel_values.shape[1]}")
    if not pixel_values.is_floating_point():
        raise ValueError(
            f"pixel_values must be a normalised float tensor, got {pixel_values.dtype}; "
            "convert and normalise uint8 images first"
        )


def check_text(input_ids: torch.Tensor, context_length: int) -> None:
    """``input_ids`` must be an integer ``[B, L]`` tensor with ``1 <= L <= context_length``."""
    if input_ids.dim() != 2:
        raise ValueError(f"input_ids must be [B, L], got {tuple(input_ids.shape)}")
    if input_ids.is_floating_point() or input_ids.dtype == torch.bool:
        raise ValueError(f"input_ids must be integer token ids, got {input_ids.dtype}")
    if not 1 <= input_ids.shape[1] <= context_length:
        raise ValueError(
            f"input_ids length {input_ids.shape[1]} outside 1..{context_length} (context length)"
        )


def check_prompt_coordinates(
    coords: torch.Tensor | None, labels: torch.Tensor | None, name: str, size: int, batch: int
) -> None:
    """Check a point (``size`` 2, xy) or box (``size`` 4, xyxy) prompt and its labels.

    Padding entries (label -1) are exempt from the value checks, so any filler is allowed there.

    Raises:
        ValueError: wrong shape/dtype, non-finite or out-of-[0, 1] coordinates, inverted boxes,
            or labels other than -1/0/1.
    """
    label_name = "point_labels" if size == 2 else "box_labels"
    if coords is None:
        if labels is not None:
            raise ValueError(f"{label_name} given without {name}")
        return
    if coords.dim() != 3 or coords.shape[-1] != size or coords.shape[0] != batch:
        raise ValueError(f"{name} must be [B={batch}, N, {size}], got {tuple(coords.shape)}")
    if not coords.is_floating_point():
        raise ValueError(f"{name} must be float normalised coordinates, got {coords.dtype}")
    if labels is not None and tuple(labels.shape) != tuple(coords.shape[:2]):
        raise ValueError(f"{label_name} must be {tuple(coords.shape[:2])}, got {tuple(labels.shape)}")
    if not value_checks_enabled():
        return
    valid = torch.ones(coords.shape[:2], dtype=torch.bool, device=coords.device)
    if labels is not None:
        if not bool(((labels == -1) | (labels == 0) | (labels == 1)).all()):
            raise ValueError(f"{label_name} must be 1 (positive), 0 (negative) or -1 (padding)")
        valid = labels != -1
    checked = torch.where(valid[..., None], coords, torch.full_like(coords, 0.5))
    if not bool(torch.isfinite(checked).all()):
        raise ValueError(f"{name} contain non-finite coordinates")
    if bool(((checked < 0) | (checked > 1)).any()):
        raise ValueError(
            f"{name} must be normalised to [0, 1] (got min {checked.min().item():.3g}, "
            f"max {checked.max().item():.3g}); divide pixel coordinates by the image size"
        )
    if size == 4 and bool(((checked[..., 2] < checked[..., 0]) | (checked[..., 3] < checked[..., 1])).any()):
        raise ValueError("boxes must be xyxy with x1 >= x0 and y1 >= y0")
