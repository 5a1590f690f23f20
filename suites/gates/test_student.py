"""Student gate (``-m student``): parameter counts, output shapes, K=64 memory, fused == unfused,
and the eager CPU latency / peak memory of the image path (``slow``)."""

from __future__ import annotations

import copy

import pytest
import torch

from sam3spec.bench.measure import run_isolated
from sam3spec.config import SEED_PRESET, TINY_PRESET
from sam3spec.info import count_parameters
from sam3spec.models.build import build_student
from sam3spec.models.image_encoder import randomise_batch_norms
from sam3spec.models.student import COMPONENTS

pytestmark = pytest.mark.student
SEED = {"preset": SEED_PRESET, "weights": "random"}


@pytest.fixture(scope="module")
def seed_student():
    torch.manual_seed(0)
    return build_student(SEED_PRESET).eval()


@pytest.fixture(scope="module")
def tiny_student():
    torch.manual_seed(0)
    return build_student(TINY_PRESET).eval()


@pytest.fixture(scope="module")
def seed_counts(seed_student):
    return count_parameters(seed_student)


@pytest.mark.parametrize("component", [*COMPONENTS, "total"])
def test_parameter_count(gate, seed_counts, component):
    gate.check(f"student.params.{component}", seed_counts[component], **SEED)


def expected_shapes(config, batch: int, resolution: int) -> dict[str, tuple[int, ...]]:
    """The documented output shapes (Sam3Outputs docstring): masks at a quarter of the input."""
    queries, mask_side = config.detr.num_queries, resolution // 4
    return {
        "pred_logits": (batch, queries),
        "pred_boxes": (batch, queries, 4),
        "pred_masks": (batch, queries, mask_side, mask_side),
        "presence_logits": (batch, 1),
        "semantic_seg": (batch, 1, mask_side, mask_side),
        "iou_scores": (batch, queries),
    }


def shape_mismatches(outputs, expected) -> list[str]:
    wrong = []
    for name, shape in expected.items():
        tensor = getattr(outputs, name)
        if tensor is None or tuple(tensor.shape) != shape or not torch.isfinite(tensor).all():
            wrong.append(
                f"{name}: {None if tensor is None else tuple(tensor.shape)} (expected {shape}, finite)"
            )
    return wrong


def text_ids(batch: int, context: int) -> torch.Tensor:
    ids = torch.zeros(batch, context, dtype=torch.long)
    ids[:, :4] = torch.tensor([49406, 320, 321, 49407])
    return ids


@torch.no_grad()
def test_shapes_seed(gate, seed_student):
    resolution = 504
    outputs = seed_student(torch.randn(1, 3, resolution, resolution), input_ids=text_ids(1, 32))
    wrong = shape_mismatches(outputs, expected_shapes(seed_student.config, 1, resolution))
    gate.check(
        "student.shapes.seed", len(wrong), **SEED, resolution=resolution, note="; ".join(wrong) or None
    )


@torch.no_grad()
def test_shapes_tiny_every_prompt_type(gate, tiny_student):
    config, batch = tiny_student.config, 2
    resolution = config.image_size
    images = torch.randn(batch, 3, resolution, resolution)
    boxes = torch.tensor([[[0.1, 0.1, 0.5, 0.6], [0.5, 0.5, 0.9, 0.9]]]).repeat(batch, 1, 1)
    points = torch.tensor([[[0.3, 0.3]]]).repeat(batch, 1, 1)
    prompts = {
        "text": {"input_ids": text_ids(batch, config.text.context_length)},
        "boxes": {"boxes": boxes, "box_labels": torch.ones(batch, 2, dtype=torch.long)},
        "negative boxes": {"boxes": boxes, "box_labels": torch.tensor([[1, 0]] * batch)},
        "points": {"points": points, "point_labels": torch.ones(batch, 1, dtype=torch.long)},
        "text+boxes": {"input_ids": text_ids(batch, config.text.context_length), "boxes": boxes},
    }
    wrong = []
    for name, prompt in prompts.items():
        outputs = tiny_student(images, **prompt)
        wrong += [
            f"{name}: {w}" for w in shape_mismatches(outputs, expected_shapes(config, batch, resolution))
        ]
    gate.check(
        "student.shapes.tiny", len(wrong), preset=TINY_PRESET, weights="random", note="; ".join(wrong) or None
    )


@torch.no_grad()
def test_memory_is_fixed_size(gate, seed_student):
    hidden, side = seed_student.config.hidden, 16  # level 3 (stride 32) of a 504 px frame
    shapes = {
        tuple(seed_student.encode_memory(torch.randn(1, frames, hidden, side, side)).shape)
        for frames in (1, 2, 8, 32)
    }
    (shape,) = shapes if len(shapes) == 1 else (max(shapes),)
    gate.check("student.memory.tokens", shape[1], **SEED)
    gate.check("student.memory.constant", len(shapes), **SEED, note=f"shape {sorted(shapes)}")


@torch.no_grad()
def test_gate_zero_leaves_image_outputs_unchanged(gate, tiny_student):
    config = tiny_student.config
    images = torch.randn(1, 3, config.image_size, config.image_size)
    ids = text_ids(1, config.text.context_length)
    memory = torch.randn(1, config.memory.num_latents, config.hidden)
    without = tiny_student(images, input_ids=ids)
    with_memory = tiny_student(images, input_ids=ids, memory=memory)
    diff = max(
        (getattr(without, name) - getattr(with_memory, name)).abs().max().item()
        for name in ("pred_logits", "pred_boxes", "pred_masks", "presence_logits")
    )
    gate.check("student.memory.gate_zero_diff", diff, preset=TINY_PRESET, weights="random")


@torch.no_grad()
def test_fused_backbone_equals_unfused(gate, seed_student):
    unfused = randomise_batch_norms(copy.deepcopy(seed_student.image_encoder)).eval()
    fused = copy.deepcopy(unfused)
    fused.reparameterize()
    image = torch.randn(1, 3, 224, 224)
    reference, result = unfused(image), fused(image)
    # relative to each level's scale: deep levels reach |x| ~ 100, where fp32 rounding alone is ~1e-5
    diff = max(
        ((a - b).abs().max() / a.abs().max()).item()
        for a, b in zip(reference.features, result.features, strict=True)
    )
    assert sum(p.numel() for p in fused.parameters()) < sum(p.numel() for p in unfused.parameters())
    gate.check("student.reparam.max_abs_diff", diff, **SEED, resolution=224)


@pytest.mark.slow
@pytest.mark.parametrize("resolution", [504, 1008])
def test_eager_cpu_latency_and_memory(gate, resolution):
    result = run_isolated(
        "sam3spec.bench.image", ["--preset", SEED_PRESET, "--resolution", str(resolution), "--repeats", "3"]
    )
    context = {
        **SEED,
        "resolution": resolution,
        "device": f"cpu, {result['threads']} threads, fp32 eager, fused",
    }
    print(f"\n{SEED_PRESET} @ {resolution}px: {result}")
    gate.check(f"student.eager_cpu.latency_{resolution}", result["median_ms"], **context)
    gate.check(
        f"student.eager_cpu.rss_{resolution}",
        result["peak_rss_mb"],
        **context,
        note=f"baseline after imports + model build {result['baseline_rss_mb']:.0f} MB",
    )
