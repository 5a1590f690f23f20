"""The concept-world teacher: a small SAM 3 detector + point tracker trained from scratch on the
concept world, and shipped with the package (``sam3spec/world/assets/teacher``).

Modules: ``data`` (fresh training scenes), ``init`` (training-only initialisation), ``losses``
(set-prediction losses), ``train`` (the loop), ``calibration`` (a score offset fitted by cgF1).
It loads like any teacher folder in the sam3spec layout (:func:`sam3spec.teacher.loading.load_teacher`).
"""

from __future__ import annotations

from pathlib import Path

from sam3spec.teacher.architecture import TeacherArchitecture

# The shipped concept-world teacher: 160 px (the world's native size), 80x80 masks; narrow (48)
# because the 3x3 convolutions at 80x80 dominate a CPU training step.
WORLD = TeacherArchitecture()

SHIPPED_TEACHER = Path(__file__).resolve().parents[1] / "assets" / "teacher"


def shipped_teacher_path() -> Path:
    """The folder of the teacher shipped with the package (sam3spec layout, fp16 weights)."""
    return SHIPPED_TEACHER


def ship_teacher(
    source: str | Path, destination: str | Path = SHIPPED_TEACHER, extra_meta: dict | None = None
) -> Path:
    """Copy a trained concept-world teacher to ``destination`` with fp16 weights (half the size;
    it is loaded back as fp32). ``extra_meta`` (e.g. measured metrics) is merged into ``teacher.json``."""
    import json

    import torch

    from sam3spec.teacher.loading import TEACHER_META, load_teacher, save_teacher

    source, destination = Path(source), Path(destination)
    meta = json.loads((source / TEACHER_META).read_text()) if (source / TEACHER_META).is_file() else {}
    meta.update(extra_meta or {}, stored_dtype="float16")
    teacher = load_teacher(source, dtype=torch.float32)
    tracker = None if teacher.tracker is None else teacher.tracker.half()
    return save_teacher(destination, teacher.detector.half(), tracker, meta)
