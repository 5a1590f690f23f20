"""Student training throughput and peak memory, one preset per process.

    python -m sam3spec.bench.training --preset efficientsam3-tiny --resolution 160 --batch 8
    python -m sam3spec.bench.training --preset efficientsam3-repvit_m2_3-mobileclip_s1 --resolution 504 --batch 4

Times full Phase 1 training steps (student forward with intermediates, query matching, all nine
losses, backward, AdamW) on random images with text prompts against synthetic teacher targets of
SAM 3's shapes (twice the student's queries; FPN and encoder targets at the teacher width): the
teacher's own cost is excluded, as when its targets are cached. Prints one JSON line:
``{"preset", "resolution", "batch", "threads", "step_ms_median", "images_per_second",
"baseline_rss_mb", "peak_rss_mb"}``.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence

import torch

from sam3spec.bench.measure import current_rss_mb, peak_rss_mb, time_callable


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

    from sam3spec.config import get_preset, override
    from sam3spec.distill.adapters import FeatureAdapters, StudentGeometry
    from sam3spec.distill.stages import PHASE1, set_trainable
    from sam3spec.distill.task import DistillModel, Objective, loss_terms, total_loss
    from sam3spec.models.build import build_student

    torch.manual_seed(0)
    student = build_student(override(get_preset(args.preset), {"image_size": args.resolution}))
    set_trainable(student, PHASE1)
    config = student.config
    width = args.teacher_width or config.image.fpn_dim
    geometry = StudentGeometry.of(config, args.resolution)
    adapters = FeatureAdapters([config.image.fpn_dim] * 4, [width] * 4, config.hidden, width)
    model = DistillModel(student, adapters, geometry).train()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4, foreach=True)
    ids = torch.zeros(args.batch, config.text.context_length, dtype=torch.long)
    ids[:, :4] = torch.tensor([49406, 736, 7117, 49407])  # "red circle"
    inputs = {"pixel_values": torch.randn(args.batch, 3, args.resolution, args.resolution), "input_ids": ids}
    targets = synthetic_targets(args.batch, 2 * config.detr.num_queries, geometry, width)
    baseline = current_rss_mb()

    objective = Objective(PHASE1.losses, PHASE1.matcher, 0.5, PHASE1.logit_positive_weight)

    def step() -> None:
        terms = loss_terms(model(inputs), targets, objective)
        total_loss(terms, PHASE1.losses).backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    stats = time_callable(step, warmup=1, repeats=args.steps)
    result = {
        "preset": args.preset,
        "resolution": args.resolution,
        "batch": args.batch,
        "threads": torch.get_num_threads(),
        "parameters_trained": sum(p.numel() for p in model.parameters() if p.requires_grad),
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
