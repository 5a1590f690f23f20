"""Teacher folder layouts: where a teacher's detector, tracker and tokenizer files are, checked.

* **sam3spec layout** (what ``sam3spec teacher train`` writes, e.g. the shipped concept-world teacher):
  ``teacher.json`` + ``detector/`` (``Sam3Model.save_pretrained``) + optional ``tracker/``
  (``Sam3TrackerModel.save_pretrained``).
* **transformers layout**: one ``save_pretrained`` folder (``config.json`` + ``model.safetensors``
  or a sharded ``model.safetensors.index.json``), e.g. a local copy of ``facebook/sam3``; a
  ``sam3_video`` config holds both the detector and the tracker, a ``sam3`` config only the
  detector.

Standard library only: both :mod:`sam3spec.teacher.loading` and the transformers adapter
(:mod:`sam3spec.teacher.hf_adapter`) check folders with it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

TEACHER_META = "teacher.json"


class TeacherLoadError(RuntimeError):
    """A teacher folder is missing files or its weights do not match its config."""


def _weights_present(directory: Path) -> str | None:
    """The weights file name found in a ``save_pretrained`` folder, or None."""
    for name in ("model.safetensors", "model.safetensors.index.json"):
        if (directory / name).is_file():
            return name
    return None


def check_model_dir(directory: Path, what: str) -> dict[str, Any]:
    """Check a ``save_pretrained`` folder and return its config; raise naming what is missing."""
    if not directory.is_dir():
        raise TeacherLoadError(f"{what}: folder {directory} does not exist")
    config_path = directory / "config.json"
    if not config_path.is_file():
        raise TeacherLoadError(f"{what}: missing file {config_path}")
    weights = _weights_present(directory)
    if weights is None:
        raise TeacherLoadError(
            f"{what}: missing weights file {directory / 'model.safetensors'} (or a sharded index)"
        )
    if weights.endswith(".index.json"):
        index = json.loads((directory / weights).read_text())
        for shard in sorted(set(index.get("weight_map", {}).values())):
            if not (directory / shard).is_file():
                raise TeacherLoadError(
                    f"{what}: missing weights shard {directory / shard} named in {weights}"
                )
    try:
        return json.loads(config_path.read_text())
    except json.JSONDecodeError as error:
        raise TeacherLoadError(f"{what}: {config_path} is not valid JSON ({error})") from error


def resolve_layout(path: Path) -> dict[str, Path | None]:
    """Where the detector, tracker and tokenizer files of a teacher folder are."""
    if (path / TEACHER_META).is_file() or (path / "detector").is_dir():
        tracker = path / "tracker"
        return {
            "detector": path / "detector",
            "tracker": tracker if tracker.exists() else None,
            "tokenizer": path,
        }
    config = check_model_dir(path, "teacher")
    model_type = config.get("model_type")
    if model_type == "sam3_video":
        return {"detector": path, "tracker": path, "tokenizer": path}
    if model_type == "sam3":
        return {"detector": path, "tracker": None, "tokenizer": path}
    raise TeacherLoadError(
        f"teacher: {path / 'config.json'} has model_type {model_type!r}; expected 'sam3' or 'sam3_video'"
    )
