"""Video distillation: train only the memory (resampler + gated cross-attention) of a student.

One flat loop, using the engine's pieces: :func:`~sam3spec.distill.stages.set_trainable` (what
trains), :func:`~sam3spec.distill.targets.ground_truth_targets` + :func:`~sam3spec.distill.task.loss_terms`
/ :func:`~sam3spec.distill.task.total_loss` (matching and losses, weights applied in one place),
:func:`~sam3spec.distill.stages.learning_rate_factor` (warm-up + cosine), AdamW with clipping. Per
step: a batch of (context, query frame, phrase) samples from the :class:`~sam3spec.video.data.FeatureBank`
-> memory = resampler(context level-3 maps, invalid slots masked; the student's own maps, or a
teacher cache's with ``context_source="teacher_cache"``, :mod:`sam3spec.video.teacher_context`)
-> encoder tokens of the query
frame read the memory -> decoder -> losses against SA-V ground truth.

Writes ``out/train_log.jsonl`` (every step, every term), ``out/checkpoints/step_N/`` and
``out/final/`` (memory-only checkpoints, :mod:`sam3spec.video.checkpoint`), ``out/summary.json``
(including a check that every frozen tensor is bit-identical after training).
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch

from sam3spec.atomic import atomic_write_json
from sam3spec.distill.adapters import StudentGeometry
from sam3spec.distill.stages import learning_rate_factor, set_trainable
from sam3spec.distill.targets import ground_truth_targets
from sam3spec.distill.task import loss_terms, total_loss
from sam3spec.models.image_encoder import ImageFeatures
from sam3spec.models.video import resample_valid
from sam3spec.video.checkpoint import save_memory
from sam3spec.video.data import FeatureBank
from sam3spec.video.stage import VideoStage
from sam3spec.video.teacher_context import TeacherContextError, attach_teacher_context


@dataclass
class VideoRunOptions:
    """Where and how long.

    Attributes:
        data: SA-V train folder, or a data root (its ``sav/train`` videos, :mod:`sam3spec.data.layout`).
        out: run folder (created).
        phrases: ``{video_id: [phrase of object 0, ...]}`` (SA-V has no phrases; the concept world's
            come from its manifest, :func:`sam3spec.world.manifest.object_phrases`).
        init: student checkpoint (``save_pretrained`` folder) to start from; None: a fresh student
            of the stage's preset (only useful for smoke tests).
        max_steps: stop after this many steps.
        limit: use the first ``limit`` videos.
        threads: torch threads (None: leave as is).
        progress: tqdm bar.
        teacher_cache: teacher cache folder (``sam3spec teacher cache``) whose per-video level-3
            maps are the context frames; required by (and only allowed with) a stage whose
            ``context_source`` is ``"teacher_cache"``.
    """

    data: Path
    out: Path
    phrases: Mapping[str, Sequence[str]] = field(default_factory=dict)
    init: Path | None = None
    max_steps: int | None = None
    limit: int | None = None
    threads: int | None = None
    progress: bool = True
    teacher_cache: Path | None = None


def frozen_digest(student: torch.nn.Module, trainable: set[str]) -> str:
    """SHA-256 over every parameter and buffer that must not change."""
    digest = hashlib.sha256()
    for name, tensor in sorted(student.state_dict().items()):
        if name not in trainable:
            digest.update(name.encode())
            digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


def build_video_student(vstage: VideoStage, init: Path | None):
    from sam3spec.checkpoint import load_student
    from sam3spec.models.build import build_student

    if init is not None:
        return load_student(init)
    torch.manual_seed(vstage.stage.seed)
    return build_student(vstage.stage.student_config())


def check_context_options(vstage: VideoStage, options: VideoRunOptions) -> None:
    """A teacher-context stage needs ``teacher_cache``; a student-context stage must not get one
    (it would be silently ignored)."""
    if vstage.context_source == "teacher_cache" and options.teacher_cache is None:
        raise TeacherContextError(f"stage {vstage.name!r} reads its context from a teacher cache "
                                  "(context_source='teacher_cache'): pass --teacher-cache DIR "
                                  "(VideoRunOptions.teacher_cache), made by `sam3spec teacher cache`")  # fmt: skip
    if vstage.context_source == "student" and options.teacher_cache is not None:
        raise TeacherContextError(f"stage {vstage.name!r} reads the student's own context maps "
                                  f"(context_source='student') but a teacher cache was given ({options.teacher_cache}); "
                                  "add --context teacher_cache to use it")  # fmt: skip


def distill_video(vstage: VideoStage, options: VideoRunOptions) -> dict:
    """Train the memory of a student; returns the summary also written to ``out/summary.json``."""
    from tqdm import tqdm

    from sam3spec.models.text_encoder import Tokenizer

    check_context_options(vstage, options)
    stage, out = vstage.stage, Path(options.out)
    if options.threads:
        torch.set_num_threads(options.threads)
    out.mkdir(parents=True, exist_ok=True)
    student = build_video_student(vstage, options.init)
    trainable = set(set_trainable(student, stage))
    student.eval()  # frozen BatchNorm / dropout: only the memory trains
    before = frozen_digest(student, trainable)
    started = time.perf_counter()
    bank = FeatureBank(student, options.data, options.phrases, limit=options.limit)
    level = student.config.memory.context_level
    context = {"context_source": vstage.context_source}
    if vstage.context_source == "teacher_cache":
        context.update(attach_teacher_context(bank, options.teacher_cache, level, student.config.hidden, vstage.name))
    feature_seconds = time.perf_counter() - started
    tokenizer = Tokenizer(student.config.text)
    geometry = StudentGeometry.of(student.config)
    parameters = [p for p in student.parameters() if p.requires_grad]
    decay = [p for p in parameters if p.dim() >= 2]
    plain = [p for p in parameters if p.dim() < 2]
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": stage.weight_decay},
                                   {"params": plain, "weight_decay": 0.0}], lr=stage.learning_rate)  # fmt: skip
    per_epoch = len(bank.samples(vstage.samples_per_video, stage.seed, 0)) // stage.batch_size
    total = stage.epochs * per_epoch if options.max_steps is None else min(options.max_steps, stage.epochs * per_epoch)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: learning_rate_factor(s, total, stage))
    atomic_write_json({"stage": vstage.name, "data": str(options.data), "init": str(options.init),
                       "trainable": sorted(trainable), **context}, out / "stage.json")  # fmt: skip
    log_path = out / "train_log.jsonl"
    log_path.write_text("", encoding="utf-8")
    step, log = 0, []
    bar = tqdm(total=total, desc=vstage.name, disable=not options.progress)
    with log_path.open("a", encoding="utf-8") as log_file:
        for epoch in range(stage.epochs):
            triples = bank.samples(vstage.samples_per_video, stage.seed, epoch)
            for start in range(0, per_epoch * stage.batch_size, stage.batch_size):
                if step >= total:
                    break
                batch = bank.batch(triples[start : start + stage.batch_size], vstage.context_frames, level)
                features = ImageFeatures(batch["features"], [p.expand(len(batch["text"]), -1, -1, -1) for p in bank.pos])
                with torch.no_grad():
                    prompt, prompt_mask = student.encode_prompt(tokenizer(batch["text"]))
                memory = resample_valid(student.memory_resampler, batch["context"], batch["valid"])
                outputs = student.decode(features, prompt, prompt_mask, memory)
                targets = ground_truth_targets(batch, geometry)
                terms = loss_terms(outputs, targets, stage.losses, stage.matcher, stage.foreground_threshold,
                                   positive_weight=stage.logit_positive_weight)  # fmt: skip
                loss = total_loss(terms, stage.losses)
                if not math.isfinite(float(loss.detach())):
                    raise FloatingPointError(f"video stage {vstage.name}: loss is {float(loss)} at step {step + 1}")
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                norm = torch.nn.utils.clip_grad_norm_(parameters, stage.clip_norm if stage.clip_norm > 0 else float("inf"))
                optimizer.step()
                schedule.step()
                step += 1
                row = {"step": step, "epoch": epoch, "lr": optimizer.param_groups[0]["lr"], "grad_norm": float(norm),
                       "gate": float(student.memory_attention.gate.detach().tanh()), "loss": float(loss.detach()),
                       **{k: float(v.detach()) for k, v in terms.items()}}  # fmt: skip
                log.append(row)
                log_file.write(json.dumps(row) + "\n")
                log_file.flush()
                bar.update()
                bar.set_postfix(loss=f"{row['loss']:.3f}", gate=f"{row['gate']:.3f}")
                if step % stage.checkpoint_every == 0:
                    save_memory(student, out / "checkpoints" / f"step_{step:06d}", {"step": step})
    bar.close()
    after = frozen_digest(student, trainable)
    save_memory(student, out / "final", {"step": step, "stage": vstage.name, "init": str(options.init)})
    window = max(1, min(20, len(log) // 5))
    summary = {
        "stage": vstage.name, "steps": step, "videos": len(bank.records), "trainable_tensors": len(trainable),
        "trainable_parameters": int(sum(p.numel() for p in parameters)),
        "frozen_unchanged": before == after, "frozen_digest": after,
        "seconds": time.perf_counter() - started, "feature_seconds": feature_seconds,
        "loss_start": sum(r["loss"] for r in log[:window]) / window if log else None,
        "loss_end": sum(r["loss"] for r in log[-window:]) / window if log else None,
        "gate": float(student.memory_attention.gate.detach().tanh()), "init": str(options.init), **context,
    }  # fmt: skip
    atomic_write_json(summary, out / "summary.json")
    if not summary["frozen_unchanged"]:
        raise RuntimeError(f"video stage {vstage.name}: frozen weights changed (digest {before} -> {after})")
    return summary
