"""The teacher: SAM 3 through transformers (offline), and its cache.

Two calls, as SAM's predictor::

    from sam3spec.teacher import load_teacher

    teacher = load_teacher("models/sam3")         # a local SAM 3 folder (or any sam3spec-layout teacher)
    embeddings = teacher.encode_image(teacher.preprocess(images_uint8))   # once per image
    outputs = teacher.predict(embeddings, text="red circle", return_intermediates=True)
    outputs.pred_masks, outputs.intermediates.fpn_levels                  # Sam3Outputs

Modules: ``protocol`` (the :class:`Teacher` protocol, :class:`ImageEmbeddings`), ``hf_adapter``
(the protocol over transformers' SAM 3) and ``hf_models`` (its configs, random models and checkpoint
loading): the only modules importing transformers' SAM 3; ``layout`` (folder layouts, checks), ``loading``,
``tokenizer`` (offline CLIP BPE, 32 tokens), ``cache`` (sharded, resumable teacher cache),
``architecture`` (sizes of small SAM 3 teachers), ``baseline`` (one image -> outputs + overlay).
The concept-world teacher (trained by this package and shipped with it) is in
:mod:`sam3spec.world.teacher`.
"""

from __future__ import annotations

import importlib
from typing import Any

# Imported lazily, so that importing the package does no heavy work.
_EXPORTS = {
    "ImageEmbeddings": "sam3spec.teacher.protocol",
    "Teacher": "sam3spec.teacher.protocol",
    "Sam3Tokenizer": "sam3spec.teacher.tokenizer",
    "TeacherLoadError": "sam3spec.teacher.loading",
    "load_teacher": "sam3spec.teacher.loading",
    "save_teacher": "sam3spec.teacher.loading",
    "CacheOptions": "sam3spec.teacher.cache",
    "TeacherCache": "sam3spec.teacher.cache",
    "build_cache": "sam3spec.teacher.cache",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'sam3spec.teacher' has no attribute {name!r}")
