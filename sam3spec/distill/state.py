"""Training checkpoints: safetensors + JSON, written atomically, enough for an exact resume.

Layout of ``RUN_DIR/checkpoints/``::

    step_000200/
        model.safetensors, config.json    the stage's weights: the student (``load_student`` reads
                                          this folder), or what the task saves (a video stage: the
                                          memory only, :mod:`sam3spec.video.checkpoint`)
        training.safetensors              optimizer moments, feature adapters, EMA weights, RNG state
        training.json                     step, data position, scheduler, optimizer hyper-parameters,
                                          grad-scaler state, stage hash
    latest.json                           {"step": 200, "path": "step_000200"}

A checkpoint folder is assembled under a temporary name and renamed into place, then
``latest.json`` is replaced atomically, so a process killed at any moment leaves the previous
checkpoint intact (a stale ``.step_*.tmp`` folder is removed on resume). Only ``keep_last_n``
folders are kept. No pickles: tensors go to safetensors, everything else to JSON.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from sam3spec.atomic import atomic_write_json

LATEST = "latest.json"
TRAINING_TENSORS = "training.safetensors"
TRAINING_JSON = "training.json"


def _owned(tensor: torch.Tensor) -> torch.Tensor:
    return tensor.detach().to("cpu").contiguous().clone()


def optimizer_to_flat(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Split an optimizer state dict into tensors (``optimizer.<param>.<name>``) and JSON."""
    state = optimizer.state_dict()
    tensors, scalars = {}, {}
    for param, values in state["state"].items():
        for name, value in values.items():
            if isinstance(value, torch.Tensor):
                tensors[f"optimizer.{param}.{name}"] = _owned(value)
            else:
                scalars[f"{param}.{name}"] = value
    return tensors, {"param_groups": state["param_groups"], "scalars": scalars}


def optimizer_from_flat(tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> dict[str, Any]:
    """Inverse of :func:`optimizer_to_flat` (a state dict for ``optimizer.load_state_dict``)."""
    state: dict[int, dict[str, Any]] = {}
    for key, value in tensors.items():
        if key.startswith("optimizer."):
            _, param, name = key.split(".", 2)
            state.setdefault(int(param), {})[name] = value
    for key, value in meta["scalars"].items():
        param, name = key.split(".", 1)
        state.setdefault(int(param), {})[name] = value
    return {"state": state, "param_groups": meta["param_groups"]}


def rng_tensors() -> dict[str, torch.Tensor]:
    """Torch's CPU (and CUDA) generator states."""
    tensors = {"rng.cpu": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        for index, value in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"rng.cuda.{index}"] = value
    return tensors


def restore_rng(tensors: dict[str, torch.Tensor]) -> None:
    torch.set_rng_state(tensors["rng.cpu"])
    cuda = [tensors[key] for key in sorted(k for k in tensors if k.startswith("rng.cuda."))]
    if cuda and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(cuda)


def save_checkpoint(
    directory: Path,
    step: int,
    write_weights: Callable[[Path], None],
    extra_tensors: dict[str, torch.Tensor],
    meta: dict[str, Any],
    keep_last_n: int,
) -> Path:
    """Write ``directory/step_<step>`` atomically, point ``latest.json`` at it, prune old ones.

    Args:
        directory: the run's ``checkpoints/`` folder.
        step: optimizer steps done.
        write_weights: writes the stage's weights into the (temporary) checkpoint folder, e.g.
            :func:`sam3spec.checkpoint.write_student`.
        extra_tensors: ``training.safetensors`` content (optimizer, adapters, EMA, RNG).
        meta: ``training.json`` content.
        keep_last_n: checkpoints to keep.
    """
    directory.mkdir(parents=True, exist_ok=True)
    name = f"step_{step:06d}"
    temporary = Path(tempfile.mkdtemp(dir=directory, prefix=f".{name}.", suffix=".tmp"))
    try:
        write_weights(temporary)
        save_file(
            {key: _owned(value) for key, value in extra_tensors.items()}, str(temporary / TRAINING_TENSORS)
        )
        (temporary / TRAINING_JSON).write_text(
            json.dumps({"step": step, **meta}, indent=1) + "\n", encoding="utf-8"
        )
        final = directory / name
        if final.exists():
            shutil.rmtree(final)
        os.replace(temporary, final)
    except BaseException:
        shutil.rmtree(temporary, ignore_errors=True)
        raise
    atomic_write_json({"step": step, "path": name}, directory / LATEST)
    for old in list_checkpoints(directory)[:-keep_last_n]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def list_checkpoints(directory: Path) -> list[Path]:
    """Complete checkpoint folders, oldest first."""
    if not directory.is_dir():
        return []
    found = [p for p in directory.glob("step_*") if p.is_dir() and (p / TRAINING_JSON).is_file()]
    return sorted(found, key=lambda p: int(p.name.split("_")[1]))


def latest_checkpoint(directory: Path) -> Path | None:
    """The checkpoint ``latest.json`` names (or the newest complete one); removes stale temporaries."""
    if directory.is_dir():
        for stale in directory.glob(".step_*.tmp"):
            shutil.rmtree(stale, ignore_errors=True)
    pointer = directory / LATEST
    if pointer.is_file():
        path = directory / json.loads(pointer.read_text())["path"]
        if (path / TRAINING_JSON).is_file():
            return path
    found = list_checkpoints(directory)
    return found[-1] if found else None


def read_training_state(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """``(training tensors, training meta)`` of a checkpoint folder (its weights are the task's to
    read, :meth:`~sam3spec.distill.tasks.Task.restore`)."""
    return load_file(str(path / TRAINING_TENSORS)), json.loads((path / TRAINING_JSON).read_text())


def pack_training_state(
    optimizer, schedule, scaler, adapters, average
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Everything besides the student that an exact resume needs: ``(tensors, JSON meta)``.

    Args:
        optimizer: the optimizer (moments as tensors, hyper-parameters as JSON).
        schedule: the learning-rate scheduler.
        scaler: the fp16 gradient scaler (its state is stored only when enabled).
        adapters: feature adapters or None.
        average: :class:`~sam3spec.distill.runtime.WeightAverage` or None.
    """
    tensors, optimizer_meta = optimizer_to_flat(optimizer)
    tensors.update(rng_tensors())
    if adapters is not None:
        tensors.update({f"adapters.{key}": value for key, value in adapters.state_dict().items()})
    if average is not None:
        tensors.update({f"ema.{key}": value for key, value in average.shadow.items()})
    meta = {
        "optimizer": optimizer_meta,
        "schedule": schedule.state_dict(),
        "scaler": scaler.state_dict() if scaler.is_enabled() else None,
    }
    return tensors, meta


def unpack_training_state(tensors, meta, optimizer, schedule, scaler, adapters, average, device) -> None:
    """Inverse of :func:`pack_training_state` (restores the RNG too)."""

    def prefixed(prefix: str) -> dict[str, torch.Tensor]:
        return {key[len(prefix) :]: value for key, value in tensors.items() if key.startswith(prefix)}

    if adapters is not None:
        adapters.load_state_dict(prefixed("adapters."))
    if average is not None:
        average.shadow = {key: value.to(device) for key, value in prefixed("ema.").items()}
    optimizer.load_state_dict(optimizer_from_flat(tensors, meta["optimizer"]))
    schedule.load_state_dict(meta["schedule"])
    if meta.get("scaler"):
        scaler.load_state_dict(meta["scaler"])
    restore_rng(tensors)


def read_log(path: Path, up_to_step: int) -> list[dict[str, Any]]:
    """Rows of a ``train_log.jsonl`` up to ``up_to_step`` (a killed run may have logged past its
    last checkpoint; those rows are redone)."""
    if not path.is_file():
        return []
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [row for row in rows if row["step"] <= up_to_step]
