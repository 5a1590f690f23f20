"""Find, check, load and save a teacher.

Teacher folder layouts accepted by :func:`load_teacher`:

* **sam3spec layout** (what ``sam3spec teacher train`` writes, e.g. the shipped concept-world teacher):
  ``teacher.json`` + ``detector/`` (``Sam3Model.save_pretrained``) + optional ``tracker/``
  (``Sam3TrackerModel.save_pretrained``).
* **transformers layout**: one ``save_pretrained`` folder (``config.json`` + ``model.safetensors``
  or a sharded ``model.safetensors.index.json``), e.g. a local copy of ``facebook/sam3``; a
  ``sam3_video`` config holds both the detector and the tracker, a ``sam3`` config only the
  detector. Tokenizer files (``vocab.json`` + ``merges.txt``) are used when present; otherwise the
  tokenizer is rebuilt from open_clip's BPE file.
* a **hub id** (``facebook/sam3``) only with ``allow_hub=True``; nothing is downloaded otherwise.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import torch

from sam3spec.atomic import atomic_write_json
from sam3spec.teacher.layout import TEACHER_META, TeacherLoadError, check_model_dir, resolve_layout

__all__ = [
    "TEACHER_META",
    "TeacherLoadError",
    "check_model_dir",
    "load_teacher",
    "resolve_layout",
    "save_teacher",
]


def default_dtype(device: torch.device, shipped: bool) -> torch.dtype:
    """float32 for a small teacher trained by this package; for SAM 3: bf16 on CPU / CUDA, fp16 on MPS."""
    if shipped:
        return torch.float32
    return torch.float16 if device.type == "mps" else torch.bfloat16


def load_teacher(
    path: str | Path,
    device: str | torch.device = "cpu",
    dtype: torch.dtype | None = None,
    resolution: int | None = None,
    allow_hub: bool = False,
    with_tracker: bool = True,
):
    """Load a teacher as an :class:`~sam3spec.teacher.hf_adapter.HFTeacher` (eval mode, no grad).

    Args:
        path: teacher folder (see :mod:`sam3spec.teacher.layout`), or a hub id with ``allow_hub``.
        device: where to run.
        dtype: parameter dtype; None picks :func:`default_dtype`.
        resolution: run at this input size instead of the trained one (e.g. 504 for SAM 3's
            1008, as the student trains): the ViT's RoPE grid and global-attention positions are
            recomputed for the new grid. Accuracy caveat: SAM 3 was trained at 1008, so masks and
            scores at another size differ from its published behaviour (measure before trusting).
        allow_hub: permit a download when ``path`` is not a local folder.
        with_tracker: also load the point tracker when the folder has one.

    The ``score_offset`` of a ``teacher.json`` (a score calibration fitted on training images)
    is applied to the detector's query logits.

    Raises:
        TeacherLoadError: missing files, or weights that do not match the config (names them).
    """
    from sam3spec.teacher import hf_adapter

    if path is None or str(path) == "":
        raise TeacherLoadError("no teacher given: pass a teacher folder (or a hub id with allow_hub=True)")
    device = torch.device(device)
    local = Path(path)
    if not local.exists():
        if not allow_hub:
            raise TeacherLoadError(
                f"teacher {path} is not a local folder and downloads are off "
                "(pass allow_hub=True / --allow-hub to fetch it from the hub)"
            )
        return hf_adapter.load_from_hub(
            str(path), device, dtype or default_dtype(device, False), resolution, with_tracker
        )
    layout = resolve_layout(local)
    meta_path = local / TEACHER_META
    meta = json.loads(meta_path.read_text()) if meta_path.is_file() else {}
    # Small teachers trained by this package (the concept world's) run in float32.
    shipped = meta.get("kind") == "concept-world"
    teacher = hf_adapter.load_local(
        layout,
        device=device,
        dtype=dtype or default_dtype(device, shipped),
        resolution=resolution,
        with_tracker=with_tracker,
    )
    offset = meta.get("score_offset", 0.0)
    if not isinstance(offset, (int, float)) or isinstance(offset, bool) or not math.isfinite(offset):
        raise TeacherLoadError(f"teacher: {meta_path} has score_offset {offset!r}; expected a finite number")
    teacher.score_offset = float(offset)
    return teacher


def save_teacher(directory: str | Path, detector, tracker, meta: dict[str, Any]) -> Path:
    """Write a teacher in the sam3spec layout (``detector/``, ``tracker/``, ``teacher.json``)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    detector.save_pretrained(directory / "detector")
    if tracker is not None:
        tracker.save_pretrained(directory / "tracker")
    (directory / TEACHER_META).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    return directory


def update_teacher_meta(directory: str | Path, changes: dict[str, Any]) -> Path:
    """Merge ``changes`` into ``directory/teacher.json`` atomically (temporary file + rename), in
    :func:`save_teacher`'s format.

    Raises:
        TeacherLoadError: the folder has no ``teacher.json`` (not a sam3spec-layout teacher).
    """
    path = Path(directory) / TEACHER_META
    if not path.is_file():
        raise TeacherLoadError(f"teacher: {path} not found (only sam3spec-layout teacher folders have one)")
    meta = json.loads(path.read_text())
    meta.update(changes)
    atomic_write_json(meta, path, indent=2, sort_keys=False)  # save_teacher's layout
    return path
