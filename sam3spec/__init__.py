"""sam3spec: distil SAM 3 into a phone-sized promptable concept segmenter, proven against specs.

The public names are imported lazily so that ``import sam3spec`` does no heavy work:

* :func:`build_student` (a preset name or :class:`~sam3spec.config.StudentConfig` -> student)
* :func:`load_student` / :func:`save_pretrained` (safetensors + JSON config checkpoints)
* :class:`ImagePredictor` (``set_image`` then ``predict``)
* :class:`VideoPredictor` (``start`` then ``step`` per frame, a fixed-size memory)
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "build_student": "sam3spec.models.build",
    "load_student": "sam3spec.checkpoint",
    "save_pretrained": "sam3spec.checkpoint",
    "ImagePredictor": "sam3spec.predictor",
    "VideoPredictor": "sam3spec.video.predictor",
    "StudentConfig": "sam3spec.config",
    "get_preset": "sam3spec.config",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'sam3spec' has no attribute {name!r}")
