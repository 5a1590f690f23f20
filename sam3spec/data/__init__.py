"""Data: loaders for SA-1B / SA-Co / SA-V, the data-root layout, what a training root holds
(:mod:`~sam3spec.data.sources`), text-prompt vocabularies, transforms and the prompt sampler.

Loaders are torch ``Dataset``s that never raise for bad data: a bad sample comes back as a
:class:`~sam3spec.data.faults.Skipped` item, is warned about once and counted in
``dataset.faults``; :func:`~sam3spec.data.loader.make_loader` drops it from the batch.

Sample dict keys (a raw sample, then what ``ResizeNormalize`` and ``PromptSampler`` change or add):

======================== ================================================ ==================
key                      value                                            from
======================== ================================================ ==================
image                    ``[3, H, W]`` uint8 -> float normalised          SA-1B, SA-Co
frames                   ``[T+1, 3, H, W]`` uint8 -> float (query last)   SA-V
masks                    ``[N, H, W]`` bool (``[T+1, N, H, W]`` for SA-V) all
boxes_xyxy               ``[N, 4]`` float, normalised xyxy in [0, 1]       all
point_coords_xy          ``[N, 2]`` SA-1B ``point_coords``, normalised     SA-1B
iscrowd                  ``[N]`` bool                                     SA-Co
visible                  ``[T+1, N]`` bool                                SA-V
object_ids               ``[N]`` long (masklet index)                     SA-V
frame_indices            ``[T+1]`` long, 24 fps frame numbers             SA-V
phrase                   noun phrase str, or None (SA-1B, SA-V)           all
positive                 bool: at least one instance (query frame)        all
is_instance_exhaustive   bool                                             SA-Co
is_pixel_exhaustive      bool                                             SA-Co
image_id / video_id      str (SA-Co: the image-phrase pair id)            all
file_name                str, relative to the image root                  SA-Co
source                   ``"sa1b"`` / ``"saco"`` / ``"sav"``              all
original_size            (H, W) before transforms                         all
valid_size               (h, w) of the unpadded content                   ResizeNormalize
prompt_type              ``"text"`` / ``"point"`` / ``"box"``             PromptSampler
text                     the phrase, or "visual" with point / box prompts PromptSampler
points_xy, point_labels  ``[P, 2]`` normalised xy, ``[P]`` long 1/0       PromptSampler
prompt_boxes_xyxy        ``[B, 4]`` normalised xyxy                       PromptSampler
prompt_box_labels        ``[B]`` long, 1 positive / 0 negative            PromptSampler
target_masks             ``[K, H, W]`` bool, what the prompt asks for     PromptSampler
target_boxes_xyxy        ``[K, 4]`` normalised xyxy                       PromptSampler
targets_known            False for a vocabulary phrase on unlabelled data PromptSampler
======================== ================================================ ==================

The HF teacher takes boxes as normalised cxcywh: :func:`~sam3spec.data.transforms.xyxy_to_cxcywh`.
"""

from __future__ import annotations

import importlib
from typing import Any

# Imported lazily, so that importing the package does no heavy work.
_EXPORTS = {
    "DataFault": "sam3spec.data.faults",
    "FaultLog": "sam3spec.data.faults",
    "Problem": "sam3spec.data.faults",
    "Skipped": "sam3spec.data.faults",
    "collate_samples": "sam3spec.data.loader",
    "good_batches": "sam3spec.data.loader",
    "make_loader": "sam3spec.data.loader",
    "PHASE1_PROMPTS": "sam3spec.data.prompts",
    "PHASE2_PROMPTS": "sam3spec.data.prompts",
    "PromptConfig": "sam3spec.data.prompts",
    "PromptSampler": "sam3spec.data.prompts",
    "SA1BDataset": "sam3spec.data.sa1b",
    "SACoDataset": "sam3spec.data.saco",
    "SAVDataset": "sam3spec.data.sav",
    "STUDENT": "sam3spec.data.transforms",
    "TEACHER": "sam3spec.data.transforms",
    "Normalization": "sam3spec.data.transforms",
    "ResizeNormalize": "sam3spec.data.transforms",
    "TransformConfig": "sam3spec.data.transforms",
    "cxcywh_to_xyxy": "sam3spec.data.transforms",
    "xyxy_to_cxcywh": "sam3spec.data.transforms",
    "DataLayout": "sam3spec.data.layout",
    "DataSource": "sam3spec.data.sources",
    "TrainingDataError": "sam3spec.data.sources",
    "training_files": "sam3spec.data.sources",
    "default_vocabulary": "sam3spec.data.vocabulary",
    "read_vocabulary": "sam3spec.data.vocabulary",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'sam3spec.data' has no attribute {name!r}")
