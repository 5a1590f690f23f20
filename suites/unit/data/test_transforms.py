"""Resize / pad with masks and boxes kept consistent; normalisation; box formats."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from sam3spec.data.transforms import (
    STUDENT,
    TEACHER,
    Normalization,
    ResizeNormalize,
    TransformConfig,
    boxes_from_masks,
    cxcywh_to_xyxy,
    denormalize,
    normalize,
    xywh_to_xyxy,
    xyxy_to_cxcywh,
)


def _sample(height: int, width: int) -> dict:
    masks = torch.zeros(2, height, width, dtype=torch.bool)
    masks[0, height // 4 : height // 2, width // 5 : width // 2] = True
    masks[1, height // 2 :, width // 2 :] = True
    image = torch.randint(0, 256, (3, height, width), dtype=torch.uint8)
    return {"image": image, "masks": masks, "boxes_xyxy": boxes_from_masks(masks), "phrase": "x"}


@pytest.mark.parametrize("mode", ["letterbox", "stretch"])
@pytest.mark.parametrize("size", [(60, 100), (100, 60), (64, 64)])
def test_masks_and_boxes_stay_consistent(mode, size):
    out = ResizeNormalize(TransformConfig(size=128, mode=mode))(_sample(*size))
    assert out["image"].shape == (3, 128, 128) and out["image"].dtype == torch.float32
    assert out["masks"].shape == (2, 128, 128) and out["phrase"] == "x"
    # Boxes rescaled analytically agree with the boxes of the resized masks within a pixel.
    torch.testing.assert_close(out["boxes_xyxy"], boxes_from_masks(out["masks"]), atol=1.01 / 128, rtol=0)
    h, w = out["valid_size"]
    if mode == "letterbox":
        assert max(h, w) == 128
        assert not out["masks"][:, h:, :].any() and not out["masks"][:, :, w:].any()
        assert torch.all(out["image"][:, h:, :] == 0) and torch.all(out["image"][:, :, w:] == 0)
    else:
        assert (h, w) == (128, 128)


def test_identity_size_keeps_masks_exact():
    sample = _sample(32, 32)
    out = ResizeNormalize(TransformConfig(size=32, normalization=Normalization.CLIP))(sample)
    assert torch.equal(out["masks"], sample["masks"])
    restored = denormalize(out["image"], Normalization.CLIP) * 255
    torch.testing.assert_close(restored, sample["image"].float(), atol=1e-3, rtol=0)


def test_clips_are_transformed_frame_by_frame():
    frames = torch.randint(0, 256, (3, 3, 40, 20), dtype=torch.uint8)
    masks = torch.zeros(3, 2, 40, 20, dtype=torch.bool)
    masks[:, 0, 10:20, 5:10] = True
    out = ResizeNormalize(TransformConfig(size=64))(
        {"frames": frames, "masks": masks, "boxes_xyxy": boxes_from_masks(masks)}
    )
    assert out["frames"].shape == (3, 3, 64, 64) and out["masks"].shape == (3, 2, 64, 64)
    assert out["boxes_xyxy"].shape == (3, 2, 4) and out["valid_size"] == (64, 32)


def test_normalisation_constants():
    assert Normalization.IMAGENET.mean == (0.485, 0.456, 0.406)
    assert Normalization.CLIP.std[0] == pytest.approx(0.26862954)
    assert Normalization.SAM3.mean == (0.5, 0.5, 0.5)  # what transformers' Sam3ImageProcessor uses
    assert STUDENT.normalization is Normalization.IMAGENET and TEACHER.normalization is Normalization.SAM3
    assert TEACHER.mode == "stretch" and TEACHER.size == 1008
    ones = torch.ones(3, 2, 2)
    torch.testing.assert_close(normalize(ones, Normalization.SAM3), ones)
    with pytest.raises(ValueError):
        TransformConfig(mode="crop")


boxes = st.tuples(*[st.floats(0, 1, allow_nan=False) for _ in range(4)]).map(
    lambda v: torch.tensor([min(v[0], v[2]), min(v[1], v[3]), max(v[0], v[2]), max(v[1], v[3])])
)


@settings(max_examples=100, deadline=None)
@given(boxes)
def test_box_format_round_trips(box):
    torch.testing.assert_close(cxcywh_to_xyxy(xyxy_to_cxcywh(box)), box, atol=1e-6, rtol=0)
    x0, y0, x1, y1 = box.tolist()
    torch.testing.assert_close(xywh_to_xyxy(torch.tensor([x0, y0, x1 - x0, y1 - y0])), box, atol=1e-6, rtol=0)


def test_boxes_from_masks_uses_pixel_edges():
    masks = torch.zeros(2, 4, 8, dtype=torch.bool)
    masks[0, 1, 2] = True
    boxes = boxes_from_masks(masks)
    torch.testing.assert_close(boxes[0], torch.tensor([2 / 8, 1 / 4, 3 / 8, 2 / 4]))
    assert torch.equal(boxes[1], torch.zeros(4))
