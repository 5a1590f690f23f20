"""Find, check and load a teacher; save the concept-world teacher.

Teacher folder layouts accepted by :func:`load_teacher`:

* **sam3spec layout** (what ``sam3spec teacher train-world`` writes, and the shipped teacher):
  ``teacher.json`` + ``detector/`` (``Sam3Model.save_pretrained``) + optional ``tracker/``
  (``Sam3TrackerModel.save_pretrained``).
* **transformers layout**: one ``save_pretrained`` folder (``config.json`` + ``model.safetensors``
  or a sharded ``model.safetensors.index.json``), e.g. a local copy of ``facebook/sam3``; a
  ``sam3_video`` config holds both the detector and the tracker, a ``sam3`` config only the
  detector. Tokenizer files (``vocab.json`` + ``merges.txt``) are used when present; otherwise the
  tokenizer is rebuilt from open_clip's BPE file.
* a **hub id** (``facebook/sam3``) only with ``allow_hub=True``; nothing is downloaded otherwise.

No path means the shipped concept-world teacher in ``sam3spec/assets/teacher``.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import torch

from sam3spec.atomic import atomic_write_json

ASSET_TEACHER = Path(__file__).resolve().parent.parent / "assets" / "teacher"
TEACHER_META = "teacher.json"


class TeacherLoadError(RuntimeError):
    """A teacher folder is missing files or its weights do not match its config."""


def default_teacher_path() -> Path:
    """The shipped concept-world teacher."""
    return ASSET_TEACHER


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


def default_dtype(device: torch.device, shipped: bool) -> torch.dtype:
    """float32 for the small shipped teacher; for SAM 3: bf16 on CPU / CUDA, fp16 on MPS."""
    if shipped:
        return torch.float32
    return torch.float16 if device.type == "mps" else torch.bfloat16


def load_teacher(
    path: str | Path | None = None,
    device: str | torch.device = "cpu",
    dtype: torch.dtype | None = None,
    resolution: int | None = None,
    allow_hub: bool = False,
    with_tracker: bool = True,
):
    """Load a teacher as an :class:`~sam3spec.teacher.hf_adapter.HFTeacher` (eval mode, no grad).

    Args:
        path: teacher folder (see the module docstring), a hub id with ``allow_hub``, or None for
            the shipped concept-world teacher.
        device: where to run.
        dtype: parameter dtype; None picks :func:`default_dtype`.
        resolution: run at this input size instead of the trained one (e.g. 504 for SAM 3's
            1008, as the student trains): the ViT's RoPE grid and global-attention positions are
            recomputed for the new grid. Accuracy caveat: SAM 3 was trained at 1008, so masks and
            scores at another size differ from its published behaviour (measure before trusting).
        allow_hub: permit a download when ``path`` is not a local folder.
        with_tracker: also load the point tracker when the folder has one.

    The ``score_offset`` of a ``teacher.json`` (a score calibration, :mod:`sam3spec.teacher.calibration`)
    is applied to the detector's query logits.

    Raises:
        TeacherLoadError: missing files, or weights that do not match the config (names them).
    """
    from sam3spec.teacher import hf_adapter

    device = torch.device(device)
    shipped = path is None
    local = Path(path) if path is not None else default_teacher_path()
    if not local.exists():
        if not allow_hub or path is None:
            raise TeacherLoadError(
                f"teacher {path or local} is not a local folder and downloads are off "
                "(pass allow_hub=True / --allow-hub to fetch it from the hub)"
            )
        return hf_adapter.load_from_hub(
            str(path), device, dtype or default_dtype(device, False), resolution, with_tracker
        )
    layout = resolve_layout(local)
    meta_path = local / TEACHER_META
    meta = json.loads(meta_path.read_text()) if meta_path.is_file() else {}
    shipped = shipped or meta.get("kind") == "concept-world"
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


def ship_teacher(
    source: str | Path, destination: str | Path = ASSET_TEACHER, extra_meta: dict | None = None
) -> Path:
    """Copy a trained concept-world teacher to ``destination`` with fp16 weights (half the size;
    it is loaded back as fp32). ``extra_meta`` (e.g. measured metrics) is merged into ``teacher.json``."""
    source, destination = Path(source), Path(destination)
    meta = json.loads((source / TEACHER_META).read_text()) if (source / TEACHER_META).is_file() else {}
    meta.update(extra_meta or {}, stored_dtype="float16")
    teacher = load_teacher(source, dtype=torch.float32)
    tracker = None if teacher.tracker is None else teacher.tracker.half()
    return save_teacher(destination, teacher.detector.half(), tracker, meta)
