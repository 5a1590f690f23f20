"""The teacher's word-alignment loss: per-word dense targets and the loss by hand."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from sam3spec.teacher.tokenizer import default_tokenizer
from sam3spec.teacher.world_data import WorldImage, word_map, word_positions
from sam3spec.teacher.world_losses import WordAlignment, dice_loss, word_alignment_loss


def _image() -> WorldImage:
    masks = np.zeros((3, 8, 8), dtype=bool)
    masks[0, :4, :4] = True  # large red circle (top left)
    masks[1, 4:, 4:] = True  # small red ring (bottom right)
    masks[2, :4, 4:] = True  # large blue circle (top right)
    return WorldImage(
        image=np.zeros((8, 8, 3), np.uint8),
        texts=[],
        instances=[],
        object_masks=masks,
        object_words=[("large", "red", "circle"), ("small", "red", "ring"), ("large", "blue", "circle")],
    )


def _split(word: str) -> list[int]:
    return default_tokenizer().encode(word)[1:-1]


def _area(mask: np.ndarray, size: int) -> torch.Tensor:
    return F.interpolate(torch.from_numpy(mask).float()[None, None], size, mode="area")[0, 0]


def test_each_word_names_every_object_that_has_it() -> None:
    image = _image()
    assert torch.equal(word_map(image, "red", 4), _area(image.object_masks[[0, 1]].any(0), 4))
    assert torch.equal(word_map(image, "circle", 4), _area(image.object_masks[[0, 2]].any(0), 4))
    assert torch.equal(word_map(image, "large", 8), torch.from_numpy(image.object_masks[[0, 2]].any(0)).float())


def test_generic_noun_names_every_object_and_absent_words_name_nothing() -> None:
    image = _image()
    assert word_map(image, "green", 8).sum() == 0
    assert torch.equal(word_map(image, "shape", 8), torch.from_numpy(image.object_masks.any(0)).float())


def test_word_positions_follow_the_tokens() -> None:
    tokenizer = default_tokenizer()
    ids = tokenizer(["large cyan ring"])["input_ids"][0].tolist()
    cyan = _split("cyan")
    assert len(cyan) == 2  # a two-token word: both tokens get the word
    assert word_positions("large cyan ring", ids, _split) == [(1, "large"), (2, "cyan"), (3, "cyan"), (4, "ring")]
    with pytest.raises(ValueError, match="not at token"):
        word_positions("red circle", [49406, 1, 2, 49407], _split)


def test_alignment_loss_by_hand() -> None:
    aligner = WordAlignment(scale=2.0, bias=-1.0)
    image = torch.tensor([[[[1.0, 0.0]], [[0.0, 1.0]]]])  # [1, C=2, 1, 2]: pixel 0 = e0, pixel 1 = e1
    text = torch.tensor([[[3.0, 0.0], [0.0, 0.0]]])  # token 0 = e0 direction, token 1 = padding
    logits = aligner(image, text)
    assert torch.allclose(logits[0, 0, 0], torch.tensor([1.0, -1.0]))  # cos 1 -> 2 - 1, cos 0 -> -1
    targets = torch.tensor([[[[1.0, 0.0]], [[1.0, 1.0]]]])
    valid = torch.tensor([[True, False]])
    loss = word_alignment_loss(logits, targets, valid)
    chosen = torch.tensor([[[1.0, -1.0]]])
    expected = F.binary_cross_entropy_with_logits(chosen, targets[:, 0]) + dice_loss(chosen, targets[:, 0]).mean()
    assert torch.allclose(loss, expected)


def test_alignment_gradient_reaches_both_towers_and_skips_invalid_tokens() -> None:
    aligner = WordAlignment()
    image = torch.randn(2, 4, 3, 3, requires_grad=True)
    text = torch.randn(2, 5, 4, requires_grad=True)
    valid = torch.zeros(2, 5, dtype=torch.bool)
    valid[:, 1] = True
    word_alignment_loss(aligner(image, text), torch.rand(2, 5, 3, 3), valid).backward()
    assert image.grad.abs().sum() > 0 and text.grad[:, 1].abs().sum() > 0
    assert text.grad[:, [0, 2, 3, 4]].abs().sum() == 0
