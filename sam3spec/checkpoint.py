"""Student checkpoints: safetensors weights + the resolved config as JSON.

Layout of a checkpoint directory::

    model.safetensors   # every parameter and buffer of the student
    config.json         # {"format": "sam3spec-student", "version": 1, "config": {...}}

Loading is strict by default and names the missing, unexpected and shape-mismatched keys;
``strict=False`` loads what matches and reports which modules were initialised instead (the
Phase 1 -> Phase 2 hand-off).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from sam3spec.atomic import atomic_write_folder
from sam3spec.config import StudentConfig, config_from_dict, config_to_dict, drop_retired_fields

if TYPE_CHECKING:
    from sam3spec.models.student import Student

WEIGHTS_NAME = "model.safetensors"
CONFIG_NAME = "config.json"
FORMAT = "sam3spec-student"
VERSION = 1


class CheckpointError(ValueError):
    """A checkpoint that cannot be loaded as asked; the message names the file and keys."""


@dataclass
class CheckpointReport:
    """What a load did.

    Attributes:
        missing: keys of the model absent from the checkpoint (kept at their initialisation).
        unexpected: keys of the checkpoint the model does not have (ignored).
        mismatched: ``key: checkpoint shape vs model shape`` entries (kept at initialisation).
    """

    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    mismatched: list[str] = field(default_factory=list)

    @property
    def initialised_modules(self) -> list[str]:
        """Top-level module prefixes (two levels) whose weights were not loaded."""
        names = [key.rsplit(".", 1)[0] for key in self.missing + [m.split(":")[0] for m in self.mismatched]]
        return sorted({".".join(name.split(".")[:2]) for name in names})

    @property
    def clean(self) -> bool:
        return not (self.missing or self.unexpected or self.mismatched)

    def summary(self) -> str:
        if self.clean:
            return "all weights loaded"
        parts = []
        if self.missing:
            parts.append(f"{len(self.missing)} missing (initialised: {', '.join(self.initialised_modules)})")
        if self.unexpected:
            parts.append(f"{len(self.unexpected)} unexpected (ignored): {_head(self.unexpected)}")
        if self.mismatched:
            parts.append(f"{len(self.mismatched)} shape-mismatched: {_head(self.mismatched)}")
        return "; ".join(parts)


def _head(items: list[str], count: int = 5) -> str:
    more = f" ... (+{len(items) - count} more)" if len(items) > count else ""
    return ", ".join(items[:count]) + more


def write_student(model: Student, folder: str | Path, state: dict[str, torch.Tensor] | None = None) -> None:
    """Write ``model``'s weights (or ``state``, under the model's config) and config into the
    existing ``folder`` (``model.safetensors`` + ``config.json``; not atomic: see :func:`save_pretrained`)."""
    from safetensors.torch import save_file

    folder = Path(folder)
    # safetensors refuses shared or non-contiguous storage: give it owned contiguous copies.
    state = {
        key: value.detach().to("cpu").contiguous().clone()
        for key, value in (state or model.state_dict()).items()
    }
    save_file(state, str(folder / WEIGHTS_NAME), metadata={"format": FORMAT})
    payload = {"format": FORMAT, "version": VERSION, "config": config_to_dict(model.config)}
    (folder / CONFIG_NAME).write_text(json.dumps(payload, indent=2) + "\n")


def save_pretrained(model: Student, directory: str | Path) -> Path:
    """Write ``model`` to ``directory`` atomically (a temp dir renamed into place).

    Returns:
        The checkpoint directory.
    """
    return atomic_write_folder(Path(directory), lambda folder: write_student(model, folder))


def read_config(directory: str | Path) -> StudentConfig:
    """The :class:`StudentConfig` stored in a checkpoint directory.

    Fields of removed experiments (:data:`~sam3spec.config.RETIRED_STUDENT_FIELDS`) stored at their
    "off" value are ignored, so checkpoints written while those fields existed still load; one that
    is on raises :class:`CheckpointError` naming it.
    """
    path = Path(directory) / CONFIG_NAME
    if not path.is_file():
        raise CheckpointError(
            f"{path}: missing; a student checkpoint directory holds {CONFIG_NAME} and {WEIGHTS_NAME}"
        )
    try:
        payload = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise CheckpointError(f"{path}: not valid JSON: {error}") from error
    if payload.get("format") != FORMAT or "config" not in payload:
        raise CheckpointError(f"{path}: not a sam3spec student config (expected format {FORMAT!r})")
    try:
        stored = drop_retired_fields(payload["config"], where=str(path))
        return config_from_dict(stored, StudentConfig, where=str(path))
    except (KeyError, TypeError, ValueError) as error:
        raise CheckpointError(str(error)) from error


def load_weights(model: torch.nn.Module, directory: str | Path, strict: bool = True) -> CheckpointReport:
    """Load ``directory/model.safetensors`` into ``model``.

    Args:
        model: the module to fill.
        directory: a checkpoint directory.
        strict: raise :class:`CheckpointError` on any missing/unexpected/mismatched key.

    Returns:
        A :class:`CheckpointReport` (empty when everything matched).
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = Path(directory) / WEIGHTS_NAME
    if not path.is_file():
        raise CheckpointError(f"{path}: missing weights file")
    try:
        state = load_file(str(path))
    except (SafetensorError, OSError) as error:
        raise CheckpointError(f"{path}: unreadable safetensors file: {error}") from error
    own = model.state_dict()
    report = CheckpointReport(
        missing=sorted(set(own) - set(state)),
        unexpected=sorted(set(state) - set(own)),
        mismatched=sorted(
            f"{key}: checkpoint {tuple(state[key].shape)} vs model {tuple(own[key].shape)}"
            for key in set(own) & set(state)
            if state[key].shape != own[key].shape
        ),
    )
    if strict and not report.clean:
        raise CheckpointError(f"{path}: does not match the model: {report.summary()}")
    bad = {m.split(":")[0] for m in report.mismatched}
    loadable = {key: value for key, value in state.items() if key in own and key not in bad}
    model.load_state_dict(loadable, strict=False)
    return report


def load_student(
    directory: str | Path, config: StudentConfig | None = None, strict: bool = True, verbose: bool = True
) -> Student:
    """Build the student described by ``directory/config.json`` (or ``config``) and load its weights.

    Args:
        directory: a checkpoint written by :func:`save_pretrained`.
        config: build this config instead of the stored one (e.g. a newer stage's student).
        strict: see :func:`load_weights`.
        verbose: print the load report when it is not clean.

    Returns:
        The student in eval mode; ``student.load_report`` holds the :class:`CheckpointReport`.
    """
    from sam3spec.models.build import build_student

    model = build_student(config or read_config(directory))
    report = load_weights(model, directory, strict=strict)
    if verbose and not report.clean:
        print(f"load_student({directory}): {report.summary()}")
    model.load_report = report
    return model.eval()
