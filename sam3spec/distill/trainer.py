"""The trainer: one loop for every stage (nanoGPT's train.py is the model), in three parts.

``distill(stage, options)`` = :func:`setup` (processes, device, precision, run key, the stage's
:class:`~sam3spec.distill.tasks.Task`, the kind's ``prepare`` hook, optimizer, schedule, averaging,
resume) -> :func:`loop` (epochs of micro-batches; :func:`step` is one optimizer step over its
``grad_accum`` micro-batches: targets -> forward -> loss terms -> backward (accumulated, clipped)
-> step -> log -> checkpoint) -> :func:`finish` (EMA, precise BN, final weights, the kind's
``convert`` hook, ``summary.json``). Everything a stage changes is data in its
:class:`~sam3spec.distill.stages.StageConfig` and the task it selects (image distillation, the
video memory, QAT).

Exactness: the data order is a pure function of (seed, epoch) and each sample draws its prompts
from ``(seed, epoch, index)``; a checkpoint stores weights, optimizer, schedule position, RNG
and data position, so a run killed at any point and resumed logs the same losses step for step.
Multi-process (``torchrun``): each rank trains on its shard, gradients are averaged by DDP, only
rank 0 writes.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import math
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from sam3spec.atomic import atomic_write_folder, atomic_write_json
from sam3spec.config import config_to_dict
from sam3spec.data.sources import TrainingDataError
from sam3spec.distill import runtime
from sam3spec.distill.options import RunOptions
from sam3spec.distill.precise_bn import batch_norm_layers
from sam3spec.distill.run import Run, parameter_groups
from sam3spec.distill.sources import stage_hash, teacher_path
from sam3spec.distill.stages import StageConfig, learning_rate_factor
from sam3spec.distill.state import (
    latest_checkpoint,
    pack_training_state,
    read_log,
    read_training_state,
    save_checkpoint,
    unpack_training_state,
)
from sam3spec.distill.task import total_loss
from sam3spec.distill.tasks import Setup, StageKind, as_kind


class NonFiniteLossError(RuntimeError, FloatingPointError):
    """A loss term (or the gradient norm) became NaN / Inf; the message names it and the step."""


def setup(stage: StageConfig | StageKind, options: RunOptions, student: nn.Module | None = None) -> Run:
    """Everything before the first step: a fresh run, or the state of the latest checkpoint (``resume``).

    Args:
        stage: a ``StageConfig`` (image distillation) or a stage kind.
        options: where the run reads and writes.
        student: train this student as it is (else the task builds it).

    Raises:
        FileExistsError: ``out`` holds checkpoints and ``options.resume`` is off.
        TrainingDataError: the data give no full optimizer step (a ``ValueError``).
        ValueError: the checkpoint is another run's.
    """
    kind = as_kind(stage)
    config = kind.stage
    kind.check(options)
    if options.threads:
        torch.set_num_threads(options.threads)
    out = Path(options.out)
    processes = runtime.start_processes(options.device)
    device = runtime.resolve_device(options.device, processes.local_rank)
    precision = runtime.resolve_precision(config.amp, device)
    teacher = teacher_path(options) if config.targets == "teacher" else None
    key = stage_hash(stage, options, teacher)
    latest = latest_checkpoint(out / "checkpoints")
    if latest is not None and not options.resume:
        raise FileExistsError(
            f"{out} already holds checkpoints ({latest.name}); pass --resume or use another --out"
        )
    if processes.main:
        out.mkdir(parents=True, exist_ok=True)
        atomic_write_json(
            {
                "stage": config_to_dict(config),
                "key": key,
                "data": str(options.data),
                "teacher": None if teacher is None else str(teacher),
                "init": None if options.init is None else str(options.init),
                **kind.describe(),
            },
            out / "stage.json",
        )

    task = kind.task(Setup(config, options, processes, device, precision, key, student))
    prepared = kind.prepare(task.student)
    model = wrapped = task.model
    if processes.world_size > 1:
        runtime.synchronise_batch_norm(model, device)
        wrapped = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None, find_unused_parameters=True
        )
    optimizer = torch.optim.AdamW(
        parameter_groups(model, config.weight_decay), lr=config.learning_rate, foreach=True
    )
    per_epoch = len(task.batches(0))
    steps_per_epoch = per_epoch // config.grad_accum
    if steps_per_epoch == 0:
        raise TrainingDataError(
            f"the data give {per_epoch} micro-batch(es) of {config.batch_size} per process: no full optimizer "
            f"step of {config.batch_size} x {config.grad_accum} x {processes.world_size}"
        )
    total_steps = config.epochs * steps_per_epoch
    if options.max_steps is not None:
        total_steps = min(total_steps, options.max_steps)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: learning_rate_factor(step, total_steps, config)
    )
    scaler = torch.amp.GradScaler(device.type, enabled=precision.scaler)
    average = runtime.WeightAverage(task.student, config.ema_decay) if config.ema_decay > 0 else None
    run = Run(
        kind,
        config,
        options,
        processes,
        device,
        precision,
        key,
        task,
        wrapped,
        optimizer,
        schedule,
        scaler,
        average,
        total_steps,
        dict(prepared),
    )

    if latest is not None:
        tensors, meta = read_training_state(latest)
        if meta["key"] != key:
            raise ValueError(f"{latest} was written by another configuration (key {meta['key']} vs {key})")
        task.restore(latest)
        unpack_training_state(tensors, meta, optimizer, schedule, scaler, task.adapters, average, device)
        run.step, run.epoch, run.position = meta["step"], meta["epoch"], meta["position"]
        run.log = read_log(out / "train_log.jsonl", run.step)
        print(f"resumed from {latest} (step {run.step}, epoch {run.epoch}, micro-batch {run.position})")
    if processes.main:
        (out / "train_log.jsonl").write_text(
            "".join(json.dumps(row) + "\n" for row in run.log), encoding="utf-8"
        )
        run.log_file = (out / "train_log.jsonl").open("a", encoding="utf-8")
        if options.tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            run.writer = SummaryWriter(str(out / "tensorboard"), purge_step=run.step + 1)
    return run


def freeze_when_due(run: Run) -> None:
    """Freeze BatchNorm statistics at the stage's freeze epoch (re-estimated first with precise BN).

    Called before the loop (fresh or resumed) and at each epoch's start. At the freeze epoch's first
    micro-batch the statistics are re-estimated; a run resumed past it gets them from the checkpoint
    (a resume at that very point re-estimates them: same result).
    """
    stage = run.stage
    if not stage.freeze_batch_norm or run.frozen or run.epoch < stage.freeze_batch_norm_epoch:
        return
    if run.epoch == stage.freeze_batch_norm_epoch and run.position == 0 and stage.precise_bn_batches:
        run.calibrated = run.task.recalibrate(stage.precise_bn_batches, run.progress)
    for layer in batch_norm_layers(run.task.model):
        layer.eval()
    run.frozen = True


def _stopped(run: Run, what: str, where: str) -> NonFiniteLossError:
    kept = latest_checkpoint(run.out / "checkpoints")
    return NonFiniteLossError(
        f"{what} at {where}; training stopped, last good checkpoint: {kept or 'none yet'}"
    )


def step(run: Run, micro_batches: Iterable[dict[str, Any]]) -> tuple[dict[str, Any], tuple | None]:
    """One optimizer step over ``grad_accum`` micro-batches.

    Returns:
        ``(log row, (batch, targets, passed) of the last micro-batch or None when it was empty)``.

    Raises:
        NonFiniteLossError: a term, the total or the gradient norm is NaN / Inf.
    """
    stage, task, processes = run.stage, run.task, run.processes
    sums: dict[str, float] = {}
    last = None
    for micro, batch in enumerate(micro_batches):
        final = micro == stage.grad_accum - 1
        sync = contextlib.nullcontext() if final or processes.world_size == 1 else run.wrapped.no_sync()
        with sync:
            if batch["batch_size"]:
                targets = task.targets(batch, run.epoch)
                with run.precision.autocast(run.device):
                    passed = run.wrapped(task.inputs(batch))
                terms = task.terms(passed, targets)
                loss = total_loss(terms, stage.losses)
                last = (batch, targets, passed)
            else:  # every sample of the micro-batch was bad data: a zero step keeps ranks in lock step
                terms, loss = {}, sum(p.sum() for p in task.model.parameters() if p.requires_grad) * 0.0
                last = None
            # Terms first, so a NaN is named by the term that produced it, then the total.
            values = runtime.mean_across(
                torch.stack([*[v.detach().float() for v in terms.values()], loss.detach().float()]), processes
            )
            for name, value in zip([*terms, "loss"], values.tolist(), strict=True):
                if not math.isfinite(value):
                    where = f"step {run.step + 1} (epoch {run.epoch}, micro-batch {run.position + micro})"
                    raise _stopped(run, f"loss term {name!r} is {value}", where)
                sums[name] = sums.get(name, 0.0) + value / stage.grad_accum
            run.scaler.scale(loss / stage.grad_accum).backward()
        run.seen += batch["batch_size"] * processes.world_size
    run.scaler.unscale_(run.optimizer)
    parameters = [p for p in task.model.parameters() if p.requires_grad]
    norm = torch.nn.utils.clip_grad_norm_(
        parameters, stage.clip_norm if stage.clip_norm > 0 else float("inf")
    )
    if not torch.isfinite(norm) and not run.precision.scaler:
        raise _stopped(run, f"gradient norm is {float(norm)}", f"step {run.step + 1}")
    run.scaler.step(run.optimizer)
    run.scaler.update()
    run.optimizer.zero_grad(set_to_none=True)
    run.schedule.step()
    if run.average is not None:
        run.average.update(task.student)
    run.step, run.position = run.step + 1, run.position + stage.grad_accum
    row = {
        "step": run.step,
        "epoch": run.epoch,
        "lr": run.optimizer.param_groups[0]["lr"],
        "grad_norm": float(norm),
        **task.log_extras(),
        **sums,
    }
    return row, last


def checkpoint(run: Run) -> None:
    """Write ``checkpoints/step_N/`` (rank 0): the task's weights and the exact-resume state."""
    if run.processes.main:
        tensors, meta = pack_training_state(
            run.optimizer, run.schedule, run.scaler, run.task.adapters, run.average
        )
        meta.update(key=run.key, epoch=run.epoch, position=run.position)
        save_checkpoint(
            run.out / "checkpoints",
            run.step,
            lambda folder: run.task.save(folder, {"step": run.step}),
            tensors,
            meta,
            run.stage.keep_last_n,
        )
    runtime.barrier(run.processes)


def record(run: Run, row: dict[str, Any], last: tuple | None) -> None:
    """After a step: the log row, progress, TensorBoard, the picture, the checkpoint, the test pause."""
    stage = run.stage
    run.log.append(row)
    if run.log_file is not None:
        run.log_file.write(json.dumps(row) + "\n")
        run.log_file.flush()
    run.bar.update()
    if run.step % stage.log_every == 0 or run.step == run.total_steps:
        now = time.perf_counter()
        rate = (run.seen - run.last_seen) / max(now - run.last_time, 1e-9)
        run.last_time, run.last_seen = now, run.seen
        run.bar.set_postfix(loss=f"{row['loss']:.3f}", img_s=f"{rate:.1f}")
        if run.writer is not None:
            for name, value in row.items():
                if name not in ("step", "epoch"):
                    run.writer.add_scalar(f"train/{name}", value, run.step)
            run.writer.add_scalar("train/images_per_second", rate, run.step)
    if run.writer is not None and stage.visualize_every and run.step % stage.visualize_every == 0 and last:
        picture = run.task.picture(*last)
        if picture is not None:
            run.writer.add_image("masks/input_teacher_student", picture, run.step)
    if run.step % stage.checkpoint_every == 0 or run.step == run.total_steps:
        checkpoint(run)
    if run.options.step_pause:
        time.sleep(run.options.step_pause)


def report_epoch(run: Run, usable: int) -> None:
    """The task's line about the epoch just left (complete, or cut short by ``max_steps``) and its
    TensorBoard scalars (``epoch/<name>``), from the epoch's log rows (rank 0)."""
    rows = [row for row in run.log if row["epoch"] == run.epoch]
    report = run.task.epoch_report(rows) if rows else None
    if report is None or not run.processes.main:
        return
    from tqdm import tqdm

    line, scalars = report
    cut = "" if run.position >= usable else f" (cut after {len(rows)} steps)"
    tqdm.write(f"{run.stage.name} epoch {run.epoch + 1}/{run.stage.epochs}{cut}: {line}")
    if run.writer is not None:
        for name, value in scalars.items():
            run.writer.add_scalar(f"epoch/{name}", value, run.step)


def loop(run: Run) -> None:
    """Train until ``total_steps`` (or the last epoch): epochs of micro-batches, :func:`step` by step."""
    from tqdm import tqdm

    stage, task = run.stage, run.task
    run.bar = tqdm(total=run.total_steps, initial=run.step, desc=stage.name, disable=not run.progress)
    task.model.train(task.train_mode)
    if task.train_mode:
        freeze_when_due(run)
    run.started = run.last_time = time.perf_counter()
    while run.step < run.total_steps and run.epoch < stage.epochs:
        if task.train_mode:
            freeze_when_due(run)
        batches = task.batches(run.epoch)
        usable = len(batches) // stage.grad_accum * stage.grad_accum
        micro_batches = iter(task.load(batches[run.position : usable], run.epoch))
        while run.step < run.total_steps and run.position < usable:
            record(run, *step(run, itertools.islice(micro_batches, stage.grad_accum)))
        report_epoch(run, usable)
        if run.step < run.total_steps:
            run.epoch, run.position = run.epoch + 1, 0


def finish(run: Run) -> dict[str, Any]:
    """EMA, precise BN, the final weights (``out/final/``), the kind's ``convert`` hook and
    ``summary.json``; returns the summary."""
    stage, task, processes = run.stage, run.task, run.processes
    run.bar.close()
    seconds = time.perf_counter() - run.started
    summary = {
        "stage": stage.name,
        "steps": run.step,
        "epochs": stage.epochs,
        "key": run.key,
        "device": str(run.device),
        "precision": run.precision.name,
        "processes": processes.world_size,
        "trainable": len(task.trainable),
        "seconds_this_process": seconds,
        "images_per_second": run.seen / max(seconds, 1e-9),
        "first": run.log[0] if run.log else None,
        "last": run.log[-1] if run.log else None,
        **run.summary,
        **task.report(run.log),
    }
    if processes.world_size > 1:  # every rank must hold the same weights
        digests = [None] * processes.world_size
        torch.distributed.all_gather_object(digests, runtime.weight_digest(task.student))
        summary["rank_weight_digests"] = digests
    if run.average is not None:  # on every rank: precise BN runs on all of them
        run.average.copy_to(task.student)
    if stage.precise_bn_batches and not stage.freeze_batch_norm:
        run.calibrated = task.recalibrate(stage.precise_bn_batches, run.progress)
    if run.calibrated is not None:
        summary["precise_bn_batches"] = run.calibrated
    if stage.freeze_batch_norm:
        summary["batch_norm_frozen"] = run.frozen
    if processes.main:
        meta = {"step": run.step, "stage": stage.name, "init": str(run.options.init)}
        atomic_write_folder(run.out / "final", lambda folder: task.save_final(folder, meta))
    summary.update(run.kind.convert(task.student))
    if processes.main:
        atomic_write_json(summary, run.out / "summary.json")
    run.close()
    runtime.barrier(processes)
    if processes.started_group:
        torch.distributed.destroy_process_group()
    task.verify(summary)
    return summary


def distill(
    stage: StageConfig | StageKind, options: RunOptions, student: nn.Module | None = None
) -> dict[str, Any]:
    """Run (or resume) one stage; returns the summary also written to ``out/summary.json``.

    Args:
        stage: a ``StageConfig`` (image distillation: ``phase1``, ``stage3-world``, ...) or a stage
            kind (``video-world``, a QAT stage).
        options: where the run reads and writes.
        student: train this student as it is (QAT), else the stage's task builds it.
    """
    run = setup(stage, options, student)
    try:
        loop(run)
        return finish(run)
    finally:
        run.close()
