"""The distillation trainer: one flat loop for every stage (nanoGPT's train.py is the model).

``distill(stage, options)`` builds the student, the teacher targets (cached once per run, or
computed online), the optimizer and schedule, then loops: micro-batches -> student forward ->
matched losses -> backward (accumulated, clipped) -> step -> log -> checkpoint. Everything a
stage changes is data in its :class:`~sam3spec.distill.stages.StageConfig`.

Exactness: the data order is a pure function of (seed, epoch) and each sample draws its prompts
from ``(seed, epoch, index)``; a checkpoint stores weights, optimizer, schedule position, RNG
and data position, so a run killed at any point and resumed logs the same losses step for step.
Multi-process (``torchrun``): each rank trains on its shard, gradients are averaged by DDP, only
rank 0 writes.
"""

from __future__ import annotations

import contextlib
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from sam3spec.atomic import atomic_write_json
from sam3spec.checkpoint import load_weights, save_pretrained
from sam3spec.config import config_to_dict
from sam3spec.data.loader import collate_samples
from sam3spec.distill import runtime
from sam3spec.distill.adapters import FeatureAdapters, StudentGeometry
from sam3spec.distill.data import epoch_units, image_groups, rank_batches, student_inputs, training_dataset
from sam3spec.distill.precise_bn import batch_norm_layers, recalibrate_batch_norm
from sam3spec.distill.sources import stage_hash, target_source, teacher_path
from sam3spec.distill.stages import StageConfig, learning_rate_factor, set_trainable
from sam3spec.distill.state import (
    latest_checkpoint,
    pack_training_state,
    read_checkpoint,
    read_log,
    save_checkpoint,
    unpack_training_state,
)
from sam3spec.distill.task import DistillModel, loss_terms, query_anchors, total_loss


class NonFiniteLossError(RuntimeError):
    """A loss term (or the gradient norm) became NaN / Inf; the message names it and the step."""


@dataclass
class RunOptions:
    """Where a stage reads and writes, and how it runs (not part of the stage's identity).

    Attributes:
        data: a data root with SA-Co train files (:mod:`sam3spec.data.layout`) or an SA-1B folder.
        out: the run directory.
        teacher: teacher folder (required by stages whose targets come from a teacher).
        init: student checkpoint to start from (``strict=False``, reported), or None.
        pretrained_backbone: RepViT weights file for a fresh student (local file).
        pretrained_text: MobileCLIP text-tower weights file for a fresh student (local file).
        resume: continue from the run directory's latest checkpoint.
        max_steps: stop after this many optimizer steps (debug / smoke runs).
        limit: use only the first ``limit`` samples.
        device: ``cpu`` / ``cuda`` / ``mps``; None auto-detects.
        cache_targets: cache the teacher's targets once per run (else compute them every batch).
        tensorboard: write TensorBoard scalars (and pictures with ``visualize_every``).
        progress: show a tqdm bar.
    """

    data: Path
    out: Path
    teacher: str | None = None
    init: Path | None = None
    pretrained_backbone: Path | None = None
    pretrained_text: Path | None = None
    resume: bool = False
    max_steps: int | None = None
    limit: int | None = None
    device: str | None = None
    cache_targets: bool = True
    tensorboard: bool = True
    progress: bool = True
    step_pause: float = 0.0  # seconds to sleep after each step (tests interrupt a run mid-way)


def _parameter_groups(model: torch.nn.Module, weight_decay: float) -> list[dict]:
    decay, plain = [], []
    for parameter in model.parameters():
        if parameter.requires_grad:
            (decay if parameter.dim() >= 2 else plain).append(parameter)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": plain, "weight_decay": 0.0}]


def feature_loss_ratio(log: list[dict]) -> dict[str, float] | None:
    """Mean (fpn + encoder) feature loss over the last window of steps / over the first window."""
    values = [
        row.get("fpn_feature", 0.0) + row.get("encoder_feature", 0.0) for row in log if "fpn_feature" in row
    ]
    if not values:
        return None
    window = max(1, min(50, len(values) // 10))
    start, end = sum(values[:window]) / window, sum(values[-window:]) / window
    return {
        "feature_loss_start": start,
        "feature_loss_end": end,
        "feature_loss_ratio": end / max(start, 1e-12),
        "window": window,
    }


def distill(stage: StageConfig, options: RunOptions) -> dict:
    """Run (or resume) one stage; returns the summary also written to ``out/summary.json``."""
    out = Path(options.out)
    processes = runtime.start_processes(options.device)
    device = runtime.resolve_device(options.device, processes.local_rank)
    precision = runtime.resolve_precision(stage.amp, device)
    teacher = None if stage.targets == "ground_truth" else teacher_path(options)
    run_key = stage_hash(stage, options, teacher)
    latest = latest_checkpoint(out / "checkpoints")
    if latest is not None and not options.resume:
        raise FileExistsError(
            f"{out} already holds checkpoints ({latest.name}); pass --resume or use another --out"
        )
    if processes.main:
        out.mkdir(parents=True, exist_ok=True)
        atomic_write_json({"stage": config_to_dict(stage), "key": run_key, "data": str(options.data),
                           "teacher": None if teacher is None else str(teacher),
                           "init": None if options.init is None else str(options.init)}, out / "stage.json")  # fmt: skip

    # --- student (+ adapters), what trains -------------------------------------------------------
    from sam3spec.models.build import build_student
    from sam3spec.models.text_encoder import Tokenizer

    torch.manual_seed(stage.seed)
    student = build_student(
        stage.student_config(),
        options.pretrained_backbone,
        options.pretrained_text,
    )
    if options.init is None and options.pretrained_text is None and stage.fresh_text_embedding_std > 0:
        with torch.no_grad():
            student.text_encoder.tower.token_embedding.weight.normal_(0.0, stage.fresh_text_embedding_std)
    if options.init is not None:
        report = load_weights(student, options.init, strict=False)
        print(f"init from {options.init}: {report.summary()}")
        if processes.main:
            atomic_write_json({"from": str(options.init), "summary": report.summary(), "missing": report.missing,
                               "unexpected": report.unexpected, "mismatched": report.mismatched}, out / "init_report.json")  # fmt: skip
    trainable = set_trainable(student, stage)
    geometry = StudentGeometry.of(student.config, stage.resolution, mask_scale=stage.mask_target_scale)
    dataset = training_dataset(
        options.data, stage.resolution, stage.prompts, None, stage.seed, limit=options.limit
    )
    targets_for, widths = target_source(stage, options, geometry, dataset, processes, device, run_key)
    adapters = None
    if widths is not None:
        fpn_dim = student.config.image.fpn_dim
        text = (student.config.hidden, widths[2]) if stage.losses.text_feature else (None, None)
        # the teacher's query states and pixel embedding have its DETR width, as its encoder memory
        query = (student.config.hidden, widths[1]) if stage.losses.query_feature else (None, None)
        pixel = (student.config.hidden, widths[1]) if stage.losses.pixel_feature else (None, None)
        adapters = FeatureAdapters(
            [fpn_dim] * len(stage.fpn_levels),
            widths[0],
            student.config.hidden,
            widths[1],
            *text,
            *query,
            *pixel,
        )
    aux = stage.losses.auxiliary != 0  # earlier decoder layers predict too (the auxiliary loss)
    model = DistillModel(student, adapters, geometry, stage.fpn_levels, aux=aux).to(device)
    wrapped = model
    if processes.world_size > 1:
        runtime.synchronise_batch_norm(model, device)
        wrapped = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None, find_unused_parameters=True
        )
    tokenizer = Tokenizer(student.config.text)

    # --- optimizer, schedule, averaging -------------------------------------------------------------
    optimizer = torch.optim.AdamW(
        _parameter_groups(model, stage.weight_decay), lr=stage.learning_rate, foreach=True
    )
    groups, units_per_batch = image_groups(dataset), stage.batch_size // stage.prompts_per_image

    def epoch_batches(epoch: int) -> list[list[int]]:
        units = epoch_units(groups, stage.seed, epoch, stage.prompts_per_image)
        return rank_batches(units, processes.rank, processes.world_size, units_per_batch)

    per_epoch = len(epoch_batches(0))
    steps_per_epoch = per_epoch // stage.grad_accum
    if steps_per_epoch == 0:
        raise ValueError(
            f"{len(dataset)} samples give no full optimizer step of {stage.batch_size} x {stage.grad_accum} x {processes.world_size}"
        )
    total_steps = stage.epochs * steps_per_epoch
    if options.max_steps is not None:
        total_steps = min(total_steps, options.max_steps)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: learning_rate_factor(step, total_steps, stage)
    )
    scaler = torch.amp.GradScaler(device.type, enabled=precision.scaler)
    average = runtime.WeightAverage(student, stage.ema_decay) if stage.ema_decay > 0 else None

    # --- resume ----------------------------------------------------------------------------------
    step, epoch, position, log = 0, 0, 0, []
    if latest is not None:
        weights, tensors, meta = read_checkpoint(latest)
        if meta["key"] != run_key:
            raise ValueError(
                f"{latest} was written by another configuration (key {meta['key']} vs {run_key})"
            )
        student.load_state_dict(weights)
        unpack_training_state(tensors, meta, optimizer, schedule, scaler, adapters, average, device)
        step, epoch, position = meta["step"], meta["epoch"], meta["position"]
        log = read_log(out / "train_log.jsonl", step)
        print(f"resumed from {latest} (step {step}, epoch {epoch}, micro-batch {position})")
    if processes.main:
        (out / "train_log.jsonl").write_text("".join(json.dumps(row) + "\n" for row in log), encoding="utf-8")
    log_file = (out / "train_log.jsonl").open("a", encoding="utf-8") if processes.main else None
    writer = None
    if processes.main and options.tensorboard:
        from torch.utils.tensorboard import SummaryWriter

        writer = SummaryWriter(str(out / "tensorboard"), purge_step=step + 1)

    def checkpoint() -> None:
        if processes.main:
            tensors, meta = pack_training_state(optimizer, schedule, scaler, adapters, average)
            meta.update(key=run_key, epoch=epoch, position=position)
            save_checkpoint(out / "checkpoints", step, student, tensors, meta, stage.keep_last_n)
        runtime.barrier(processes)

    def precise_bn() -> int:  # on every rank (see precise_bn.py), over epoch 0's first micro-batches
        dataset.set_epoch(0)
        return recalibrate_batch_norm(
            model, dataset, epoch_batches(0)[: stage.precise_bn_batches], tokenizer, device, processes,
            precision.autocast(device), stage.num_workers, options.progress and processes.main, stage.precise_bn_merge,
        )  # fmt: skip

    # --- the loop --------------------------------------------------------------------------------
    from tqdm import tqdm

    bar = tqdm(
        total=total_steps, initial=step, desc=stage.name, disable=not (options.progress and processes.main)
    )
    calibrated, frozen = None, False  # micro-batches precise BN averaged over; statistics frozen yet

    def freeze_when_due() -> None:  # before the loop (fresh or resumed) and at each epoch's start
        nonlocal calibrated, frozen
        if not stage.freeze_batch_norm or frozen or epoch < stage.freeze_batch_norm_epoch:
            return
        # At the freeze epoch's first micro-batch the statistics are re-estimated; a run resumed past
        # it gets them from the checkpoint (a resume at that very point re-estimates them: same result).
        if epoch == stage.freeze_batch_norm_epoch and position == 0 and stage.precise_bn_batches:
            calibrated = precise_bn()
        for layer in batch_norm_layers(model):
            layer.eval()
        frozen = True

    model.train()
    freeze_when_due()
    started, seen, last_time, last_seen = time.perf_counter(), 0, time.perf_counter(), 0
    while step < total_steps and epoch < stage.epochs:
        freeze_when_due()
        dataset.set_epoch(epoch % stage.prompt_draws if options.cache_targets else epoch)
        batches = epoch_batches(epoch)
        usable = len(batches) // stage.grad_accum * stage.grad_accum
        loader = DataLoader(
            dataset,
            batch_sampler=batches[position:usable],
            collate_fn=collate_samples,
            num_workers=stage.num_workers,
        )
        micro, sums = 0, {}
        for batch in loader:
            last_micro = micro == stage.grad_accum - 1
            sync = contextlib.nullcontext() if last_micro or processes.world_size == 1 else wrapped.no_sync()
            with sync:
                if batch["batch_size"]:
                    targets = targets_for(batch, epoch).to(device)
                    with precision.autocast(device):
                        passed = wrapped(student_inputs(batch, tokenizer, device))
                    terms = loss_terms(
                        passed.outputs,
                        targets,
                        stage.losses,
                        stage.matcher,
                        stage.foreground_threshold,
                        passed.levels,
                        passed.encoder,
                        stage.logit_positive_weight,
                        passed.text,
                        query_anchors(model.student),
                        passed.queries,
                        passed.pixels,
                    )
                    loss = total_loss(terms, stage.losses)
                else:  # every sample of the micro-batch was bad data: a zero step keeps ranks in lock step
                    terms, loss = {}, sum(p.sum() for p in model.parameters() if p.requires_grad) * 0.0
                # Terms first, so a NaN is named by the term that produced it, then the total.
                values = runtime.mean_across(
                    torch.stack([*[v.detach().float() for v in terms.values()], loss.detach().float()]),
                    processes,
                )
                for name, value in zip([*terms, "loss"], values.tolist(), strict=True):
                    if not math.isfinite(value):
                        where = f"step {step + 1} (epoch {epoch}, micro-batch {position + micro})"
                        kept = latest_checkpoint(out / "checkpoints")
                        raise NonFiniteLossError(f"loss term {name!r} is {value} at {where}; training stopped, "
                                                 f"last good checkpoint: {kept or 'none yet'}")  # fmt: skip
                    sums[name] = sums.get(name, 0.0) + value / stage.grad_accum
                scaler.scale(loss / stage.grad_accum).backward()
            seen += batch["batch_size"] * processes.world_size
            micro += 1
            if not last_micro:
                continue
            scaler.unscale_(optimizer)
            parameters = [p for p in model.parameters() if p.requires_grad]
            norm = torch.nn.utils.clip_grad_norm_(
                parameters, stage.clip_norm if stage.clip_norm > 0 else float("inf")
            )
            if not torch.isfinite(norm) and not precision.scaler:
                raise NonFiniteLossError(f"gradient norm is {float(norm)} at step {step + 1}; training stopped, "
                                         f"last good checkpoint: {latest_checkpoint(out / 'checkpoints') or 'none yet'}")  # fmt: skip
            scaler.step(optimizer)
            scaler.update()
            optimizer.zero_grad(set_to_none=True)
            schedule.step()
            if average is not None:
                average.update(student)
            step, position, micro = step + 1, position + stage.grad_accum, 0
            row = {
                "step": step,
                "epoch": epoch,
                "lr": optimizer.param_groups[0]["lr"],
                "grad_norm": float(norm),
                **sums,
            }
            sums = {}
            log.append(row)
            if log_file is not None:
                log_file.write(json.dumps(row) + "\n")
                log_file.flush()
            bar.update()
            if step % stage.log_every == 0 or step == total_steps:
                now = time.perf_counter()
                rate = (seen - last_seen) / max(now - last_time, 1e-9)
                last_time, last_seen = now, seen
                bar.set_postfix(loss=f"{row['loss']:.3f}", img_s=f"{rate:.1f}")
                if writer is not None:
                    for name, value in row.items():
                        if name not in ("step", "epoch"):
                            writer.add_scalar(f"train/{name}", value, step)
                    writer.add_scalar("train/images_per_second", rate, step)
            if (
                writer is not None
                and stage.visualize_every
                and step % stage.visualize_every == 0
                and batch["batch_size"]
            ):
                picture = runtime.mask_picture(
                    batch["image"][0],
                    targets.semantic_probs[0, 0],
                    passed.outputs.semantic_seg[0, 0].detach().float().sigmoid(),
                )
                writer.add_image("masks/input_teacher_student", picture, step)
            if step % stage.checkpoint_every == 0 or step == total_steps:
                checkpoint()
            if options.step_pause:
                time.sleep(options.step_pause)
            if step >= total_steps:
                break
        if step < total_steps:
            epoch, position = epoch + 1, 0
    bar.close()
    seconds = time.perf_counter() - started

    # --- final weights and summary -------------------------------------------------------------------
    summary = {"stage": stage.name, "steps": step, "epochs": stage.epochs, "key": run_key, "device": str(device),
               "precision": precision.name, "processes": processes.world_size, "trainable": len(trainable),
               "seconds_this_process": seconds, "images_per_second": seen / max(seconds, 1e-9),
               "first": log[0] if log else None, "last": log[-1] if log else None}  # fmt: skip
    ratio = feature_loss_ratio(log)
    if ratio is not None:
        summary.update(ratio)
    if processes.world_size > 1:  # every rank must hold the same weights
        digests = [None] * processes.world_size
        torch.distributed.all_gather_object(digests, runtime.weight_digest(student))
        summary["rank_weight_digests"] = digests
    if average is not None:  # on every rank: precise BN runs on all of them
        average.copy_to(student)
    if stage.precise_bn_batches and not stage.freeze_batch_norm:
        calibrated = precise_bn()
    if calibrated is not None:
        summary["precise_bn_batches"] = calibrated
    if stage.freeze_batch_norm:
        summary["batch_norm_frozen"] = frozen
    if processes.main:
        save_pretrained(student, out / "final")
        atomic_write_json(summary, out / "summary.json")
    if log_file is not None:
        log_file.close()
    if writer is not None:
        writer.close()
    runtime.barrier(processes)
    if processes.started_group:
        torch.distributed.destroy_process_group()
    return summary
