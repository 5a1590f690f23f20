"""The state of one training run (:class:`Run`) and the optimizer's parameter groups.

:func:`~sam3spec.distill.trainer.setup` builds a :class:`Run`, :func:`~sam3spec.distill.trainer.loop`
advances it step by step, :func:`~sam3spec.distill.trainer.finish` reports it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import torch
from torch import nn

from sam3spec.distill import runtime
from sam3spec.distill.options import RunOptions
from sam3spec.distill.stages import StageConfig
from sam3spec.distill.tasks import StageKind, Task


@dataclass
class Run:
    """One run: what :func:`setup` decided, the progress :func:`loop` makes, what :func:`finish` reports.

    Attributes:
        kind: the stage kind (a plain ``StageConfig`` becomes an image stage).
        stage: its config.
        options: where the run reads and writes.
        processes: rank and world size.
        device: where it trains.
        precision: autocast and gradient scaling.
        key: the run key (a resume must match it).
        task: what trains, on which data, with which loss.
        wrapped: ``task.model``, DDP-wrapped under several processes.
        optimizer: AdamW over the trainable parameters (no decay on biases and norms).
        schedule: warm-up + cosine (:func:`~sam3spec.distill.stages.learning_rate_factor`).
        scaler: the fp16 gradient scaler (disabled otherwise).
        average: the EMA of the student's weights, or None.
        total_steps: optimizer steps of the run.
        summary: entries the kind's hooks reported.
        step: optimizer steps done; ``epoch``: the current epoch; ``position``: its micro-batches done.
        log: every step's row (``train_log.jsonl``).
        calibrated: micro-batches precise BN averaged over, or None; ``frozen``: BatchNorm frozen yet.
    """

    kind: StageKind
    stage: StageConfig
    options: RunOptions
    processes: runtime.Processes
    device: torch.device
    precision: runtime.Precision
    key: str
    task: Task
    wrapped: nn.Module
    optimizer: torch.optim.Optimizer
    schedule: torch.optim.lr_scheduler.LRScheduler
    scaler: torch.amp.GradScaler
    average: runtime.WeightAverage | None
    total_steps: int
    summary: dict[str, Any] = field(default_factory=dict)
    step: int = 0
    epoch: int = 0
    position: int = 0
    log: list[dict[str, Any]] = field(default_factory=list)
    calibrated: int | None = None
    frozen: bool = False
    log_file: IO[str] | None = None
    writer: Any = None
    bar: Any = None
    seen: int = 0
    started: float = field(default_factory=time.perf_counter)
    last_time: float = field(default_factory=time.perf_counter)
    last_seen: int = 0

    @property
    def out(self) -> Path:
        return Path(self.options.out)

    @property
    def progress(self) -> bool:
        return self.options.progress and self.processes.main

    def close(self) -> None:
        """Close the log file, the TensorBoard writer and the progress bar (idempotent)."""
        for handle in (self.log_file, self.writer, self.bar):
            if handle is not None:
                handle.close()
        self.log_file = self.writer = self.bar = None


def parameter_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """AdamW groups of the trainable parameters: matrices / kernels decay, biases and norms do not."""
    decay, plain = [], []
    for parameter in model.parameters():
        if parameter.requires_grad:
            (decay if parameter.dim() >= 2 else plain).append(parameter)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": plain, "weight_decay": 0.0}]
