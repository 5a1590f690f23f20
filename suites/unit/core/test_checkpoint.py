"""save_pretrained / load_student: bit-exact round trip, strict errors naming keys, strict=False report."""

import json

import pytest
import torch

from sam3spec.checkpoint import CheckpointError, load_student, load_weights, read_config, save_pretrained
from sam3spec.config import TINY_PRESET, get_preset, override
from sam3spec.models.build import build_student


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    return build_student(TINY_PRESET).eval()


def test_save_load_bit_exact(tiny, tmp_path):
    path = save_pretrained(tiny, tmp_path / "ckpt")
    assert sorted(p.name for p in path.iterdir()) == ["config.json", "model.safetensors"]
    loaded = load_student(path)
    assert loaded.config == tiny.config
    assert loaded.load_report.clean
    for (name, a), (_, b) in zip(tiny.state_dict().items(), loaded.state_dict().items(), strict=True):
        assert torch.equal(a, b), name
    # overwriting an existing checkpoint leaves no temporary directories behind
    save_pretrained(tiny, path)
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt"]


def test_loading_another_presets_checkpoint_fails_naming_keys_and_shapes(tiny, tmp_path):
    save_pretrained(tiny, tmp_path / "ckpt")
    other = build_student(
        override(get_preset(TINY_PRESET), {"detr.num_queries": 8, "detr.decoder_layers": 1})
    )
    with pytest.raises(CheckpointError) as error:
        load_weights(other, tmp_path / "ckpt")
    message = str(error.value)
    assert "model.safetensors" in message
    assert "unexpected" in message and "detr_decoder" in message
    assert "shape-mismatched" in message and "vs model (8," in message


def test_strict_false_reports_initialised_modules(tiny, tmp_path):
    save_pretrained(tiny, tmp_path / "ckpt")
    bigger = build_student(override(get_preset(TINY_PRESET), {"detr.decoder_layers": 3}))
    report = load_weights(bigger, tmp_path / "ckpt", strict=False)
    assert report.missing and not report.unexpected and not report.mismatched
    assert any(name.startswith("detr_decoder") for name in report.initialised_modules)
    loaded_key = next(k for k in tiny.state_dict() if k.startswith("image_encoder"))
    assert torch.equal(bigger.state_dict()[loaded_key], tiny.state_dict()[loaded_key])


def test_missing_and_corrupt_files(tiny, tmp_path):
    with pytest.raises(CheckpointError, match="config.json: missing"):
        read_config(tmp_path)
    path = save_pretrained(tiny, tmp_path / "ckpt")
    (path / "model.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(CheckpointError, match="unreadable safetensors"):
        load_student(path)
    (path / "config.json").write_text(json.dumps({"format": "other"}))
    with pytest.raises(CheckpointError, match="not a sam3spec student config"):
        read_config(path)


def test_checkpoints_with_fields_of_removed_experiments_load_when_those_were_off(tiny, tmp_path):
    """Checkpoints written while the mask refiner and query groups existed store
    ``mask_refine_layers`` and ``detr.train_groups``: at their off values they load (ignored), on
    they are refused naming the field."""
    path = save_pretrained(tiny, tmp_path / "ckpt")
    payload = json.loads((path / "config.json").read_text())
    payload["config"]["mask_refine_layers"] = 0
    payload["config"]["detr"]["train_groups"] = 1
    (path / "config.json").write_text(json.dumps(payload))
    assert read_config(path) == tiny.config
    loaded = load_student(path)
    assert loaded.load_report.clean and loaded.config == tiny.config
    for field, value in (("mask_refine_layers", 1), ("train_groups", 4)):
        changed = json.loads(json.dumps(payload))
        (changed["config"]["detr"] if field == "train_groups" else changed["config"])[field] = value
        (path / "config.json").write_text(json.dumps(changed))
        with pytest.raises(CheckpointError, match=rf"{field}={value}.*removed from the code"):
            read_config(path)
