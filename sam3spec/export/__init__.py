"""ExecuTorch export: one multi-method ``.pte`` (``encode_image``, ``encode_text``, ``decode``,
``track`` + metadata), per-backend recipes (XNNPACK, Core ML, QNN), parity, runtime, profiling.

* :func:`~sam3spec.export.pipeline.export_student` (wrap -> quantize -> export -> lower ->
  parity -> ``.pte`` + manifest + text table), as ExecuTorch's examples: ``export_modules``
  (get_model), :func:`~sam3spec.export.lowering.export_methods` (export_model),
  :func:`~sam3spec.export.lowering.lower_to_executorch`;
* :class:`~sam3spec.export.runtime.PtePredictor`: the eager predictor's API over a ``.pte``.

Latency, RSS, bytes and delegated share per method of a ``.pte`` (``sam3spec bench``) are measured
by :func:`sam3spec.bench.pte.benchmark`, which imports this package, not the other way round.

Imported lazily: ``import sam3spec.export`` does not import ExecuTorch.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "export_student": "sam3spec.export.pipeline",
    "export_model": "sam3spec.export.lowering",
    "export_modules": "sam3spec.export.wrappers",
    "get_export_recipe": "sam3spec.export.recipes",
    "PteProgram": "sam3spec.export.runtime",
    "PtePredictor": "sam3spec.export.runtime",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'sam3spec.export' has no attribute {name!r}")
