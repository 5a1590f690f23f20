"""What differs between stages: the task a stage selects, and the hooks a stage kind carries.

The loop (:mod:`sam3spec.distill.trainer`) is the same for every stage. What it trains, on which
micro-batches, and how a micro-batch becomes loss terms is a :class:`Task`; the stage selects it:

* a plain :class:`~sam3spec.distill.stages.StageConfig` is image distillation (:class:`ImageTask`:
  the student and its feature adapters, the SA-Co / SA-1B training set, teacher, ground-truth or
  self targets);
* a *stage kind* (:class:`StageKind`) is a frozen dataclass holding its ``StageConfig`` as
  ``stage`` (what trains, losses, schedule) plus its own fields, and selects its task: the video
  memory stage (:class:`sam3spec.video.stage.VideoStage`) and QAT (:class:`sam3spec.quant.qat.QatStage`,
  whose ``prepare`` / ``convert`` hooks insert and convert fake quantization).

The loop calls, per optimizer step and micro-batch: ``targets(batch)``, the (DDP-wrapped)
``model(inputs(batch))`` under the run's autocast, then ``terms(passed, targets)``; weights apply
in :func:`~sam3spec.distill.task.total_loss`, in the loop.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader

from sam3spec.checkpoint import WEIGHTS_NAME, write_student
from sam3spec.config import config_to_dict
from sam3spec.data.loader import collate_samples
from sam3spec.data.sources import data_sources, training_files
from sam3spec.distill import runtime
from sam3spec.distill.adapters import FeatureAdapters, StudentGeometry
from sam3spec.distill.data import data_units, image_groups, rank_batches, student_inputs
from sam3spec.distill.options import RunOptions
from sam3spec.distill.precise_bn import recalibrate_batch_norm
from sam3spec.distill.sources import target_source, teacher_path
from sam3spec.distill.stage_data import stage_dataset
from sam3spec.distill.stages import StageConfig, set_trainable
from sam3spec.distill.targets import Targets
from sam3spec.distill.task import DistillModel, Objective, StudentPass, loss_terms, query_anchors


@dataclass
class Setup:
    """What a task is built from: decided by the loop's set-up before the task exists.

    Attributes:
        stage: the stage's config (what trains, losses, schedule, seed).
        options: where the run reads and writes.
        processes: this process's rank among ``world_size``.
        device: where training runs.
        precision: autocast dtype and gradient scaling.
        key: the run key (:func:`~sam3spec.distill.sources.stage_hash`).
        student: a student given by the caller (trained as it is), or None: the task builds it.
    """

    stage: StageConfig
    options: RunOptions
    processes: runtime.Processes
    device: torch.device
    precision: runtime.Precision
    key: str
    student: nn.Module | None = None


class Task:
    """One kind of training, as the loop sees it (the defaults suit a task without the feature).

    Attributes:
        student: the student (its weights are the run's product; EMA and digests read it).
        model: the module that trains and that DDP wraps: ``model(inputs(batch))`` returns a
            :class:`~sam3spec.distill.task.StudentPass`.
        adapters: trained modules besides the student (saved with the training state), or None.
        trainable: the student's parameter names that train.
        train_mode: False keeps the whole model in eval mode (BatchNorm statistics, attention fast
            paths): only its weights adapt.
    """

    student: nn.Module
    model: nn.Module
    adapters: nn.Module | None = None
    trainable: list[str]
    train_mode: bool = True

    def batches(self, epoch: int) -> list[list[int]]:
        """This process's micro-batches of ``epoch`` (each a list of sample indices)."""
        raise NotImplementedError

    def load(self, batches: list[list[int]], epoch: int) -> Iterable[dict[str, Any]]:
        """The micro-batches ``batches`` of ``epoch``, loaded, in order (each with ``batch_size``)."""
        raise NotImplementedError

    def targets(self, batch: dict[str, Any], epoch: int) -> Targets:
        """The batch's targets, on the run's device."""
        raise NotImplementedError

    def inputs(self, batch: dict[str, Any]) -> dict[str, Any]:
        """The model's forward inputs for the batch, on the run's device."""
        raise NotImplementedError

    def terms(self, passed: StudentPass, targets: Targets) -> dict[str, torch.Tensor]:
        """Unweighted loss terms (:func:`~sam3spec.distill.task.loss_terms`)."""
        raise NotImplementedError

    def save(self, folder: Path, meta: dict[str, Any]) -> None:
        """Write the run's product (the trained weights) into the existing ``folder``."""
        raise NotImplementedError

    def restore(self, folder: Path) -> None:
        """Load what :meth:`save` wrote (a resume)."""
        raise NotImplementedError

    def save_final(self, folder: Path, meta: dict[str, Any]) -> None:
        """Write the run's ``final/`` (default: what :meth:`save` writes)."""
        self.save(folder, meta)

    def recalibrate(self, count: int, progress: bool) -> int:
        """Precise BN over the first ``count`` micro-batches of epoch 0; micro-batches used."""
        return 0

    def log_extras(self) -> dict[str, float]:
        """Extra values for each step's log row (after the optimizer step)."""
        return {}

    def picture(self, batch: dict[str, Any], targets: Targets, passed: StudentPass) -> torch.Tensor | None:
        """A ``[3, H, W]`` TensorBoard picture of a micro-batch, or None."""
        return None

    def epoch_report(self, rows: list[dict[str, Any]]) -> tuple[str, dict[str, float]] | None:
        """A line and TensorBoard scalars about one epoch, from its steps' log rows, or None."""
        return None

    def report(self, log: list[dict[str, Any]]) -> dict[str, Any]:
        """Task-specific ``summary.json`` entries, at the end of training (before the final save)."""
        return {}

    def verify(self, summary: dict[str, Any]) -> None:
        """Raise when the finished run broke a rule of the task (after ``summary.json`` is written)."""


class StageKind:
    """Base of the stage kinds: frozen dataclasses with a ``stage: StageConfig`` field.

    A kind selects its :class:`Task` (:meth:`task`) and may carry hooks around training.
    """

    stage: StageConfig

    @property
    def name(self) -> str:
        return self.stage.name

    def check(self, options: RunOptions) -> None:
        """Refuse options that do not fit the stage, before anything is written."""

    def task(self, setup: Setup) -> Task:
        raise NotImplementedError

    def prepare(self, student: nn.Module) -> dict[str, Any]:
        """Change the student before its optimizer exists (e.g. insert fake quantization); returns
        entries for ``summary.json``."""
        return {}

    def convert(self, student: nn.Module) -> dict[str, Any]:
        """Change the student after training and the final save (e.g. convert to quantized
        layers); returns entries for ``summary.json``."""
        return {}

    def describe(self) -> dict[str, Any]:
        """The kind's own fields (everything but ``stage``), for ``stage.json``."""
        values = config_to_dict(self)
        return {item.name: values[item.name] for item in fields(self) if item.name != "stage"}


@dataclass(frozen=True)
class ImageStage(StageKind):
    """An image distillation stage: what :func:`as_kind` makes of a plain ``StageConfig``."""

    stage: StageConfig

    def check(self, options: RunOptions) -> None:
        for source in data_sources(options.data):  # before anything is written
            training_files(source.root)
        if self.stage.targets == "teacher":
            teacher_path(options)  # raises, naming the option, when no teacher is given
        elif options.teacher_cache is not None:
            raise ValueError(
                f"stage {self.stage.name!r} trains on {self.stage.targets!r} targets: a teacher cache "
                f"({options.teacher_cache}) would not be read (leave out --teacher-cache, or --set targets=teacher)"
            )

    def task(self, setup: Setup) -> Task:
        return ImageTask(setup)


def as_kind(stage: StageConfig | StageKind) -> StageKind:
    """``stage`` as a stage kind (a plain ``StageConfig`` is an :class:`ImageStage`)."""
    return ImageStage(stage) if isinstance(stage, StageConfig) else stage


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


def text_share(rows: list[dict[str, Any]]) -> float | None:
    """The share of text-prompted samples over log rows (None when they count no samples)."""
    samples = sum(row.get("samples", 0) for row in rows)
    return sum(row.get("text_prompts", 0) for row in rows) / samples if samples else None


class ImageTask(Task):
    """Image distillation: the stage's student (plus feature adapters) on its training set.

    The student is ``setup.student``, or the stage's student (:meth:`StageConfig.student_config`,
    seeded with the stage's seed), started from ``options.init`` (``strict=False``, reported in
    ``init_report.json``) when given. Targets come from :func:`~sam3spec.distill.sources.target_source`.

    Args:
        setup: what the run decided.
        train_mode: False keeps the model in eval mode (see :class:`Task`).
    """

    def __init__(self, setup: Setup, train_mode: bool = True) -> None:
        stage, options = setup.stage, setup.options
        self.stage, self.options, self.processes = stage, options, setup.processes
        self.device, self.precision = setup.device, setup.precision
        self.train_mode = train_mode
        student = setup.student if setup.student is not None else self.build_student(setup)
        self.trainable = set_trainable(student, stage)
        geometry = StudentGeometry.of(student.config, stage.resolution, mask_scale=stage.mask_target_scale)
        self.dataset = stage_dataset(stage, options)
        self.targets_for, widths = target_source(
            stage, options, geometry, self.dataset, setup.processes, setup.device, setup.key, student
        )
        self.adapters = None
        if widths is not None:
            text = (student.config.hidden, widths[2]) if stage.losses.text_feature else (None, None)
            fpn = [student.config.image.fpn_dim] * len(stage.fpn_levels)
            self.adapters = FeatureAdapters(fpn, widths[0], student.config.hidden, widths[1], *text)
        aux = stage.losses.auxiliary != 0  # earlier decoder layers predict too (the auxiliary loss)
        self.model = DistillModel(student, self.adapters, geometry, stage.fpn_levels, aux=aux).to(
            setup.device
        )
        self.student = student
        from sam3spec.models.text_encoder import Tokenizer

        self.tokenizer = Tokenizer(student.config.text)
        self.groups = image_groups(self.dataset)
        self.units_per_batch = stage.batch_size // stage.prompts_per_image
        self.objective = Objective.of(stage)
        self.prompted = [0, 0]  # text-prompted and all samples since the last log row

    @staticmethod
    def build_student(setup: Setup) -> nn.Module:
        """The stage's student, pretrained towers and ``init`` loaded and reported
        (:func:`~sam3spec.distill.initial.initial_student`: modules the checkpoint lacks start fresh)."""
        from sam3spec.distill.initial import initial_student

        stage, options = setup.stage, setup.options
        student = initial_student(setup)
        if options.init is None and options.pretrained_text is None and stage.fresh_text_embedding_std > 0:
            with torch.no_grad():
                student.text_encoder.tower.token_embedding.weight.normal_(0.0, stage.fresh_text_embedding_std)
        return student

    def batches(self, epoch: int) -> list[list[int]]:
        units = data_units(self.dataset, self.groups, self.stage.seed, epoch, self.stage.prompts_per_image)
        return rank_batches(units, self.processes.rank, self.processes.world_size, self.units_per_batch)

    def load(self, batches: list[list[int]], epoch: int) -> Iterable[dict[str, Any]]:
        # Cached targets hold ``prompt_draws`` draws of prompts; online targets draw anew each epoch.
        self.dataset.set_epoch(epoch % self.stage.prompt_draws if self.options.cache_targets else epoch)
        return DataLoader(
            self.dataset,
            batch_sampler=batches,
            collate_fn=collate_samples,
            num_workers=self.stage.num_workers,
        )

    def targets(self, batch: dict[str, Any], epoch: int) -> Targets:
        return self.targets_for(batch, epoch).to(self.device)

    def inputs(self, batch: dict[str, Any]) -> dict[str, Any]:
        self.prompted[0] += sum(kind == "text" for kind in batch["prompt_type"])
        self.prompted[1] += batch["batch_size"]
        return student_inputs(batch, self.tokenizer, self.device)

    def log_extras(self) -> dict[str, float]:
        # Samples of this step and how many were text-prompted, over all processes: an epoch's
        # text-prompt share is then exact from the log alone, across a resume.
        counts = runtime.mean_across(
            torch.tensor(self.prompted, dtype=torch.float32, device=self.device), self.processes
        )
        self.prompted = [0, 0]
        return {
            "text_prompts": round(float(counts[0]) * self.processes.world_size),
            "samples": round(float(counts[1]) * self.processes.world_size),
        }

    def epoch_report(self, rows: list[dict[str, Any]]) -> tuple[str, dict[str, float]] | None:
        share = text_share(rows)
        if share is None:
            return None
        mix = self.stage.prompts
        planned = mix.text / (mix.text + mix.point + mix.box)
        samples = sum(row.get("samples", 0) for row in rows)
        line = f"text prompts {share:.1%} of {samples} samples (stage mix: text {planned:.0%})"
        return line, {"text_prompt_share": share}

    def terms(self, passed: StudentPass, targets: Targets) -> dict[str, torch.Tensor]:
        return loss_terms(passed, targets, self.objective, query_anchors(self.student))

    def save(self, folder: Path, meta: dict[str, Any]) -> None:
        write_student(self.student, folder)

    def restore(self, folder: Path) -> None:
        from safetensors.torch import load_file

        self.student.load_state_dict(load_file(str(Path(folder) / WEIGHTS_NAME)))

    def recalibrate(self, count: int, progress: bool) -> int:
        # On every rank (see precise_bn.py), over epoch 0's first micro-batches.
        self.dataset.set_epoch(0)
        return recalibrate_batch_norm(
            self.model,
            self.dataset,
            self.batches(0)[:count],
            self.tokenizer,
            self.device,
            self.processes,
            self.precision.autocast(self.device),
            self.stage.num_workers,
            progress,
            self.stage.precise_bn_merge,
        )

    def picture(self, batch: dict[str, Any], targets: Targets, passed: StudentPass) -> torch.Tensor | None:
        return runtime.mask_picture(
            batch["image"][0],
            targets.semantic_probs[0, 0],
            passed.outputs.semantic_seg[0, 0].detach().float().sigmoid(),
        )

    def report(self, log: list[dict[str, Any]]) -> dict[str, Any]:
        epochs = sorted({row["epoch"] for row in log})
        shares = [text_share([row for row in log if row["epoch"] == epoch]) for epoch in epochs]
        return {**(feature_loss_ratio(log) or {}), "text_prompt_share_by_epoch": shares}
