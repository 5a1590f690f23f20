"""Loading a teacher folder: clear errors naming the file or keys; never a download when offline."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from sam3spec.teacher.loading import TeacherLoadError, load_teacher, resolve_layout


@pytest.fixture
def copy(tiny_teacher_dir: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(tiny_teacher_dir, tmp_path / "teacher"))


def _edit_config(path: Path, edit) -> None:
    config = json.loads(path.read_text())
    edit(config)
    path.write_text(json.dumps(config))


def test_loads_the_sam3spec_layout(tiny_teacher_dir: Path) -> None:
    teacher = load_teacher(tiny_teacher_dir, dtype=torch.float32)
    assert teacher.tracker is not None and teacher.shared_backbone
    assert not any(p.requires_grad for p in teacher.detector.parameters())
    assert not teacher.detector.training


def test_default_dtype_is_bf16_for_a_sam3_folder(tiny_teacher_dir: Path) -> None:
    assert load_teacher(tiny_teacher_dir, with_tracker=False).dtype == torch.bfloat16


def test_transformers_layout(tiny_teacher_dir: Path) -> None:
    layout = resolve_layout(tiny_teacher_dir / "detector")  # a plain save_pretrained folder
    assert layout["detector"] == tiny_teacher_dir / "detector" and layout["tracker"] is None
    teacher = load_teacher(tiny_teacher_dir / "detector", dtype=torch.float32)
    assert teacher.tracker is None


@pytest.mark.parametrize(
    ("remove", "named"),
    [
        ("detector/config.json", "detector/config.json"),
        ("detector/model.safetensors", "detector/model.safetensors"),
        ("tracker/model.safetensors", "tracker/model.safetensors"),
    ],
)
def test_missing_file_is_named(copy: Path, remove: str, named: str) -> None:
    (copy / remove).unlink()
    with pytest.raises(TeacherLoadError, match=named.replace(".", r"\.")):
        load_teacher(copy, dtype=torch.float32)


def test_missing_shard_is_named(copy: Path) -> None:
    weights = copy / "detector" / "model.safetensors"
    weights.rename(copy / "detector" / "model-00001-of-00001.safetensors")
    index = {
        "metadata": {},
        "weight_map": {"vision_encoder.neck.fpn_layers.0.proj1.weight": "model-00002-of-00002.safetensors"},
    }
    (copy / "detector" / "model.safetensors.index.json").write_text(json.dumps(index))
    with pytest.raises(TeacherLoadError, match="model-00002-of-00002.safetensors"):
        load_teacher(copy, dtype=torch.float32)


def test_mismatched_shapes_are_named(copy: Path) -> None:
    _edit_config(copy / "detector" / "config.json", lambda c: c["detr_decoder_config"].update(num_queries=11))
    with pytest.raises(TeacherLoadError, match=r"mismatched shapes \[detr_decoder.query_embed.weight"):
        load_teacher(copy, dtype=torch.float32)


def test_missing_keys_are_named(copy: Path) -> None:
    _edit_config(copy / "detector" / "config.json", lambda c: c["detr_decoder_config"].update(num_layers=3))
    with pytest.raises(TeacherLoadError, match=r"missing keys \[detr_decoder\.layers\.2\."):
        load_teacher(copy, dtype=torch.float32)


def test_unexpected_keys_are_named(copy: Path) -> None:
    _edit_config(copy / "detector" / "config.json", lambda c: c["detr_decoder_config"].update(num_layers=1))
    with pytest.raises(TeacherLoadError, match=r"unexpected keys \[detr_decoder\.layers\.1\."):
        load_teacher(copy, dtype=torch.float32)


def test_wrong_model_type(copy: Path) -> None:
    _edit_config(copy / "detector" / "config.json", lambda c: c.update(model_type="bert"))
    with pytest.raises(TeacherLoadError, match="model_type 'bert'"):
        load_teacher(copy / "detector")


def test_hub_id_is_not_downloaded_offline(monkeypatch: pytest.MonkeyPatch) -> None:
    import huggingface_hub

    def refuse(*args, **kwargs):
        raise AssertionError("a download was attempted")

    monkeypatch.setattr(huggingface_hub, "snapshot_download", refuse)
    with pytest.raises(TeacherLoadError, match="not a local folder and downloads are off"):
        load_teacher("facebook/sam3")


def test_missing_teacher_is_explained(tmp_path: Path) -> None:
    with pytest.raises(TeacherLoadError, match="nowhere"):
        load_teacher(tmp_path / "nowhere")
    with pytest.raises(TeacherLoadError, match="no teacher given"):
        load_teacher(None)


def test_ship_halves_the_weights_and_keeps_outputs(
    tiny_teacher_dir: Path, tiny_teacher, tmp_path: Path, pixels
) -> None:
    from sam3spec.world.teacher import ship_teacher

    shipped = ship_teacher(tiny_teacher_dir, tmp_path / "assets", {"metrics": {"mIoU": 0.5}})
    meta = json.loads((shipped / "teacher.json").read_text())
    assert meta["stored_dtype"] == "float16" and meta["metrics"] == {"mIoU": 0.5}
    size = (shipped / "detector" / "model.safetensors").stat().st_size
    assert size < 0.6 * (tiny_teacher_dir / "detector" / "model.safetensors").stat().st_size
    teacher = load_teacher(shipped, dtype=torch.float32)
    embeddings = teacher.encode_image(teacher.preprocess(pixels))
    reference = tiny_teacher.encode_image(tiny_teacher.preprocess(pixels))
    first = teacher.predict(embeddings, text="red circle").pred_logits
    assert torch.allclose(first, tiny_teacher.predict(reference, text="red circle").pred_logits, atol=1e-2)
