"""Builders: a config (or preset name) -> finished parts -> :class:`Student`.

Each ``build_*`` function holds only the mapping from config fields to constructor arguments, as
segment-anything's ``build_sam.py`` and timm's registered model functions do.
"""

from __future__ import annotations

import logging
from pathlib import Path

from torch import nn

from sam3spec.config import StudentConfig, get_preset
from sam3spec.models.attention import MLP
from sam3spec.models.detr_decoder import DetrDecoder
from sam3spec.models.detr_encoder import DetrEncoder
from sam3spec.models.image_encoder import ImageEncoder, create_backbone, load_backbone_weights
from sam3spec.models.mask_decoder import MaskDecoder
from sam3spec.models.memory import MemoryCrossAttention, PerceiverResampler
from sam3spec.models.prompt_encoder import PromptEncoder
from sam3spec.models.scoring import DotProductScoring
from sam3spec.models.student import Student
from sam3spec.models.text_encoder import TextEncoder, build_text_tower, load_text_weights
from sam3spec.models.weights import LoadReport

logger = logging.getLogger(__name__)


def resolve_config(config_or_preset: StudentConfig | str) -> StudentConfig:
    """A :class:`StudentConfig` as is, or the preset registered under that name."""
    return get_preset(config_or_preset) if isinstance(config_or_preset, str) else config_or_preset


def build_image_encoder(
    config: StudentConfig, pretrained: str | Path | None = None, online: bool = False
) -> tuple[ImageEncoder, LoadReport | None]:
    """RepViT backbone + FPN adapters; ``pretrained`` is a local timm checkpoint for the backbone."""
    image = config.image
    if image.fpn_dim != config.hidden:
        raise ValueError(f"image.fpn_dim ({image.fpn_dim}) must equal hidden ({config.hidden})")
    backbone, channels = create_backbone(image.backbone, image.embed_dim, image.depth, online=online)
    report = load_backbone_weights(backbone, pretrained) if pretrained is not None else None
    return ImageEncoder(backbone, channels, image.fpn_dim), report


def build_text_encoder(
    config: StudentConfig, pretrained: str | Path | None = None
) -> tuple[TextEncoder, LoadReport | None]:
    """open_clip text tower + ``Linear(width, hidden)``; ``pretrained`` is a local open_clip checkpoint."""
    tower = build_text_tower(config.text)
    report = load_text_weights(tower, pretrained) if pretrained is not None else None
    return TextEncoder(tower, config.text.width, config.hidden), report


def build_detr_encoder(config: StudentConfig) -> DetrEncoder:
    """Prompt-fusion encoder."""
    detr = config.detr
    return DetrEncoder(config.hidden, detr.heads, detr.ffn_dim, detr.encoder_layers)


def build_detr_decoder(config: StudentConfig) -> DetrDecoder:
    """Query decoder."""
    detr = config.detr
    return DetrDecoder(config.hidden, detr.heads, detr.ffn_dim, detr.decoder_layers, detr.num_queries)


def build_mask_decoder(config: StudentConfig) -> MaskDecoder:
    """Pixel decoder over the FPN levels finer than the encoder level."""
    return MaskDecoder(
        config.hidden,
        config.mask_dim,
        num_skip_levels=config.detr.encoder_level,
        box_prior=config.mask_box_prior,
        upsample=config.mask_upsample,
    )


def build_iou_head(config: StudentConfig) -> nn.Module:
    """``MLP(hidden, hidden, 1, 3)``: one IoU logit per query."""
    return MLP(config.hidden, config.hidden, 1, 3)


def build_memory(config: StudentConfig) -> tuple[PerceiverResampler, MemoryCrossAttention]:
    """Perceiver resampler and gated memory cross-attention."""
    memory = config.memory
    resampler = PerceiverResampler(
        config.hidden, memory.heads, memory.ffn_dim, memory.layers, memory.num_latents
    )
    return resampler, MemoryCrossAttention(config.hidden, memory.heads)


def build_student(
    config_or_preset: StudentConfig | str,
    pretrained_backbone: str | Path | None = None,
    pretrained_text: str | Path | None = None,
    online: bool = False,
) -> Student:
    """Build a randomly initialised student, optionally with pretrained backbone / text tower.

    Args:
        config_or_preset: a :class:`StudentConfig` or a preset name (see ``sam3spec.config``).
        pretrained_backbone: local timm checkpoint for the RepViT backbone (safetensors or
            torch file, loaded with ``weights_only=True``).
        pretrained_text: local open_clip checkpoint (e.g. MobileCLIP-S1) for the text tower.
        online: let timm download the backbone's ImageNet weights from the hub.

    Returns:
        The :class:`Student`; ``student.load_reports`` lists what each weights file provided.
    """
    config = resolve_config(config_or_preset)
    image_encoder, image_report = build_image_encoder(config, pretrained_backbone, online)
    text_encoder, text_report = build_text_encoder(config, pretrained_text)
    resampler, memory_attention = build_memory(config)
    student = Student(
        image_encoder=image_encoder,
        text_encoder=text_encoder,
        prompt_encoder=PromptEncoder(config.hidden),
        detr_encoder=build_detr_encoder(config),
        detr_decoder=build_detr_decoder(config),
        scoring=DotProductScoring(config.hidden, config.scoring_ffn_dim),
        mask_decoder=build_mask_decoder(config),
        iou_head=build_iou_head(config),
        memory_resampler=resampler,
        memory_attention=memory_attention,
        config=config,
    )
    student.load_reports = [r for r in (image_report, text_report) if r is not None]
    for report in student.load_reports:
        logger.info("%s", report)
    return student
