"""The video memory stage's task: train only the memory (resampler + gated cross-attention).

The trainer (:mod:`sam3spec.distill.trainer`) runs it like any stage; this module says what
differs. The student is frozen and in eval mode outside its memory, so each annotated frame's
features are computed once (:class:`~sam3spec.video.data.FeatureBank`). Per micro-batch of
(context, query frame, prompt) samples (the prompt: a masklet's first visible box, encoded on its
frame, or an object's phrase; the stage's ``prompt``): memory = resampler(context level-3 maps, invalid slots
masked; the student's own maps, or a teacher cache's with ``context_source="teacher_cache"``,
:mod:`sam3spec.video.teacher_context`) -> encoder tokens of the query frame read the memory ->
decoder -> the trainer's losses (:func:`~sam3spec.distill.task.loss_terms`, no anchor term)
against SA-V ground truth (:func:`~sam3spec.distill.targets.ground_truth_targets`).

Writes, through the trainer: ``out/train_log.jsonl`` (every step, every term, the memory ``gate``),
``out/checkpoints/step_N/`` and ``out/final/`` (memory-only weights, :mod:`sam3spec.video.checkpoint`),
``out/summary.json`` (including a check that every frozen tensor is bit-identical after training:
:meth:`MemoryTask.verify` raises when one changed).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from sam3spec.distill.adapters import StudentGeometry
from sam3spec.distill.data import rank_batches
from sam3spec.distill.stages import set_trainable
from sam3spec.distill.targets import Targets, ground_truth_targets
from sam3spec.distill.task import Objective, StudentPass, loss_terms
from sam3spec.distill.tasks import Setup, Task
from sam3spec.models.image_encoder import ImageFeatures
from sam3spec.models.video import resample_valid
from sam3spec.video.checkpoint import load_memory, write_memory
from sam3spec.video.data import FeatureBank
from sam3spec.video.teacher_context import attach_teacher_context

if TYPE_CHECKING:
    from sam3spec.video.stage import VideoStage

MEMORY_PREFIXES = ("memory_resampler.", "memory_attention.")


def frozen_digest(student: nn.Module, trainable: set[str]) -> str:
    """SHA-256 over every parameter and buffer that must not change."""
    digest = hashlib.sha256()
    for name, tensor in sorted(student.state_dict().items()):
        if name not in trainable:
            digest.update(name.encode())
            digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


def build_video_student(setup: Setup) -> nn.Module:
    """The stage's student (its preset at its resolution) with ``options.init`` loaded, or (smoke
    tests) fresh. Only the memory may be missing from the checkpoint (it is what trains); any other
    missing, unexpected or mis-shaped key means the checkpoint was made for another student: an error
    unless ``options.allow_partial`` (:func:`~sam3spec.distill.initial.initial_student`)."""
    from sam3spec.distill.initial import initial_student

    return initial_student(setup, new_allowed=MEMORY_PREFIXES, check_config=True)


class MemoryModel(nn.Module):
    """The student's memory path on a micro-batch of precomputed features (what DDP wraps)."""

    def __init__(self, student: nn.Module) -> None:
        super().__init__()
        self.student = student

    def forward(self, inputs: dict[str, Any]) -> StudentPass:
        """``inputs`` (:meth:`MemoryTask.inputs`): the query frame's FPN levels ``features``, their
        positions ``pos`` (``[1, C, h, w]`` each), ``context`` ``[B, T, C, h3, w3]``, ``valid``
        ``[B, T]``, and the prompt: ``input_ids`` ``[B, L]``, or ``boxes`` ``[B, 1, 4]`` +
        ``box_labels`` ``[B, 1]`` + the prompt frame's levels ``prompt_features``."""
        count = inputs["context"].shape[0]
        positions = [p.expand(count, -1, -1, -1) for p in inputs["pos"]]
        features = ImageFeatures(inputs["features"], positions)
        with torch.no_grad():  # the prompt encoders are frozen: no graph through them
            if "boxes" in inputs:  # encoded on the prompt frame, as the predictor does on its first
                prompt, prompt_mask = self.student.encode_prompt(
                    boxes=inputs["boxes"],
                    box_labels=inputs["box_labels"],
                    image_features=ImageFeatures(inputs["prompt_features"], positions),
                )
            else:
                prompt, prompt_mask = self.student.encode_prompt(inputs["input_ids"])
        memory = resample_valid(self.student.memory_resampler, inputs["context"], inputs["valid"])
        return StudentPass(self.student.decode(features, prompt, prompt_mask, memory))


class MemoryTask(Task):
    """The video memory stage's task (see the module docstring).

    The student is ``setup.student``, or the stage's student with ``options.init`` loaded
    (:func:`build_video_student`; a fresh one without it: smoke tests only). Micro-batches: epoch ``e``'s samples
    (:meth:`~sam3spec.video.data.FeatureBank.samples`, drawn from ``(seed, e)``) cut into batches
    of ``batch_size``, rank ``r`` of ``W`` taking every ``W``-th sample.

    Args:
        setup: what the run decided.
        video: the video stage.
    """

    train_mode = False  # frozen BatchNorm and dropout: only the memory trains

    def __init__(self, setup: Setup, video: VideoStage) -> None:
        from sam3spec.models.text_encoder import Tokenizer

        stage, options = setup.stage, setup.options
        self.stage, self.video, self.options = stage, video, options
        self.device, self.processes = setup.device, setup.processes
        student = setup.student if setup.student is not None else build_video_student(setup)
        self.trainable = set_trainable(student, stage)
        student.eval()
        self.before = frozen_digest(student, set(self.trainable))
        self.started = time.perf_counter()
        self.student = student.to(setup.device)
        self.geometry = StudentGeometry.of(student.config)
        self.bank = FeatureBank(
            student,
            options.data,
            options.phrases if video.prompt == "phrase" else None,
            limit=options.limit,
            prompt=video.prompt,
            mask_size=self.geometry.mask_target_size,
        )
        self.level = student.config.memory.context_level
        self.context: dict[str, Any] = {"context_source": video.context_source}
        if video.context_source == "teacher_cache":
            self.context.update(
                attach_teacher_context(
                    self.bank, options.teacher_cache, self.level, student.config.hidden, video.name
                )
            )
        self.feature_seconds = time.perf_counter() - self.started
        self.tokenizer = Tokenizer(student.config.text)
        self.model = MemoryModel(student)
        self.objective = Objective.of(stage)
        self._samples: tuple[int, list[tuple[int, int, int]]] | None = None

    def samples(self, epoch: int) -> list[tuple[int, int, int]]:
        """``(video, query frame, object)`` triples of ``epoch`` (the last epoch's kept)."""
        if self._samples is None or self._samples[0] != epoch:
            self._samples = (epoch, self.bank.samples(self.video.samples_per_video, self.stage.seed, epoch))
        return self._samples[1]

    def batches(self, epoch: int) -> list[list[int]]:
        units = [[index] for index in range(len(self.samples(epoch)))]
        return rank_batches(units, self.processes.rank, self.processes.world_size, self.stage.batch_size)

    def load(self, batches: list[list[int]], epoch: int) -> Iterator[dict[str, Any]]:
        samples = self.samples(epoch)
        for indices in batches:
            batch = self.bank.batch(
                [samples[index] for index in indices], self.video.context_frames, self.level
            )
            batch["batch_size"] = len(indices)
            yield batch

    def targets(self, batch: dict[str, Any], epoch: int) -> Targets:
        return ground_truth_targets(batch, self.geometry).to(self.device)

    def inputs(self, batch: dict[str, Any]) -> dict[str, Any]:
        device = self.device
        inputs = {
            "features": [level.to(device) for level in batch["features"]],
            "pos": [position.to(device) for position in self.bank.pos],
            "context": batch["context"].to(device),
            "valid": batch["valid"].to(device),
        }
        if "text" in batch:
            inputs["input_ids"] = self.tokenizer(batch["text"]).to(device)
        else:
            boxes = batch["prompt_boxes_xyxy"]
            inputs["boxes"] = boxes.to(device)
            inputs["box_labels"] = torch.ones(boxes.shape[:2], dtype=torch.long, device=device)
            inputs["prompt_features"] = [level.to(device) for level in batch["prompt_features"]]
        return inputs

    def terms(self, passed: StudentPass, targets: Targets) -> dict[str, torch.Tensor]:
        return loss_terms(passed, targets, self.objective)

    def save(self, folder: Path, meta: dict[str, Any]) -> None:
        write_memory(self.student, folder, meta)

    def save_final(self, folder: Path, meta: dict[str, Any]) -> None:
        """The memory files and the whole student: ``final/`` is then a checkpoint the next stage
        (Stage 3), ``eval`` and ``export`` take as it is (checkpoints stay memory-only: small)."""
        from sam3spec.checkpoint import write_student

        write_memory(self.student, folder, meta)
        write_student(self.student, folder)

    def restore(self, folder: Path) -> None:
        load_memory(self.student, folder)

    def gate(self) -> float:
        """The memory's output gate, ``tanh`` of its parameter (0: the memory changes nothing)."""
        return float(self.student.memory_attention.gate.detach().tanh())

    def log_extras(self) -> dict[str, float]:
        return {"gate": self.gate()}

    def report(self, log: list[dict[str, Any]]) -> dict[str, Any]:
        self.after = frozen_digest(self.student, set(self.trainable))
        window = max(1, min(20, len(log) // 5))
        return {
            "videos": len(self.bank.records),
            "videos_skipped": len(self.bank.skipped),
            "prompt": self.video.prompt,
            "trainable_tensors": len(self.trainable),
            "trainable_parameters": int(sum(p.numel() for p in self.student.parameters() if p.requires_grad)),
            "frozen_unchanged": self.before == self.after,
            "frozen_digest": self.after,
            "seconds": time.perf_counter() - self.started,
            "feature_seconds": self.feature_seconds,
            "loss_start": sum(r["loss"] for r in log[:window]) / window if log else None,
            "loss_end": sum(r["loss"] for r in log[-window:]) / window if log else None,
            "gate": self.gate(),
            "init": str(self.options.init),
            **self.context,
        }

    def verify(self, summary: dict[str, Any]) -> None:
        if not summary["frozen_unchanged"]:
            raise RuntimeError(
                f"video stage {self.stage.name}: frozen weights changed "
                f"(digest {self.before} -> {self.after})"
            )
