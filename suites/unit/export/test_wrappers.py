"""The export wrappers compute what the eager student computes (fixed, padded shapes)."""

from __future__ import annotations

import pytest
import torch

from sam3spec.export.wrappers import (
    METHODS,
    OUTPUT_NAMES,
    ExportShapes,
    example_inputs,
    level_side,
    padded_prompt,
)

POINT, BOX = [[0.4, 0.5]], [[0.2, 0.2, 0.7, 0.8]]


def student_outputs(student, pixels, ids, memory=None):
    with torch.no_grad():
        outputs = student(
            pixels, input_ids=ids, points=torch.tensor([POINT]), boxes=torch.tensor([BOX]), memory=memory
        )
    return [getattr(outputs, name) for name in OUTPUT_NAMES]


def assert_close(actual, expected, atol=1e-4):
    for a, b in zip(actual, expected, strict=True):
        torch.testing.assert_close(a, b, atol=atol, rtol=1e-4)


@pytest.mark.parametrize("which", ["modules", "plain_modules"])
def test_decode_chain_equals_student(request, tiny_student, which):
    modules = request.getfixturevalue(which)
    (pixels,), (ids,) = example_inputs(modules, "encode_image"), example_inputs(modules, "encode_text")
    with torch.no_grad():
        levels = modules.encode_image(pixels)
        text = modules.encode_text(ids)
        outputs = modules.decode(*levels, *text, *padded_prompt(modules.shapes, points=POINT, boxes=BOX))
    assert_close(outputs, student_outputs(tiny_student, pixels, ids))


def test_text_rewrite_is_exact(tiny_student, modules):
    (ids,) = example_inputs(modules, "encode_text")
    with torch.no_grad():
        reference_tokens, reference_mask = tiny_student.text_encoder(ids)
        tokens, mask = modules.encode_text(ids)
    torch.testing.assert_close(tokens, reference_tokens, atol=2e-5, rtol=1e-5)
    assert torch.equal(mask, reference_mask)
    assert not any(isinstance(m, torch.nn.MultiheadAttention) for m in modules.encode_text.modules())


def test_track_equals_student_with_memory_of_valid_frames(tiny_student, modules):
    inputs = example_inputs(modules, "track")
    pixels, context, valid = inputs[0], inputs[-2], inputs[-1]
    (ids,) = example_inputs(modules, "encode_text")
    with torch.no_grad():
        outputs = modules.track(*inputs)
        memory = tiny_student.encode_memory(context[:, valid[0]])
    assert_close(outputs[:6], student_outputs(tiny_student, pixels, ids, memory))
    new_context, new_valid = outputs[6], outputs[7]
    assert torch.equal(new_context[:, :-1], context[:, 1:])
    assert new_valid[0].tolist() == valid[0, 1:].tolist() + [True]


def test_padding_slots_and_errors():
    shapes = ExportShapes(128, 32, max_points=2, max_boxes=1)
    points, point_labels, boxes, box_labels = padded_prompt(shapes, points=[[0.1, 0.2]], point_labels=[0])
    assert points.shape == (1, 2, 2) and point_labels.tolist() == [[0, -1]]
    assert boxes.shape == (1, 1, 4) and box_labels.tolist() == [[-1]]
    with pytest.raises(ValueError, match="2 slots"):
        padded_prompt(shapes, points=[[0.1, 0.1], [0.2, 0.2], [0.3, 0.3]])


def test_level_side_matches_the_backbone(modules):
    (pixels,) = example_inputs(modules, "encode_image")
    with torch.no_grad():
        levels = modules.encode_image(pixels)
    assert [level.shape[-1] for level in levels] == [level_side(pixels.shape[-1], i) for i in range(4)]
    assert level_side(504, 3) == 16 and level_side(504, 1) == 63


def test_wrappers_hold_only_their_parts(modules):
    counts = {name: sum(p.numel() for p in getattr(modules, name).parameters()) for name in METHODS}
    text = sum(p.numel() for p in modules.student.text_encoder.parameters())
    assert counts["decode"] < text and counts["track"] < counts["decode"] + text


def test_world_student_exports_decode(tiny_student):
    """The mask box prior and the x2 mask upsampling (the concept-world stages' students) trace
    into ``decode``: the exported program equals the eager student, masks at twice the grid."""
    from sam3spec.config import override
    from sam3spec.export.lowering import export_methods
    from sam3spec.export.wrappers import export_modules
    from sam3spec.models.build import build_student

    student = build_student(
        override(tiny_student.config, {"mask_box_prior": 30.0, "mask_upsample": 2})
    ).eval()
    student.load_state_dict(tiny_student.state_dict())
    modules = export_modules(student)
    (pixels,), (ids,) = example_inputs(modules, "encode_image"), example_inputs(modules, "encode_text")
    prompt = padded_prompt(modules.shapes, points=POINT, boxes=BOX)
    with torch.no_grad():
        levels, text = modules.encode_image(pixels), modules.encode_text(ids)
        program = export_methods(modules, ["decode"])["decode"].module()
        exported = program(*levels, *text, *prompt)
    expected = student_outputs(student, pixels, ids)
    assert_close(exported, expected)
    plain = student_outputs(tiny_student, pixels, ids)
    masks = OUTPUT_NAMES.index("pred_masks")
    assert expected[masks].shape[-2:] == tuple(2 * side for side in plain[masks].shape[-2:])
    upsampled = torch.nn.functional.interpolate(
        plain[masks], scale_factor=2, mode="bilinear", align_corners=False
    )
    assert not torch.allclose(expected[masks], upsampled)  # the prior did change the masks
