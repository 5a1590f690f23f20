"""Student training throughput and peak memory, one preset per process.

    python -m sam3spec.bench.training --preset efficientsam3-tiny --resolution 160 --batch 8
    python -m sam3spec.bench.training --preset efficientsam3-repvit_m2_3-mobileclip_s1 --resolution 504 --batch 4

Times full Phase 1 training steps (student forward with intermediates, query matching, all nine
losses, backward, AdamW) on random images with text prompts against synthetic teacher targets of
SAM 3's shapes (twice the student's queries; FPN and encoder targets at the teacher width): the
teacher's own cost is excluded, as when its targets are cached. Prints one JSON line:
``{"preset", "resolution", "batch", "threads", "step_ms_median", "images_per_second",
"baseline_rss_mb", "peak_rss_mb"}``.

:func:`phase1_bench` and :func:`train_step` are the same step for other benchmarks (the GPU check,
:mod:`sam3spec.bench.device`, times it under bf16 autocast, ``torch.compile`` and DDP).
"""

from __future__ import annotations

import argparse
import contextlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from sam3spec.bench.measure import current_rss_mb, peak_rss_mb, time_callable

RED_CIRCLE = (49406, 736, 7117, 49407)  # CLIP BPE ids of "<start> red circle <end>"


def synthetic_targets(batch: int, queries: int, geometry, width: int):
    """Teacher-shaped :class:`~sam3spec.distill.targets.Targets` with a few foreground queries."""
    from sam3spec.distill.targets import Targets

    logits = torch.full((batch, queries), -4.0)
    logits[:, :4] = 4.0
    corners = torch.rand(batch, queries, 2) * 0.5
    return Targets(
        logits=logits,
        boxes_xyxy=torch.cat([corners, corners + 0.3], -1),
        mask_probs=torch.rand(batch, queries, *geometry.mask_size),
        valid=torch.ones(batch, queries, dtype=torch.bool),
        presence_logits=torch.full((batch, 1), 3.0),
        semantic_probs=torch.rand(batch, 1, *geometry.mask_size),
        fpn_levels=[torch.randn(batch, width, *size) for size in geometry.level_sizes],
        encoder_memory=torch.randn(batch, width, *geometry.encoder_size),
        has_encoder=torch.ones(batch, dtype=torch.bool),
    )


@dataclass
class Phase1Bench:
    """One Phase 1 training step of a student, ready to time.

    Attributes:
        model: the student + feature adapters (:class:`~sam3spec.distill.task.DistillModel`).
        optimizer: AdamW over its trainable parameters.
        inputs: ``pixel_values [B, 3, S, S]`` (random) and ``input_ids [B, L]`` ("red circle").
        objective: Phase 1's losses and matcher.
        geometry: the student's grid sizes at ``S``.
    """

    model: nn.Module
    optimizer: torch.optim.Optimizer
    inputs: dict[str, torch.Tensor]
    objective: Any
    geometry: Any

    @property
    def trainable(self) -> int:
        return sum(p.numel() for p in self.model.parameters() if p.requires_grad)


def phase1_bench(
    preset: str,
    resolution: int,
    batch: int,
    device: str | torch.device = "cpu",
    teacher_width: int | None = None,
) -> Phase1Bench:
    """The Phase 1 step of ``preset`` at ``resolution`` px, ``batch`` text prompts, on ``device``.

    ``teacher_width``: width of the teacher's FPN / encoder features (default: the student's FPN
    width; SAM 3's is 256, as the seed student's, so its adapters are identities).
    """
    from sam3spec.config import get_preset, override
    from sam3spec.distill.adapters import FeatureAdapters, StudentGeometry
    from sam3spec.distill.stages import PHASE1, set_trainable
    from sam3spec.distill.task import DistillModel, Objective
    from sam3spec.models.build import build_student

    torch.manual_seed(0)
    student = build_student(override(get_preset(preset), {"image_size": resolution}))
    set_trainable(student, PHASE1)
    config = student.config
    width = teacher_width or config.image.fpn_dim
    geometry = StudentGeometry.of(config, resolution)
    adapters = FeatureAdapters([config.image.fpn_dim] * 4, [width] * 4, config.hidden, width)
    model = DistillModel(student, adapters, geometry).train().to(device)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4, foreach=True)
    ids = torch.zeros(batch, config.text.context_length, dtype=torch.long)
    ids[:, : len(RED_CIRCLE)] = torch.tensor(RED_CIRCLE)
    inputs = {"pixel_values": torch.randn(batch, 3, resolution, resolution), "input_ids": ids}
    inputs = {name: value.to(device) for name, value in inputs.items()}
    objective = Objective(PHASE1.losses, PHASE1.matcher, 0.5, PHASE1.logit_positive_weight)
    return Phase1Bench(model, optimizer, inputs, objective, geometry)


def train_step(
    bench: Phase1Bench, targets, model: nn.Module | None = None, autocast=contextlib.nullcontext
) -> None:
    """Forward (under ``autocast()``, as the trainer does), losses, backward, AdamW step.

    Args:
        bench: from :func:`phase1_bench`.
        targets: :class:`~sam3spec.distill.targets.Targets` on the model's device.
        model: what runs the forward (``bench.model`` compiled or wrapped in DDP); default ``bench.model``.
        autocast: a context factory, e.g. ``lambda: torch.autocast("cuda", torch.bfloat16)``.
    """
    from sam3spec.distill.stages import PHASE1
    from sam3spec.distill.task import loss_terms, total_loss

    with autocast():
        passed = (bench.model if model is None else model)(bench.inputs)
    total_loss(loss_terms(passed, targets, bench.objective), PHASE1.losses).backward()
    bench.optimizer.step()
    bench.optimizer.zero_grad(set_to_none=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", required=True)
    parser.add_argument("--resolution", type=int, required=True)
    parser.add_argument("--batch", type=int, required=True)
    parser.add_argument("--steps", type=int, default=5, help="timed steps (after one warm-up step)")
    parser.add_argument(
        "--teacher-width", type=int, default=None, help="teacher feature width (default: the student's)"
    )
    args = parser.parse_args(argv)

    bench = phase1_bench(args.preset, args.resolution, args.batch, teacher_width=args.teacher_width)
    config = bench.model.student.config
    width = args.teacher_width or config.image.fpn_dim
    targets = synthetic_targets(args.batch, 2 * config.detr.num_queries, bench.geometry, width)
    baseline = current_rss_mb()
    stats = time_callable(lambda: train_step(bench, targets), warmup=1, repeats=args.steps)
    result = {
        "preset": args.preset,
        "resolution": args.resolution,
        "batch": args.batch,
        "threads": torch.get_num_threads(),
        "parameters_trained": bench.trainable,
        "step_ms_median": stats["median_ms"],
        "step_ms_min": stats["min_ms"],
        "images_per_second": args.batch / (stats["median_ms"] / 1e3),
        "baseline_rss_mb": baseline,
        "peak_rss_mb": peak_rss_mb(),
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
