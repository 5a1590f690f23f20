"""Video-memory checkpoints: only the trained part (resampler + memory attention), loadable onto any
full student of the same config.

Layout of a folder::

    memory.safetensors   # memory_resampler.* and memory_attention.* tensors, nothing else
    memory.json          # {"format": "sam3spec-video-memory", "student": <config>, "keys": [...], ...}

Written under a temporary name and renamed into place (a killed writer leaves no half folder). The
trainer's checkpoints of a video stage (``checkpoints/step_N/``) hold these two files plus the
training state (:mod:`sam3spec.distill.state`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from sam3spec.atomic import atomic_write_folder
from sam3spec.config import config_to_dict

MEMORY_WEIGHTS = "memory.safetensors"
MEMORY_JSON = "memory.json"
FORMAT = "sam3spec-video-memory"
PREFIXES = ("memory_resampler.", "memory_attention.")


def memory_state(student: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The student's memory tensors (the only ones a video stage changes)."""
    return {
        k: v.detach().cpu().contiguous().clone()
        for k, v in student.state_dict().items()
        if k.startswith(PREFIXES)
    }


def write_memory(student: torch.nn.Module, folder: str | Path, meta: dict[str, Any] | None = None) -> None:
    """Write the memory's tensors and ``memory.json`` into the existing ``folder`` (not atomic: see
    :func:`save_memory`; the trainer's checkpoints add their training state beside them)."""
    folder = Path(folder)
    state = memory_state(student)
    save_file(state, str(folder / MEMORY_WEIGHTS), metadata={"format": FORMAT})
    record = {
        "format": FORMAT,
        "student": config_to_dict(student.config),
        "keys": sorted(state),
        "parameters": int(sum(v.numel() for v in state.values())),
        **(meta or {}),
    }
    (folder / MEMORY_JSON).write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")


def save_memory(student: torch.nn.Module, directory: str | Path, meta: dict[str, Any] | None = None) -> Path:
    """Write ``directory`` (replaced if it exists) atomically; returns it."""
    return atomic_write_folder(Path(directory), lambda folder: write_memory(student, folder, meta))


def load_memory(student: torch.nn.Module, directory: str | Path) -> dict[str, Any]:
    """Load a memory checkpoint onto a full student (in place); returns its ``memory.json``.

    Raises:
        FileNotFoundError: no ``memory.safetensors`` in ``directory``.
        ValueError: keys outside the memory, missing memory keys, or shape mismatches (named).
    """
    directory = Path(directory)
    path = directory / MEMORY_WEIGHTS
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found (a video-memory checkpoint folder holds {MEMORY_WEIGHTS})")
    state = load_file(str(path))
    own = memory_state(student)
    outside = sorted(k for k in state if not k.startswith(PREFIXES))
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    wrong = sorted(
        f"{k}: {tuple(state[k].shape)} vs {tuple(own[k].shape)}"
        for k in set(state) & set(own)
        if state[k].shape != own[k].shape
    )
    if outside or missing or unexpected or wrong:
        raise ValueError(
            f"{path}: does not fit the student: outside the memory {outside[:3]}, missing {missing[:3]}, "
            f"unexpected {unexpected[:3]}, shape mismatches {wrong[:3]}"
        )
    student.load_state_dict(state, strict=False)
    meta_path = directory / MEMORY_JSON
    return json.loads(meta_path.read_text()) if meta_path.is_file() else {}
