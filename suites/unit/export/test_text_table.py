"""The concept-world vocabulary and the text table file."""

from __future__ import annotations

import pytest
import torch

from sam3spec.export.text_table import TextTable
from sam3spec.world.phrases import all_phrases


def test_concept_world_vocabulary():
    phrases = all_phrases()
    assert len(phrases) == len(set(phrases))
    assert {"circle", "red circle", "large red circle", "red shape", "small star"} <= set(phrases)
    assert "shape" not in phrases
    # 7 shapes + 7 x 7 colour-shape + 2 x 7 x 7 size-colour-shape + 7 colours + 2 x 7 size-shape
    assert len(phrases) == 7 + 49 + 98 + 7 + 14


def test_round_trip_and_lookup(tmp_path):
    ids = torch.tensor([[1, 2, 0], [1, 3, 0]])
    table = TextTable(["a", "b"], ids, torch.randn(2, 3, 4), ids == 0, "tiny")
    loaded = TextTable.load(table.save(tmp_path / "t.safetensors"))
    assert loaded.phrases == ["a", "b"] and loaded.preset == "tiny"
    tokens, mask = loaded.lookup(torch.tensor([1, 3, 0]))
    torch.testing.assert_close(tokens, table.tokens[1].half().float())
    assert mask.tolist() == [False, False, True]
    assert loaded.lookup(torch.tensor([9, 9, 9])) is None
    with pytest.raises(KeyError, match="not in the text table"):
        loaded.get("c")
