"""The output dataclass shared by the student and the teacher adapter.

Field names follow transformers' ``Sam3Model`` outputs so that losses, metrics and exports treat
teacher and student alike. Shapes use ``B`` batch, ``Q`` queries, ``h x w`` mask resolution.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F


@dataclass
class Intermediates:
    """Optional distillation targets (``return_intermediates=True``).

    Attributes:
        fpn_levels: FPN features, finest first: ``[B, C, H_l, W_l]`` per level.
        encoder_memory: DETR encoder output tokens ``[B, N, C]`` (N = H*W of the encoder level).
        decoder_states: per decoder layer, query states ``[B, Q, C]`` (after the final norm).
        decoder_boxes: per decoder layer, boxes ``[B, Q, 4]`` normalised cxcywh.
        decoder_presence_logits: per decoder layer, ``[B, 1]``.
        text_features: the prompt's text tokens as the DETR encoder reads them ``[B, L, C]``
            (teacher adapter; the text-feature loss of a student without a pretrained text tower).
        text_valid: ``[B, L]`` bool, True at real tokens (SOT, words, EOT).
    """

    fpn_levels: list[torch.Tensor] = field(default_factory=list)
    encoder_memory: torch.Tensor | None = None
    decoder_states: list[torch.Tensor] = field(default_factory=list)
    decoder_boxes: list[torch.Tensor] = field(default_factory=list)
    decoder_presence_logits: list[torch.Tensor] = field(default_factory=list)
    text_features: torch.Tensor | None = None
    text_valid: torch.Tensor | None = None


@dataclass
class Sam3Outputs:
    """Predictions of a promptable concept segmenter for one prompt per image.

    Attributes:
        pred_logits: per-query match logits ``[B, Q]``.
        pred_boxes: boxes ``[B, Q, 4]``, **normalised xyxy** in [0, 1] (as transformers' Sam3;
            like it, not clamped, so corners of a box at the border may fall slightly outside).
        pred_masks: mask logits ``[B, Q, h, w]`` (student: h = H/4 x ``StudentConfig.mask_upsample``;
            SAM 3: 288 at 1008 px).
        presence_logits: whole-image concept presence logit ``[B, 1]``.
        semantic_seg: semantic (union) mask logits ``[B, 1, h, w]``.
        iou_scores: predicted mask IoU per query ``[B, Q]`` (logits; sigmoid for [0, 1]).
        intermediates: distillation targets, or None when not requested.
        aux_outputs: the same predictions from each earlier decoder layer (first layer first;
            ``semantic_seg`` is the final one's), or None when not requested (auxiliary losses).
    """

    pred_logits: torch.Tensor
    pred_boxes: torch.Tensor
    pred_masks: torch.Tensor
    presence_logits: torch.Tensor
    semantic_seg: torch.Tensor
    iou_scores: torch.Tensor | None = None
    intermediates: Intermediates | None = None
    aux_outputs: list[Sam3Outputs] | None = None

    def scores(self) -> torch.Tensor:
        """Final detection scores ``[B, Q]`` = sigmoid(query logit) x sigmoid(presence)."""
        return self.pred_logits.sigmoid() * self.presence_logits.sigmoid()


def resize_mask_logits(logits: torch.Tensor, size: tuple[int, ...] | torch.Size) -> torch.Tensor:
    """Mask logits ``[..., h, w]`` resized to the last two entries of ``size``: bilinear with
    ``align_corners=False``, the upsampling the evaluation applies before thresholding at 0, so a
    loss on the resized logits trains the masks as they are scored. Identity when sizes match."""
    size = tuple(int(side) for side in size[-2:])
    if tuple(logits.shape[-2:]) == size:
        return logits
    flat = logits.reshape(-1, 1, *logits.shape[-2:])
    resized = F.interpolate(flat.float(), size=size, mode="bilinear", align_corners=False)
    return resized.reshape(*logits.shape[:-2], *size)
