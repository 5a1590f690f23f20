"""The teacher's word-alignment loss: per-cell attribute labels and the loss by hand."""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from sam3spec.world import WorldConfig
from sam3spec.world.teacher.data import IGNORE, WorldImage, attribute_labels
from sam3spec.world.teacher.losses import WordAlignment, word_alignment_loss
from sam3spec.world.teacher.train import attribute_vocabularies


def _image() -> WorldImage:
    masks = np.zeros((3, 8, 8), dtype=bool)
    masks[0, :4, :4] = True  # large red circle (top left)
    masks[1, 4:, 4:] = True  # small red ring (bottom right)
    masks[2, :4, 4:6] = True  # large blue circle (top right, half of each 4x4 cell's width)
    return WorldImage(
        image=np.zeros((8, 8, 3), np.uint8),
        texts=[],
        instances=[],
        object_masks=masks,
        object_words=[("large", "red", "circle"), ("small", "red", "ring"), ("large", "blue", "circle")],
    )


def test_labels_name_the_attribute_of_the_object_covering_a_cell() -> None:
    colours = ["red", "green", "blue"]
    labels = attribute_labels(_image(), colours, 2)  # 4x4-pixel cells
    assert labels.tolist() == [[0, IGNORE], [IGNORE, 0]]  # blue covers exactly half its cell: not more
    assert attribute_labels(_image(), colours, 4).tolist()[0] == [0, 0, 2, IGNORE]
    assert attribute_labels(_image(), ["small", "large"], 2).tolist() == [[1, IGNORE], [IGNORE, 0]]


def test_vocabularies_never_name_a_held_out_pair() -> None:
    world = WorldConfig()
    vocabularies = attribute_vocabularies(world)
    assert vocabularies["colour"][0] == list(world.colours) and vocabularies["shape"][0] == list(world.shapes)
    for words, phrases in vocabularies.values():
        assert len(words) == len(phrases)
        for phrase in phrases:  # one attribute each: "red shape", "circle", "large shape"
            assert len([w for w in phrase.split() if w != "shape"]) == 1


def test_alignment_loss_by_hand() -> None:
    aligner = WordAlignment(scale=2.0)
    image = torch.tensor([[[[1.0, 0.0]], [[0.0, 1.0]]]])  # [1, C=2, 1, 2]: cell 0 = e0, cell 1 = e1
    words = torch.tensor([[[3.0, 0.0], [0.0, 0.5]]])  # word 0 along e0, word 1 along e1
    logits = aligner(image, words)
    assert torch.allclose(logits[0, :, 0], torch.tensor([[2.0, 0.0], [0.0, 2.0]]))
    labels = torch.tensor([[[0, IGNORE]]])  # cell 0 is word 0, cell 1 ignored
    expected = -math.log(math.exp(2.0) / (math.exp(2.0) + 1.0))
    assert math.isclose(float(word_alignment_loss(logits, labels)), expected, rel_tol=1e-6)
    assert float(word_alignment_loss(logits, torch.full_like(labels, IGNORE))) == 0.0


def test_a_direction_all_words_share_gets_no_gradient() -> None:
    image = F.normalize(torch.randn(2, 4, 3, 3), dim=1)
    words = torch.randn(2, 5, 4)
    labels = torch.randint(0, 5, (2, 3, 3))
    logits = torch.einsum("nkc,nchw->nkhw", words, image)
    base = word_alignment_loss(logits, labels)
    moved = word_alignment_loss(logits + 3.0, labels)  # the same offset on every word
    assert torch.isclose(base, moved)  # what all words share cannot lower the loss
