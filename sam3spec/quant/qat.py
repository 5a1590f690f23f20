"""Quantization-aware training: prepare (fake quantization) -> train -> convert (torchao ``QATConfig``).

MISSION.md: when post-training quantization loses more than 2% mIoU, train 1-2 epochs at lr 1e-5
with the Phase 2 loss under fake quantization, then convert. Here:

1. :func:`prepare_qat` swaps the recipe's Linear layers for fake-quantized ones
   (``QATConfig(base, step="prepare")``; the same filter as PTQ, sensitive parts in float);
2. :func:`train_qat` trains on a data root (e.g. the concept world) with the distillation engine's Phase 2 objective
   (:func:`sam3spec.distill.task.loss_terms` with the ``phase2`` stage's loss weights and
   matcher): the targets are the *float* student's own outputs (self-distillation: QAT recovers
   what quantization loses, it does not relearn the task); batches come from the engine's
   dataset (``training_dataset`` / ``student_inputs``) with Phase 2's prompt mix;
3. :func:`convert_qat` quantizes the trained weights (``step="convert"``) plus, by PTQ, the
   token embedding.

The trained weights are plain float weights (fake quantization adds no parameters), so a QAT run
saves an ordinary student checkpoint: exporting or PTQ-quantizing it with the same recipe gives
the converted model.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from sam3spec.quant.recipes import QuantRecipe, get_recipe, packed_bytes, quantize_modules
from sam3spec.quant.sensitivity import LinearPlan, sensitive_modules

if TYPE_CHECKING:
    from sam3spec.distill.adapters import StudentGeometry


@dataclass
class QatOptions:
    """QAT schedule.

    Attributes:
        steps: optimizer steps (MISSION.md: 1-2 epochs; mechanics tests: a few).
        learning_rate: AdamW learning rate (MISSION.md: 1e-5).
        batch_size: samples per step.
        seed: data order and prompt draws.
        log_every: print every this many steps.
    """

    steps: int = 200
    learning_rate: float = 1e-5
    batch_size: int = 4
    seed: int = 0
    log_every: int = 10


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


def phase2_objective(geometry: StudentGeometry) -> Callable[[Any, Any], tuple[torch.Tensor, dict]]:
    """``(student outputs, reference outputs) -> (loss, terms)``: the engine's Phase 2 loss.

    The reference outputs become :class:`~sam3spec.distill.targets.Targets` on the student's grid
    (``geometry``, a :class:`~sam3spec.distill.adapters.StudentGeometry`).
    """
    from sam3spec.distill.registry import get_stage
    from sam3spec.distill.targets import from_outputs
    from sam3spec.distill.task import loss_terms, total_loss

    stage = get_stage("phase2")

    def objective(outputs, reference) -> tuple[torch.Tensor, dict]:
        targets = from_outputs(reference, geometry)
        terms = loss_terms(
            outputs,
            targets,
            stage.losses,
            stage.matcher,
            stage.foreground_threshold,
            positive_weight=stage.logit_positive_weight,
        )
        return total_loss(terms, stage.losses), terms

    return objective


def _batches(data: str | Path, resolution: int, batch_size: int, seed: int):
    """Endless training batches with Phase 2's prompt mix (the engine's loaders)."""
    from torch.utils.data import DataLoader

    from sam3spec.data.loader import collate_samples
    from sam3spec.distill.data import training_dataset
    from sam3spec.distill.registry import get_stage

    dataset = training_dataset(data, resolution, get_stage("phase2").prompts, None, seed)
    epoch = 0
    while True:
        dataset.set_epoch(epoch)
        order = torch.Generator().manual_seed(seed + epoch)
        loader = DataLoader(
            dataset, batch_size=batch_size, shuffle=True, generator=order, collate_fn=collate_samples
        )
        for batch in loader:
            if batch["batch_size"]:
                yield batch
        epoch += 1


def train_qat(
    student: nn.Module,
    data: str | Path,
    recipe: QuantRecipe | str,
    options: QatOptions | None = None,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Prepare ``student`` for QAT, train it against its own float outputs, and convert it (in place).

    Args:
        student: the trained float student (eval-mode BatchNorm is kept: only weights adapt).
        data: a data root with SA-Co train files (its training split, e.g. a concept world).
        recipe: the quantization recipe.
        options: the schedule.
        log: progress lines.

    Returns:
        ``{"losses": [...], "plan": str, "fake_quantized": int, "packed_bytes": int, "seconds": float}``;
        the student is converted on return; :func:`trained_float_state` gives the trained float
        weights when called between training and conversion (see ``keep_float``).
    """
    from sam3spec.distill.data import student_inputs
    from sam3spec.distill.task import DistillModel
    from sam3spec.models.text_encoder import Tokenizer

    options = options or QatOptions()
    recipe = get_recipe(recipe) if isinstance(recipe, str) else recipe
    torch.manual_seed(options.seed)
    config = student.config
    reference = copy.deepcopy(student).eval()
    for parameter in reference.parameters():
        parameter.requires_grad_(False)
    plan = prepare_qat(student, recipe, log)
    fake = fake_quantized_count(student)
    from sam3spec.distill.adapters import StudentGeometry

    geometry = StudentGeometry.of(config)
    model, teacher = DistillModel(student, None, geometry), DistillModel(reference, None, geometry)
    objective = phase2_objective(geometry)
    tokenizer = Tokenizer(config.text)
    optimizer = torch.optim.AdamW(
        [p for p in student.parameters() if p.requires_grad], lr=options.learning_rate
    )
    student.eval()  # BatchNorm statistics stay those of the float model; weights still get gradients
    losses: list[float] = []
    start = time.perf_counter()
    batches = _batches(data, config.image_size, options.batch_size, options.seed)
    for step in range(1, options.steps + 1):
        inputs = student_inputs(next(batches), tokenizer, torch.device("cpu"))
        with torch.no_grad():
            target_outputs, *_ = teacher(inputs)
        outputs, *_ = model(inputs)
        loss, _ = objective(outputs, target_outputs)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
        if step % options.log_every == 0 or step == options.steps:
            log(f"qat step {step}/{options.steps}: loss {losses[-1]:.4f}")
    trained = trained_float_state(student)
    convert_qat(student, recipe, log)
    return {
        "losses": losses,
        "plan": plan.describe(),
        "fake_quantized": fake,
        "packed_bytes": packed_bytes(student),
        "seconds": time.perf_counter() - start,
        "float_state": trained,
    }


def trained_float_state(student: nn.Module) -> dict[str, torch.Tensor]:
    """The student's float weights under their usual names (fake quantizers hold no weights)."""
    return {
        name: value.detach().clone()
        for name, value in student.state_dict().items()
        if "fake_quantizer" not in name and type(value) is torch.Tensor
    }
