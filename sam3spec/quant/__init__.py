"""Quantization with torchao: recipes with a printed sensitive-layer filter, and QAT.

* :mod:`~sam3spec.quant.schemes`: the recipes by name (no torch at import);
* :func:`~sam3spec.quant.recipes.quantize_student` (``quantize_(model, Config, filter_fn=...)``
  with the IoU head, scoring, Perceiver and memory attention kept in float);
* :func:`~sam3spec.quant.qat.train_qat` (prepare -> Phase 2 loss -> convert).

Float vs every recipe side by side: :mod:`sam3spec.eval.quant_compare`.

Imported lazily: ``import sam3spec.quant`` does not import torchao.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "RECIPES": "sam3spec.quant.schemes",
    "get_recipe": "sam3spec.quant.schemes",
    "quantize_student": "sam3spec.quant.recipes",
    "train_qat": "sam3spec.quant.qat",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'sam3spec.quant' has no attribute {name!r}")
