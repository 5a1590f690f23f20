"""The HF adapter on a tiny random Sam3Model / Sam3TrackerModel: prompts, shapes, intermediates,
cached image embeddings (equal to a full forward within 1e-5)."""

from __future__ import annotations

import pytest
import torch

from sam3spec.models.outputs import Sam3Outputs
from sam3spec.teacher.architecture import TINY
from sam3spec.teacher.protocol import ImageEmbeddings, Teacher

TOLERANCE = 1e-5  # the spec teacher.adapter.cached_embeddings_diff
GRID = TINY.grid
BOXES = torch.tensor([[[0.1, 0.2, 0.5, 0.6]], [[0.3, 0.3, 0.9, 0.8]]])
POINTS = torch.tensor([[[0.25, 0.5]], [[0.7, 0.4]]])


def _check_shapes(outputs: Sam3Outputs, queries: int) -> None:
    assert outputs.pred_logits.shape == (2, queries)
    assert outputs.pred_boxes.shape == (2, queries, 4)
    assert outputs.pred_masks.shape == (2, queries, TINY.mask_size, TINY.mask_size)
    assert outputs.presence_logits.shape == (2, 1)
    assert outputs.semantic_seg.shape == (2, 1, TINY.mask_size, TINY.mask_size)
    assert outputs.scores().shape == (2, queries)


def test_is_a_teacher(tiny_teacher) -> None:
    assert isinstance(tiny_teacher, Teacher)
    assert tiny_teacher.image_size == TINY.image_size and tiny_teacher.dtype == torch.float32


def test_preprocess_resizes_and_normalises(tiny_teacher, pixels) -> None:
    values = tiny_teacher.preprocess(pixels)
    assert values.shape == (2, 3, TINY.image_size, TINY.image_size)
    assert -1.0 <= float(values.min()) and float(values.max()) <= 1.0


@pytest.mark.parametrize(
    "prompt",
    [
        {"text": ["red circle", "blue star"]},
        {"boxes": BOXES},
        {"text": "red circle", "boxes": BOXES, "box_labels": torch.tensor([[1], [0]])},
    ],
    ids=["text", "box", "text+box"],
)
def test_detector_prompts(tiny_teacher, pixels, prompt) -> None:
    embeddings = tiny_teacher.encode_image(tiny_teacher.preprocess(pixels))
    _check_shapes(tiny_teacher.predict(embeddings, **prompt), TINY.num_queries)


@pytest.mark.parametrize("with_box", [False, True], ids=["point", "point+box"])
def test_point_prompts_go_to_the_tracker(tiny_teacher, pixels, with_box) -> None:
    embeddings = tiny_teacher.encode_image(tiny_teacher.preprocess(pixels))
    outputs = tiny_teacher.predict(embeddings, points=POINTS, boxes=BOXES if with_box else None)
    _check_shapes(outputs, 3)  # SAM's three candidate masks
    assert outputs.iou_scores.shape == (2, 3)


def test_intermediates_have_the_documented_shapes(tiny_teacher, pixels) -> None:
    embeddings = tiny_teacher.encode_image(tiny_teacher.preprocess(pixels))
    outputs = tiny_teacher.predict(embeddings, text="red circle", return_intermediates=True)
    inter = outputs.intermediates
    sizes = [4 * GRID, 2 * GRID, GRID, GRID // 2]
    assert [tuple(level.shape) for level in inter.fpn_levels] == [(2, TINY.hidden, s, s) for s in sizes]
    assert inter.encoder_memory.shape == (2, GRID * GRID, TINY.hidden)
    layers = TINY.detr_decoder_layers
    assert (
        len(inter.decoder_states) == len(inter.decoder_boxes) == len(inter.decoder_presence_logits) == layers
    )
    assert all(state.shape == (2, TINY.num_queries, TINY.hidden) for state in inter.decoder_states)
    assert all(presence.shape == (2, 1) for presence in inter.decoder_presence_logits)
    cx, cy, w, h = inter.decoder_boxes[-1].unbind(-1)  # cxcywh; the last layer is pred_boxes (xyxy)
    assert torch.allclose(
        torch.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], -1), outputs.pred_boxes
    )
    assert torch.equal(inter.decoder_presence_logits[-1], outputs.presence_logits)
    # text tokens as the encoder reads them: SOT, "red", "circle", EOT are real, the rest padding
    assert inter.text_features.shape == (2, 32, TINY.hidden)
    assert inter.text_valid.tolist() == [[True] * 4 + [False] * 28] * 2


def test_cached_embeddings_equal_a_full_forward(tiny_teacher, pixels) -> None:
    values = tiny_teacher.preprocess(pixels)
    texts = ["red circle", "large blue star"]
    tokens = tiny_teacher.tokenizer(texts)
    with torch.no_grad():
        full = tiny_teacher.detector(pixel_values=values, **tokens)
    cached = tiny_teacher.predict(tiny_teacher.encode_image(values), text=texts)
    for name in ("pred_logits", "pred_boxes", "pred_masks", "presence_logits", "semantic_seg"):
        assert (getattr(full, name) - getattr(cached, name)).abs().max() <= TOLERANCE, name


def test_cached_tracker_embeddings_equal_a_full_forward(tiny_teacher, pixels) -> None:
    values = tiny_teacher.preprocess(pixels)
    with torch.no_grad():
        full = tiny_teacher.tracker(
            pixel_values=values,
            input_points=(POINTS * TINY.image_size)[:, None],
            input_labels=torch.ones(2, 1, 1, dtype=torch.long),
        )
    cached = tiny_teacher.predict(tiny_teacher.encode_image(values), points=POINTS)
    assert (full.pred_masks[:, 0] - cached.pred_masks).abs().max() <= TOLERANCE
    assert (full.object_score_logits[:, 0] - cached.presence_logits).abs().max() <= TOLERANCE


def test_one_encoding_serves_many_prompts(tiny_teacher, pixels) -> None:
    values = tiny_teacher.preprocess(pixels[:1])
    embeddings = tiny_teacher.encode_image(values)
    texts = ["red circle", "square", "small green shape"]
    batched = tiny_teacher.predict(embeddings.select(torch.zeros(3, dtype=torch.long)), text=texts)
    for row, text in enumerate(texts):
        alone = tiny_teacher.predict(tiny_teacher.encode_image(values), text=text)
        assert (alone.pred_masks[0] - batched.pred_masks[row]).abs().max() <= TOLERANCE


def test_select_repeats_rows(tiny_teacher, pixels) -> None:
    embeddings = tiny_teacher.encode_image(tiny_teacher.preprocess(pixels))
    picked = embeddings.select(torch.tensor([1, 1, 0]))
    assert isinstance(picked, ImageEmbeddings) and picked.batch_size == 3
    assert torch.equal(picked.fpn_levels[0][2], embeddings.fpn_levels[0][0])


def test_prompt_errors(tiny_teacher, pixels) -> None:
    embeddings = tiny_teacher.encode_image(tiny_teacher.preprocess(pixels))
    with pytest.raises(ValueError, match="give a prompt"):
        tiny_teacher.predict(embeddings)
    with pytest.raises(ValueError, match="3 texts for 2"):
        tiny_teacher.predict(embeddings, text=["a", "b", "c"])
    with pytest.raises(ValueError, match="intermediates"):
        tiny_teacher.predict(embeddings, points=POINTS, return_intermediates=True)


def test_other_resolution(tiny_teacher_dir, pixels) -> None:
    from sam3spec.teacher.loading import load_teacher

    teacher = load_teacher(tiny_teacher_dir, dtype=torch.float32, resolution=2 * TINY.image_size)
    embeddings = teacher.encode_image(teacher.preprocess(pixels))
    outputs = teacher.predict(embeddings, text="red circle")
    assert outputs.pred_masks.shape[-1] == 2 * TINY.mask_size
    assert teacher.predict(embeddings, points=POINTS).pred_masks.shape[-1] == 2 * TINY.mask_size


def test_random_teacher_without_an_architecture_is_sam3s() -> None:
    """SAM 3's published shape (transformers' default config), built where the default device says:
    on the meta device here, so 840M parameters cost no memory."""
    from sam3spec.teacher.hf_adapter import random_teacher

    teacher = random_teacher(device="meta", dtype=torch.bfloat16)
    assert teacher.image_size == 1008 and teacher.tracker is None and teacher.dtype == torch.bfloat16
    assert sum(p.numel() for p in teacher.detector.parameters()) == 840_376_374
    assert not any(p.requires_grad for p in teacher.detector.parameters())
