"""The assembled tiny student: prompt types, shapes, gradients, memory, validation."""

from __future__ import annotations

import copy

import pytest
import torch

from sam3spec.config import TINY_PRESET, get_preset
from sam3spec.models import COMPONENTS, Sam3Outputs, Student
from sam3spec.models.image_encoder import randomise_batch_norms

TINY = get_preset(TINY_PRESET)
Q, HIDDEN = TINY.detr.num_queries, TINY.hidden
MEMORY_MODULES = ("memory_resampler.", "memory_attention.")

PROMPTS = {
    "text": ("input_ids",),
    "boxes": ("boxes", "box_labels"),
    "points": ("points", "point_labels"),
    "text+boxes": ("input_ids", "boxes", "box_labels"),
    "text+boxes+points": ("input_ids", "boxes", "box_labels", "points", "point_labels"),
}


def prompt_kwargs(inputs: dict[str, torch.Tensor], kind: str) -> dict[str, torch.Tensor]:
    return {name: inputs[name] for name in PROMPTS[kind]}


def check_outputs(out: Sam3Outputs, batch: int, size: int) -> None:
    h = size // 4
    expected = {
        "pred_logits": (batch, Q),
        "pred_boxes": (batch, Q, 4),
        "pred_masks": (batch, Q, h, h),
        "presence_logits": (batch, 1),
        "semantic_seg": (batch, 1, h, h),
        "iou_scores": (batch, Q),
    }
    for name, shape in expected.items():
        value = getattr(out, name)
        assert tuple(value.shape) == shape, name
        assert torch.isfinite(value).all(), name


@pytest.mark.parametrize("kind", list(PROMPTS))
def test_forward_shapes(tiny_student: Student, tiny_inputs, kind: str) -> None:
    with torch.no_grad():
        out = tiny_student(tiny_inputs["pixel_values"], **prompt_kwargs(tiny_inputs, kind))
    check_outputs(out, batch=2, size=128)
    assert out.intermediates is None


def test_negative_boxes_change_the_prediction(tiny_student: Student, tiny_inputs) -> None:
    boxes = tiny_inputs["boxes"]
    with torch.no_grad():
        positive = tiny_student(
            tiny_inputs["pixel_values"], boxes=boxes, box_labels=torch.ones(2, 2, dtype=torch.long)
        )
        negative = tiny_student(
            tiny_inputs["pixel_values"], boxes=boxes, box_labels=torch.zeros(2, 2, dtype=torch.long)
        )
    check_outputs(negative, batch=2, size=128)
    assert not torch.allclose(positive.pred_logits, negative.pred_logits)


def test_padding_prompts_are_ignored(tiny_student: Student, tiny_inputs) -> None:
    boxes = tiny_inputs["boxes"].clone()
    kwargs = {"input_ids": tiny_inputs["input_ids"], "box_labels": tiny_inputs["box_labels"]}
    with torch.no_grad():
        reference = tiny_student(tiny_inputs["pixel_values"], boxes=boxes, **kwargs)
        boxes[0, 1] = torch.tensor([0.3, 0.3, 0.9, 0.7])  # the padded box (label -1) of image 0
        moved = tiny_student(tiny_inputs["pixel_values"], boxes=boxes, **kwargs)
    torch.testing.assert_close(moved.pred_logits, reference.pred_logits, atol=1e-6, rtol=0)
    torch.testing.assert_close(moved.pred_masks, reference.pred_masks, atol=1e-6, rtol=0)


def test_intermediates(tiny_student: Student, tiny_inputs) -> None:
    with torch.no_grad():
        out = tiny_student(
            tiny_inputs["pixel_values"], input_ids=tiny_inputs["input_ids"], return_intermediates=True
        )
    inter = out.intermediates
    assert [f.shape[-1] for f in inter.fpn_levels] == [32, 16, 8, 4]
    assert inter.encoder_memory.shape == (2, 8 * 8, HIDDEN)
    layers = TINY.detr.decoder_layers
    assert (
        len(inter.decoder_states) == len(inter.decoder_boxes) == len(inter.decoder_presence_logits) == layers
    )
    torch.testing.assert_close(inter.decoder_presence_logits[-1], out.presence_logits)
    assert inter.decoder_boxes[-1].shape == (2, Q, 4)


# Parameters a prompt kind does not use (prefixes of named_parameters); everything else must get
# a non-zero gradient.
UNUSED = {
    "text": ("prompt_encoder.", *MEMORY_MODULES),
    "boxes": ("text_encoder.", "prompt_encoder.point_proj.", *MEMORY_MODULES),
    "points": ("text_encoder.", "prompt_encoder.box_proj.", *MEMORY_MODULES),
}


@pytest.mark.parametrize("kind", list(UNUSED))
def test_backward_reaches_every_used_parameter(tiny_student: Student, tiny_inputs, kind: str) -> None:
    model = copy.deepcopy(tiny_student).train()
    # timm zero-initialises the last BN weight of each RepViT residual MLP, which (only at
    # initialisation) blocks the gradient to the convolutions before it.
    randomise_batch_norms(model)
    out = model(tiny_inputs["pixel_values"], **prompt_kwargs(tiny_inputs, kind))
    generator = torch.Generator().manual_seed(0)
    loss = sum(
        (t * torch.randn(t.shape, generator=generator)).sum()
        for t in (
            out.pred_logits,
            out.pred_boxes,
            out.pred_masks,
            out.presence_logits,
            out.semantic_seg,
            out.iou_scores,
        )
    )
    loss.backward()
    missing, unexpected = [], []
    for name, p in model.named_parameters():
        reached = p.grad is not None and bool(p.grad.abs().sum() > 0)
        if name.startswith(UNUSED[kind]):
            if reached:
                unexpected.append(name)
        elif not reached:
            missing.append(name)
    assert not missing, f"no gradient for {missing[:8]}"
    assert not unexpected, f"unexpected gradient for {unexpected[:8]}"


def test_memory_gate(tiny_student: Student, tiny_inputs) -> None:
    model = copy.deepcopy(tiny_student)
    ids = tiny_inputs["input_ids"]
    context = torch.randn(2, 3, HIDDEN, 4, 4)
    memory = model.encode_memory(context)
    assert memory.shape == (2, TINY.memory.num_latents, HIDDEN)
    assert model.encode_memory(torch.randn(2, 5, HIDDEN, 4, 4)).shape == memory.shape
    with torch.no_grad():
        without = model(tiny_inputs["pixel_values"], input_ids=ids)
        with_memory = model(tiny_inputs["pixel_values"], input_ids=ids, memory=memory)
    for name in ("pred_logits", "pred_boxes", "pred_masks", "presence_logits", "semantic_seg", "iou_scores"):
        assert torch.equal(getattr(without, name), getattr(with_memory, name)), name
    model.memory_attention.gate.data.fill_(0.5)
    out = model(tiny_inputs["pixel_values"], input_ids=ids, memory=model.encode_memory(context))
    assert not torch.allclose(out.pred_logits, without.pred_logits)
    out.pred_logits.sum().backward()
    for name, p in model.named_parameters():
        if name.startswith(MEMORY_MODULES):
            assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_component_modules_partition_parameters(tiny_student: Student) -> None:
    parts = tiny_student.component_modules()
    assert tuple(parts) == COMPONENTS
    owner: dict[int, str] = {}
    for part, module in parts.items():
        for p in module.parameters():
            assert id(p) not in owner, f"parameter in both {owner[id(p)]} and {part}"
            owner[id(p)] = part
    assert set(owner) == {id(p) for p in tiny_student.parameters()}
    counts = tiny_student.parameter_counts()
    assert counts["total"] == sum(counts[name] for name in COMPONENTS)


def test_reparameterized_student_runs(tiny_student: Student, tiny_inputs) -> None:
    model = copy.deepcopy(tiny_student).reparameterize()
    with torch.no_grad():
        check_outputs(
            model(tiny_inputs["pixel_values"], input_ids=tiny_inputs["input_ids"]), batch=2, size=128
        )


def _bad_box(value: list[float]) -> dict[str, torch.Tensor]:
    return {"boxes": torch.tensor([[value]] * 2)}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({}, "empty prompt"),
        ({"boxes": torch.tensor([[[0.1, 0.1, 1.5, 0.5]]] * 2)}, r"\[0, 1\]"),
        ({"boxes": torch.tensor([[[0.1, float("nan"), 0.5, 0.5]]] * 2)}, "non-finite"),
        ({"boxes": torch.tensor([[[0.6, 0.1, 0.5, 0.5]]] * 2)}, "xyxy"),
        (
            {"boxes": torch.tensor([[[0.1, 0.1, 0.5, 0.5]]] * 2), "box_labels": torch.tensor([[2], [1]])},
            "labels",
        ),
        ({"boxes": torch.tensor([[0.1, 0.1, 0.5, 0.5]] * 2)}, r"\[B=2, N, 4\]"),
        ({"points": torch.tensor([[[-0.1, 0.5]]] * 2)}, r"\[0, 1\]"),
        ({"input_ids": torch.ones(2, 40, dtype=torch.long)}, "context length"),
        ({"input_ids": torch.ones(2, 8)}, "integer"),
    ],
)
def test_invalid_prompts_raise(tiny_student: Student, tiny_inputs, change, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        tiny_student(tiny_inputs["pixel_values"], **change)


@pytest.mark.parametrize(
    ("image", "message"),
    [
        (torch.randn(1, 1, 64, 64), "3 channels"),
        (torch.zeros(1, 3, 64, 64, dtype=torch.uint8), "float"),
        (torch.randn(3, 64, 64), r"\[B, 3, H, W\]"),
    ],
)
def test_invalid_images_raise(tiny_student: Student, tiny_inputs, image: torch.Tensor, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        tiny_student(image, input_ids=tiny_inputs["input_ids"][:1])


def test_padded_box_may_hold_any_filler(tiny_student: Student, tiny_inputs) -> None:
    boxes = torch.tensor([[[0.1, 0.1, 0.5, 0.5], [-5.0, float("nan"), 0.0, 0.0]]] * 2)
    labels = torch.tensor([[1, -1]] * 2)
    with torch.no_grad():
        out = tiny_student(tiny_inputs["pixel_values"], boxes=boxes, box_labels=labels)
    assert torch.isfinite(out.pred_logits).all()


def test_build_student_is_the_builders_and_the_package_names_it() -> None:
    import sam3spec
    from sam3spec.models import build as build_module

    assert sam3spec.build_student is build_module.build_student and build_module.build_student.__doc__
