"""A ``sam3_video`` folder (the hub's ``facebook/sam3`` layout: detector + video tracker in one
``config.json`` + ``model.safetensors``) loads as a teacher, as the hub writes it and as transformers'
``save_pretrained`` re-writes it (tracker keys doubled to ``tracker_model.tracker_model.*``)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file
from transformers import Sam3VideoModel

from sam3spec.teacher.architecture import TINY
from sam3spec.teacher.hf_models import sam3_video_config
from sam3spec.teacher.loading import load_teacher, resolve_layout


@pytest.fixture(scope="module")
def video_model() -> Sam3VideoModel:
    torch.manual_seed(0)
    return Sam3VideoModel(sam3_video_config(TINY)).eval()


def hub_folder(model: Sam3VideoModel, folder: Path) -> Path:
    """``config.json`` + ``model.safetensors`` with the hub's key names (``detector_model.*``,
    ``tracker_model.*``, ``tracker_neck.*``: the module's own state-dict names)."""
    folder.mkdir()
    model.config.save_pretrained(folder)
    state = {key: value.contiguous() for key, value in model.state_dict().items()}
    save_file(state, str(folder / "model.safetensors"), metadata={"format": "pt"})
    return folder


def keys(folder: Path) -> list[str]:
    with safe_open(str(folder / "model.safetensors"), "pt") as weights:
        return list(weights.keys())


def assert_same_weights(teacher, model: Sam3VideoModel) -> None:
    detector = model.detector_model.state_dict()
    assert all(torch.equal(value, detector[key]) for key, value in teacher.detector.state_dict().items())
    tracker = model.tracker_model.state_dict()
    loaded = teacher.tracker.state_dict()
    shared = [key for key in loaded if key in tracker]  # prompt encoder, mask decoder, ...
    assert len(shared) > 20 and all(torch.equal(loaded[key], tracker[key]) for key in shared)
    neck = model.tracker_neck.state_dict()
    assert all(torch.equal(loaded[f"vision_encoder.neck.{key}"], value) for key, value in neck.items())


def test_a_hub_layout_sam3_video_folder_loads(video_model, tmp_path) -> None:
    folder = hub_folder(video_model, tmp_path / "sam3")
    assert {key.split(".")[0] for key in keys(folder)} == {"detector_model", "tracker_model", "tracker_neck"}
    assert resolve_layout(folder) == {"detector": folder, "tracker": folder, "tokenizer": folder}
    teacher = load_teacher(folder, dtype=torch.float32)
    assert teacher.tracker is not None and teacher.shared_backbone
    assert_same_weights(teacher, video_model)


def test_a_sam3_video_folder_resaved_with_transformers_loads(video_model, tmp_path) -> None:
    folder = tmp_path / "resaved"
    video_model.save_pretrained(folder)
    assert any(key.startswith("tracker_model.tracker_model.") for key in keys(folder))  # the doubled prefix
    teacher = load_teacher(folder, dtype=torch.float32)
    assert teacher.tracker is not None and teacher.shared_backbone
    assert_same_weights(teacher, video_model)
