"""Sizes of small SAM 3 teachers (the concept world's, :data:`sam3spec.world.teacher.WORLD`, and tiny
test models).

Only hyper-parameters live here; :func:`sam3spec.teacher.hf_models.sam3_configs` turns them into
transformers' ``Sam3Config`` / ``Sam3TrackerConfig`` (``hf_models`` and ``hf_adapter`` are the only modules that import
transformers' SAM 3 classes).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class TeacherArchitecture:
    """A SAM 3 detector (+ point tracker) shape.

    The ViT runs on a ``grid x grid`` patch grid (``grid = image_size // patch_size``), all layers
    with global attention; masks come out at ``4 * grid`` per side (SAM 3: 288 at 1008 px).

    Attributes:
        image_size: square input side, pixels (the RoPE grid is precomputed for it).
        patch_size: ViT patch side.
        vision_hidden: ViT width.
        vision_layers: ViT depth.
        vision_heads: ViT attention heads.
        hidden: FPN / DETR / mask decoder / geometry encoder / tracker width.
        heads: attention heads of the DETR, mask and tracker decoders.
        text_hidden: CLIP text encoder width.
        text_layers: CLIP text encoder depth.
        text_heads: CLIP text encoder heads.
        detr_encoder_layers: DETR encoder depth (SAM 3: 6).
        detr_decoder_layers: DETR decoder depth (SAM 3: 6).
        num_queries: DETR object queries (SAM 3: 200).
        geometry_layers: box-prompt geometry encoder depth.
        ffn_ratio: feed-forward width / hidden.
    """

    image_size: int = 160
    patch_size: int = 8
    vision_hidden: int = 96
    vision_layers: int = 3
    vision_heads: int = 4
    hidden: int = 48
    heads: int = 4
    text_hidden: int = 48
    text_layers: int = 2
    text_heads: int = 4
    detr_encoder_layers: int = 2
    detr_decoder_layers: int = 3
    num_queries: int = 16
    geometry_layers: int = 1
    ffn_ratio: int = 4

    def __post_init__(self) -> None:
        problems = []
        if self.image_size % self.patch_size:
            problems.append(f"image_size {self.image_size} is not a multiple of patch_size {self.patch_size}")
        for name in ("vision_hidden", "hidden", "text_hidden"):
            heads = {
                "vision_hidden": self.vision_heads,
                "hidden": self.heads,
                "text_hidden": self.text_heads,
            }[name]
            if getattr(self, name) % heads:
                problems.append(f"{name} {getattr(self, name)} is not divisible by its {heads} heads")
        if self.hidden % 8:
            problems.append(f"hidden {self.hidden} must be a multiple of 8 (GroupNorm(8) and tracker convs)")
        if problems:
            raise ValueError("invalid TeacherArchitecture: " + "; ".join(problems))

    @property
    def grid(self) -> int:
        """ViT patch grid side."""
        return self.image_size // self.patch_size

    @property
    def mask_size(self) -> int:
        """Side of the predicted mask logits (4x the grid)."""
        return 4 * self.grid

    def to_dict(self) -> dict[str, int]:
        return asdict(self)


# Tiny random models for unit tests (forward in milliseconds).
TINY = TeacherArchitecture(
    image_size=56,
    patch_size=14,
    vision_hidden=32,
    vision_layers=1,
    vision_heads=2,
    hidden=32,
    heads=2,
    text_hidden=32,
    text_layers=1,
    text_heads=2,
    detr_encoder_layers=1,
    detr_decoder_layers=2,
    num_queries=8,
    geometry_layers=1,
    ffn_ratio=2,
)
