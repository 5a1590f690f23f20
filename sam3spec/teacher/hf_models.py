"""transformers' SAM 3 models: configs of small teachers, random models, and loading checkpoints.

With :mod:`sam3spec.teacher.hf_adapter` (the teacher protocol over these models) the only modules
that import transformers' SAM 3. Loading refuses weights that do not match their config (missing,
unexpected or mis-shaped keys are named) instead of letting transformers initialise them.
"""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import (
    Sam3Config,
    Sam3Model,
    Sam3TrackerConfig,
    Sam3TrackerModel,
    Sam3TrackerVideoConfig,
    Sam3VideoConfig,
)

from sam3spec.teacher.architecture import TeacherArchitecture
from sam3spec.teacher.layout import TeacherLoadError, check_model_dir

# ``Sam3VideoModel.save_pretrained`` (transformers 5.x) writes the tracker's weights as
# ``tracker_model.tracker_model.*``: its tracker sub-model's save-time renaming prefixes them once
# more. The hub's checkpoints (``facebook/sam3``) name them ``tracker_model.*``, which is what the
# point tracker's own renaming expects; fold the doubled prefix back so a SAM 3 folder re-saved with
# transformers loads like the hub's.
RESAVED_TRACKER_KEYS = {r"^tracker_model\.tracker_model\.": "tracker_model."}


def sam3_configs(arch: TeacherArchitecture) -> tuple[Sam3Config, Sam3TrackerConfig]:
    """transformers configs of a small SAM 3 detector and its point tracker (shared vision shape)."""
    grid = arch.grid
    vision = dict(
        backbone_config=dict(
            model_type="sam3_vit_model",
            hidden_size=arch.vision_hidden,
            intermediate_size=arch.vision_hidden * arch.ffn_ratio,
            num_hidden_layers=arch.vision_layers,
            num_attention_heads=arch.vision_heads,
            image_size=arch.image_size,
            patch_size=arch.patch_size,
            pretrain_image_size=arch.image_size,
            window_size=grid,
            global_attn_indexes=list(range(arch.vision_layers)),
        ),
        fpn_hidden_size=arch.hidden,
        backbone_feature_sizes=[[4 * grid, 4 * grid], [2 * grid, 2 * grid], [grid, grid]],
    )

    def block(layers: int) -> dict:
        return dict(
            hidden_size=arch.hidden,
            num_layers=layers,
            num_attention_heads=arch.heads,
            intermediate_size=arch.hidden * arch.ffn_ratio,
            dropout=0.0,
        )

    detector = Sam3Config(
        vision_config=vision,
        text_config=dict(
            vocab_size=49408,
            hidden_size=arch.text_hidden,
            intermediate_size=arch.text_hidden * arch.ffn_ratio,
            num_hidden_layers=arch.text_layers,
            num_attention_heads=arch.text_heads,
            max_position_embeddings=32,
            projection_dim=arch.text_hidden,
        ),
        geometry_encoder_config=block(arch.geometry_layers),
        detr_encoder_config=block(arch.detr_encoder_layers),
        detr_decoder_config={**block(arch.detr_decoder_layers), "num_queries": arch.num_queries},
        mask_decoder_config=dict(hidden_size=arch.hidden, num_attention_heads=arch.heads),
    )
    tracker = Sam3TrackerConfig(
        vision_config={**vision, "model_type": "sam3_vision_model"},
        prompt_encoder_config=dict(
            hidden_size=arch.hidden, image_size=arch.image_size, patch_size=arch.patch_size
        ),
        mask_decoder_config=dict(
            hidden_size=arch.hidden,
            mlp_dim=arch.hidden * arch.ffn_ratio,
            num_attention_heads=arch.heads,
            iou_head_hidden_dim=arch.hidden,
        ),
    )
    return detector, tracker


def sam3_video_config(arch: TeacherArchitecture) -> Sam3VideoConfig:
    """transformers' ``Sam3VideoConfig`` (the hub's ``facebook/sam3`` layout: detector + video
    tracker in one folder) of ``arch``: :func:`sam3_configs`' detector, and a video tracker with
    its vision shape and one small memory layer of the tracker's width."""
    detector, tracker = sam3_configs(arch)
    memory = dict(
        memory_attention_hidden_size=arch.hidden,
        memory_attention_num_layers=1,
        memory_attention_feed_forward_hidden_size=arch.hidden * arch.ffn_ratio,
        memory_encoder_hidden_size=arch.hidden,
        memory_encoder_output_channels=arch.hidden,
        mask_downsampler_embed_dim=arch.hidden,
        memory_fuser_embed_dim=arch.hidden,
        memory_fuser_intermediate_dim=arch.hidden * arch.ffn_ratio,
        memory_fuser_num_layers=1,
    )
    video_tracker = Sam3TrackerVideoConfig(
        vision_config=tracker.vision_config.to_dict(),
        prompt_encoder_config=tracker.prompt_encoder_config.to_dict(),
        mask_decoder_config=tracker.mask_decoder_config.to_dict(),
        **memory,
    )
    return Sam3VideoConfig(detector_config=detector.to_dict(), tracker_config=video_tracker.to_dict())


def build_models(arch: TeacherArchitecture, seed: int = 0) -> tuple[Sam3Model, Sam3TrackerModel]:
    """Randomly initialised detector + tracker; the tracker's vision encoder is the detector's
    (same module), so features are computed once and the two can be trained together."""
    detector_config, tracker_config = sam3_configs(arch)
    torch.manual_seed(seed)
    detector = Sam3Model(detector_config)
    tracker = Sam3TrackerModel(tracker_config)
    tracker.vision_encoder = detector.vision_encoder
    return detector, tracker


def build_detector(arch: TeacherArchitecture | None = None, seed: int = 0) -> Sam3Model:
    """A randomly initialised detector: ``arch``'s shape, or SAM 3's published one when None
    (transformers' default ``Sam3Config``: 1008 px, 840M parameters), for timing without weights.

    Built on the default device: under ``with torch.device("cuda"):`` its weights are initialised
    on the GPU, under ``torch.device("meta")`` not at all (shapes only).
    """
    config = Sam3Config() if arch is None else sam3_configs(arch)[0]
    torch.manual_seed(seed)
    return Sam3Model(config)


def apply_resolution(config, resolution: int) -> None:
    """Set a detector / tracker / vision config to run at ``resolution`` px (RoPE grid follows)."""
    vision = config.vision_config
    patch = vision.backbone_config.patch_size
    if resolution % patch:
        raise ValueError(f"resolution {resolution} is not a multiple of the patch size {patch}")
    grid = resolution // patch
    vision.backbone_config.image_size = resolution
    vision.backbone_feature_sizes = [[4 * grid, 4 * grid], [2 * grid, 2 * grid], [grid, grid]]
    if hasattr(config, "prompt_encoder_config"):
        config.prompt_encoder_config.image_size = resolution


def load_part(
    model_class, directory, what: str, device, dtype, resolution: int | None, local_only: bool = True
):
    """``from_pretrained`` that refuses missing / mismatched weights instead of initialising them."""
    config = model_class.config_class.from_pretrained(directory, local_files_only=local_only)
    key_mapping = None
    if getattr(config, "model_type", None) == "sam3_video":
        config = config.detector_config if model_class is Sam3Model else config.tracker_config
        config = model_class.config_class(**config) if isinstance(config, dict) else config
        if model_class is not Sam3Model:
            key_mapping = RESAVED_TRACKER_KEYS
    if resolution is not None:
        apply_resolution(config, resolution)
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()
    try:
        model, info = model_class.from_pretrained(
            directory,
            config=config,
            dtype=dtype,
            local_files_only=local_only,
            output_loading_info=True,
            ignore_mismatched_sizes=True,  # reported below by name instead of a generic error
            key_mapping=key_mapping,
        )
    except (RuntimeError, ValueError, OSError) as error:
        raise TeacherLoadError(f"{what}: cannot load weights from {directory}: {error}") from error
    finally:
        transformers_logging.enable_progress_bar()
    missing = sorted(info.get("missing_keys", []))
    mismatched = sorted(
        str(item[0] if isinstance(item, tuple) else item) for item in info.get("mismatched_keys", [])
    )
    unexpected = sorted(info.get("unexpected_keys", []))
    if missing or mismatched or unexpected:

        def names(keys: list[str]) -> str:
            return ", ".join(keys[:8]) + (f" ... ({len(keys)} in all)" if len(keys) > 8 else "")

        raise TeacherLoadError(
            f"{what}: weights in {directory} do not match its config.json: "
            + "; ".join(
                part
                for part in (
                    f"missing keys [{names(missing)}]" if missing else "",
                    f"mismatched shapes [{names(mismatched)}]" if mismatched else "",
                    f"unexpected keys [{names(unexpected)}]" if unexpected else "",
                )
                if part
            )
        )
    return model.to(device).eval().requires_grad_(False)


def backbones_equal(detector: Sam3Model, tracker: Sam3TrackerModel) -> bool:
    first = detector.vision_encoder.backbone.state_dict()
    second = tracker.vision_encoder.backbone.state_dict()
    return first.keys() == second.keys() and all(torch.equal(first[k], second[k]) for k in first)


def load_models(
    layout: dict, device, dtype, resolution: int | None = None, with_tracker: bool = True
) -> tuple[Sam3Model, Sam3TrackerModel | None, bool]:
    """``(detector, tracker or None, the two share the ViT's weights)`` of a resolved local layout."""
    check_model_dir(layout["detector"], "teacher detector")
    detector = load_part(Sam3Model, layout["detector"], "teacher detector", device, dtype, resolution)
    tracker = None
    if with_tracker and layout.get("tracker") is not None:
        check_model_dir(layout["tracker"], "teacher tracker")
        tracker = load_part(Sam3TrackerModel, layout["tracker"], "teacher tracker", device, dtype, resolution)
    return detector, tracker, tracker is not None and backbones_equal(detector, tracker)


def download(repo_id: str) -> Path:
    """The local folder of a hub checkpoint (downloads it; callers allow this explicitly)."""
    from huggingface_hub import snapshot_download

    return Path(snapshot_download(repo_id))
