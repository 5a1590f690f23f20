"""The text table file: round trip and lookup."""

from __future__ import annotations

import pytest
import torch

from sam3spec.export.text_table import TextTable


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
