"""Quantization-aware training: prepare (fake quantization) -> train -> convert (torchao ``QATConfig``).

The plan (docs/PLAN.md 8): when post-training quantization loses more than 2% mIoU, train 1-2 epochs at lr 1e-5
with the Phase 2 loss under fake quantization, then convert. QAT is a stage kind
(:class:`QatStage`) that the one trainer (:func:`sam3spec.distill.distill`) runs:

1. its ``prepare`` hook, :func:`prepare_qat`, swaps the recipe's Linear layers for fake-quantized
   ones (``QATConfig(base, step="prepare")``; the same filter as PTQ, sensitive parts in float);
2. the trainer's image task trains the student on a data root (e.g. the concept world) with the
   ``phase2`` stage's objective and prompt mix; the targets are the *float* student's own outputs
   (``targets="self"``: a frozen copy taken before the fake quantizers go in; QAT recovers what
   quantization loses, it does not relearn the task); the model stays in eval mode (BatchNorm
   statistics are the float model's: only the weights adapt); AdamW at a constant lr 1e-5, no
   clipping;
3. its ``convert`` hook, :func:`convert_qat`, quantizes the trained weights (``step="convert"``)
   plus, by PTQ, the token embedding.

The trained weights are plain float weights (fake quantization adds no parameters), so the run's
``final/`` is an ordinary student checkpoint: exporting or PTQ-quantizing it with the same recipe
gives the converted model. :func:`train_qat` is the call for a student in memory.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

from sam3spec.config import StudentConfig
from sam3spec.distill.stages import PHASE2, StageConfig
from sam3spec.distill.tasks import ImageTask, Setup, StageKind, Task
from sam3spec.quant.recipes import QuantRecipe, get_recipe, packed_bytes, quantize_modules
from sam3spec.quant.sensitivity import LinearPlan, sensitive_modules


@dataclass
class QatOptions:
    """Where and how long a :func:`train_qat` run trains.

    Attributes:
        out: the training run's folder (``train_log.jsonl``, ``checkpoints/``, ``final/``:
            the QAT-trained float weights, ``summary.json``).
        steps: optimizer steps (the plan: 1-2 epochs; mechanics tests: a few).
        learning_rate: AdamW learning rate (the plan: 1e-5).
        batch_size: samples per step.
        seed: data order and prompt draws.
        log_every: progress and TensorBoard every this many steps.
        verbose: print the quantization plan (which layers are fake-quantized, which stay float).
        progress: show a progress bar.
    """

    out: Path
    steps: int = 200
    learning_rate: float = 1e-5
    batch_size: int = 4
    seed: int = 0
    log_every: int = 10
    verbose: bool = True
    progress: bool = True


def _qat(step: str) -> Callable[[Any], Any]:
    from torchao.quantization.qat import QATConfig

    return lambda config: QATConfig(config, step=step)


def prepare_qat(
    student: nn.Module, recipe: QuantRecipe | str, log: Callable[[str], None] | None = print
) -> LinearPlan:
    """Insert fake quantization into ``student``'s Linear layers (in place)."""
    recipe = get_recipe(recipe) if isinstance(recipe, str) else recipe
    plan, _ = quantize_modules(
        student, recipe, sensitive_modules(student), log=log, wrap=_qat("prepare"), embeddings=False
    )
    return plan


def convert_qat(
    student: nn.Module, recipe: QuantRecipe | str, log: Callable[[str], None] | None = print
) -> LinearPlan:
    """Replace the fake-quantized layers by quantized ones, and PTQ the token embedding (in place)."""
    recipe = get_recipe(recipe) if isinstance(recipe, str) else recipe
    plan, _ = quantize_modules(student, recipe, sensitive_modules(student), log=log, wrap=_qat("convert"))
    return plan


def fake_quantized_count(model: nn.Module) -> int:
    """How many modules carry a torchao fake quantizer (after :func:`prepare_qat`)."""
    return sum(1 for module in model.modules() if hasattr(module, "weight_fake_quantizer"))


def qat_config(student: StudentConfig, options: QatOptions) -> StageConfig:
    """The QAT stage's config for a student: Phase 2's objective and prompt mix, targets from the
    float student itself, the student's own resolution and mask grid, a constant ``learning_rate``
    (no warm-up, no decay), no clipping, fp32, ``steps`` optimizer steps (as many epochs as they
    take: an epoch has at least one step)."""
    return replace(
        PHASE2,
        name="qat",
        targets="self",
        init_from=None,
        resolution=student.image_size,
        mask_target_scale=student.mask_upsample,
        epochs=max(1, options.steps),
        batch_size=options.batch_size,
        prompts_per_image=1,
        grad_accum=1,
        learning_rate=options.learning_rate,
        warmup_steps=0,
        min_lr_ratio=1.0,
        clip_norm=0.0,
        amp="off",
        seed=options.seed,
        log_every=options.log_every,
    )


class QatTask(ImageTask):
    """The image task in eval mode whose product is the student's float weights (fake quantizers
    hold none)."""

    def __init__(self, setup: Setup) -> None:
        super().__init__(setup, train_mode=False)

    def save(self, folder: Path, meta: dict[str, Any]) -> None:
        from sam3spec.checkpoint import write_student

        write_student(self.student, folder, trained_float_state(self.student))

    def restore(self, folder: Path) -> None:
        from safetensors.torch import load_file

        from sam3spec.checkpoint import WEIGHTS_NAME

        self.student.load_state_dict(load_file(str(Path(folder) / WEIGHTS_NAME)), strict=False)


@dataclass(frozen=True)
class QatStage(StageKind):
    """Quantization-aware training as a stage: hooks around the trainer's image task.

    Attributes:
        stage: the schedule and objective (:func:`qat_config`).
        recipe: the quantization recipe.
        verbose: print the quantization plan.
    """

    stage: StageConfig
    recipe: QuantRecipe
    verbose: bool = True

    def task(self, setup: Setup) -> Task:
        return QatTask(setup)

    def prepare(self, student: nn.Module) -> dict[str, Any]:
        plan = prepare_qat(student, self.recipe, print if self.verbose else None)
        return {
            "recipe": self.recipe.name,
            "plan": plan.describe(),
            "fake_quantized": fake_quantized_count(student),
        }

    def convert(self, student: nn.Module) -> dict[str, Any]:
        convert_qat(student, self.recipe, print if self.verbose else None)
        return {"packed_bytes": packed_bytes(student)}


def train_qat(
    student: nn.Module, data: str | Path, recipe: QuantRecipe | str, options: QatOptions
) -> dict[str, Any]:
    """Prepare ``student`` for QAT, train it against its own float outputs, and convert it (in place).

    Args:
        student: the trained float student (trained where its weights are).
        data: a data root with SA-Co train files (its training split, e.g. a concept world).
        recipe: the quantization recipe.
        options: where and how long.

    Returns:
        ``{"losses": [...], "plan": str, "fake_quantized": int, "packed_bytes": int, "seconds": float,
        "float_state": {name: tensor}}``: the losses per step, the plan, the fake-quantized layers,
        the converted model's packed size, the wall time, and the trained float weights (also in
        ``options.out / "final"``); the student is converted on return.
    """
    from safetensors.torch import load_file

    from sam3spec.checkpoint import WEIGHTS_NAME
    from sam3spec.distill.options import RunOptions
    from sam3spec.distill.trainer import distill

    recipe = get_recipe(recipe) if isinstance(recipe, str) else recipe
    stage = QatStage(qat_config(student.config, options), recipe, options.verbose)
    out = Path(options.out)
    run = RunOptions(
        data=Path(data),
        out=out,
        max_steps=options.steps,
        progress=options.progress,
        device=str(next(student.parameters()).device),
        tensorboard=False,
    )
    start = time.perf_counter()
    summary = distill(stage, run, student=student)
    rows = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines() if line.strip()]
    return {
        "losses": [row["loss"] for row in rows],
        "plan": summary["plan"],
        "fake_quantized": summary["fake_quantized"],
        "packed_bytes": summary["packed_bytes"],
        "seconds": time.perf_counter() - start,
        "float_state": load_file(str(out / "final" / WEIGHTS_NAME)),
    }


def trained_float_state(student: nn.Module) -> dict[str, torch.Tensor]:
    """The student's float weights under their usual names (fake quantizers hold no weights)."""
    return {
        name: value.detach().clone()
        for name, value in student.state_dict().items()
        if "fake_quantizer" not in name and type(value) is torch.Tensor
    }
