"""Typed, frozen configuration dataclasses and the student preset registry.

The dataclasses are the source of truth: YAML files and command-line flags only override fields
(:func:`override`), and the resolved config is saved next to every checkpoint
(:func:`config_to_dict` / :func:`config_from_dict`).

Presets:

* ``efficientsam3-repvit_m2_3-mobileclip_s1`` (the *seed*): the plan's student (docs/PLAN.md 3.1), ~100.7M
  parameters (RepViT-M2.3 + MobileCLIP-S1 text tower + light DETR + Perceiver memory).
* ``efficientsam3-mid``: RepViT-M1.1 backbone and a 6-layer MobileCLIP-S1-style text tower.
* ``efficientsam3-tiny``: the same code path with small widths, for tests and the concept world.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class ImageEncoderConfig:
    """RepViT backbone (timm, ``features_only``) + per-level FPN channel adapters.

    Attributes:
        backbone: timm model name (a registered ``repvit_*``).
        embed_dim: overrides the backbone's per-stage widths (tiny presets); None keeps timm's.
        depth: overrides the backbone's per-stage depths; None keeps timm's.
        fpn_dim: channels of every FPN level after the adapters.
    """

    backbone: str = "repvit_m2_3"
    embed_dim: tuple[int, ...] | None = None
    depth: tuple[int, ...] | None = None
    fpn_dim: int = 256


@dataclass(frozen=True)
class TextEncoderConfig:
    """open_clip text transformer (MobileCLIP-S1 text tower shape) + projection to ``hidden``.

    Attributes:
        width: transformer width (MobileCLIP-S1: 512).
        layers: transformer depth (MobileCLIP-S1: 12).
        heads: attention heads.
        vocab_size: BPE vocabulary (CLIP's 49408).
        context_length: tokens per prompt (SAM 3 uses 32; MobileCLIP was trained with 77).
        model_name: open_clip model whose tokenizer is used.
    """

    width: int = 512
    layers: int = 12
    heads: int = 8
    vocab_size: int = 49408
    context_length: int = 32
    model_name: str = "MobileCLIP-S1"


@dataclass(frozen=True)
class DetrConfig:
    """Light DETR encoder (prompt fusion) and decoder.

    Attributes:
        encoder_layers: encoder depth (teacher 6).
        decoder_layers: decoder depth.
        num_queries: object queries (teacher 200).
        heads: attention heads.
        ffn_dim: feed-forward width (teacher 2048).
        encoder_level: FPN level (0 = stride 4 ... 3 = stride 32) whose tokens the encoder reads.
    """

    encoder_layers: int = 3
    decoder_layers: int = 3
    num_queries: int = 100
    heads: int = 8
    ffn_dim: int = 1024
    encoder_level: int = 2


@dataclass(frozen=True)
class MemoryConfig:
    """Perceiver resampler (fixed-size video memory) + gated memory cross-attention.

    Attributes:
        num_latents: K, the memory size; the memory is always ``[B, K, hidden]``.
        layers: resampler depth (cross-attention + FFN per layer).
        heads: attention heads.
        ffn_dim: resampler feed-forward width.
        context_level: FPN level of the context frames the resampler reads.
    """

    num_latents: int = 64
    layers: int = 2
    heads: int = 8
    ffn_dim: int = 1024
    context_level: int = 3


@dataclass(frozen=True)
class StudentConfig:
    """The whole student.

    Attributes:
        name: preset name this config came from (informational).
        image_size: square input resolution used for training and export.
        hidden: model width shared by every head (256 in SAM 3).
        scoring_ffn_dim: width of the dot-product scoring prompt MLP.
        mask_dim: mask embedding width.
        mask_box_prior: mask-logit penalty per unit of normalised distance outside the query's own
            predicted box (:class:`~sam3spec.models.mask_decoder.MaskDecoder`; 0: off).
        mask_upsample: the mask and semantic logits are upsampled bilinearly by this factor
            inside the model (1: the stride-4 grid). A student trained against finer targets
            (``StageConfig.mask_target_scale``) gets the same factor, so that what is scored,
            predicted and exported is the grid its masks were fitted on.
        image: image encoder config.
        text: text encoder config.
        detr: DETR config.
        memory: video memory config.
    """

    name: str = "efficientsam3-repvit_m2_3-mobileclip_s1"
    image_size: int = 504
    hidden: int = 256
    scoring_ffn_dim: int = 1024
    mask_dim: int = 256
    mask_box_prior: float = 0.0
    mask_upsample: int = 1
    image: ImageEncoderConfig = field(default_factory=ImageEncoderConfig)
    text: TextEncoderConfig = field(default_factory=TextEncoderConfig)
    detr: DetrConfig = field(default_factory=DetrConfig)
    memory: MemoryConfig = field(default_factory=MemoryConfig)


SEED_PRESET = "efficientsam3-repvit_m2_3-mobileclip_s1"
MID_PRESET = "efficientsam3-mid"
TINY_PRESET = "efficientsam3-tiny"

PRESETS: dict[str, StudentConfig] = {
    SEED_PRESET: StudentConfig(name=SEED_PRESET),
    MID_PRESET: StudentConfig(
        name=MID_PRESET,
        image=ImageEncoderConfig(backbone="repvit_m1_1"),
        text=TextEncoderConfig(layers=6),
    ),
    TINY_PRESET: StudentConfig(
        name=TINY_PRESET,
        image_size=128,
        hidden=64,
        scoring_ffn_dim=128,
        mask_dim=64,
        image=ImageEncoderConfig(
            backbone="repvit_m0_9", embed_dim=(16, 32, 48, 64), depth=(1, 1, 1, 1), fpn_dim=64
        ),
        text=TextEncoderConfig(width=64, layers=2, heads=2, vocab_size=49408),
        detr=DetrConfig(encoder_layers=1, decoder_layers=2, num_queries=16, heads=4, ffn_dim=128),
        memory=MemoryConfig(num_latents=64, layers=2, heads=4, ffn_dim=128),
    ),
}


def get_preset(name: str) -> StudentConfig:
    """Return the config registered under ``name``.

    Raises:
        KeyError: for an unknown preset, naming the known ones.
    """
    if name not in PRESETS:
        known = ", ".join(sorted(PRESETS))
        raise KeyError(f"unknown preset {name!r}; known presets: {known}")
    return PRESETS[name]


def config_to_dict(config: Any) -> dict[str, Any]:
    """A JSON-ready dict of a (nested) config dataclass; tuples become lists."""
    return dataclasses.asdict(config)


def _build(cls: type, data: dict[str, Any], where: str) -> Any:
    if not isinstance(data, dict):
        raise TypeError(f"{where}: expected a mapping for {cls.__name__}, got {type(data).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise KeyError(f"{where}: unknown field(s) {unknown} for {cls.__name__}; known: {sorted(fields)}")
    kwargs: dict[str, Any] = {}
    for name, value in data.items():
        default = getattr(cls(), name) if _has_defaults(cls) else None
        if value is None and "None" in str(fields[name].type):  # an optional section turned off
            kwargs[name] = None
        elif dataclasses.is_dataclass(default):
            kwargs[name] = _build(type(default), value, f"{where}.{name}")
        elif isinstance(value, list):
            kwargs[name] = tuple(value)
        else:
            kwargs[name] = value
    return cls(**kwargs)


def _has_defaults(cls: type) -> bool:
    return all(
        f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING
        for f in dataclasses.fields(cls)
    )


# Student-config fields of experiments whose code was removed (docs/DECISIONS.md, "Things tried and
# not adopted"), with the value that meant "off". Checkpoints written while they existed store them.
RETIRED_STUDENT_FIELDS = {"mask_refine_layers": 0, "detr.train_groups": 1}


def drop_retired_fields(data: dict[str, Any], where: str = "config") -> dict[str, Any]:
    """A stored :class:`StudentConfig` dict without :data:`RETIRED_STUDENT_FIELDS` (a copy).

    A retired field at its "off" value is dropped: the model it describes is the one the current
    code builds. Any other value describes a model the code can no longer build.

    Raises:
        ValueError: a retired field is on, naming it.
    """
    data = {key: dict(value) if isinstance(value, dict) else value for key, value in data.items()}
    for path, off in RETIRED_STUDENT_FIELDS.items():
        *parents, leaf = path.split(".")
        node = data
        for part in parents:
            node = node.get(part) if isinstance(node, dict) else None
        if not isinstance(node, dict) or leaf not in node:
            continue
        value = node.pop(leaf)
        if value != off:
            raise ValueError(
                f"{where}: {path}={value!r} describes a student with a part that was removed from the code "
                f"(only {path}={off!r}, off, can load); docs/DECISIONS.md lists it under the things not adopted"
            )
    return data


def config_from_dict(data: dict[str, Any], cls: type = StudentConfig, where: str = "config") -> Any:
    """Inverse of :func:`config_to_dict`; unknown fields raise ``KeyError`` naming them."""
    return _build(cls, data, where)


def override(config: Any, changes: dict[str, Any]) -> Any:
    """Return ``config`` with dotted-path ``changes`` applied, e.g. ``{"detr.num_queries": 50}``."""
    data = config_to_dict(config)
    for path, value in changes.items():
        node = data
        *parents, leaf = path.split(".")
        for part in parents:
            if part not in node or not isinstance(node[part], dict):
                raise KeyError(f"override {path!r}: {part!r} is not a config section")
            node = node[part]
        if leaf not in node:
            raise KeyError(f"override {path!r}: unknown field {leaf!r}")
        node[leaf] = value
    return config_from_dict(data, type(config))
