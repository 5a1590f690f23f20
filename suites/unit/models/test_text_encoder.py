"""Text encoder, tokenizer and loading an open_clip text tower from a local file."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import save_file

from sam3spec.config import TINY_PRESET, get_preset
from sam3spec.models.text_encoder import PAD_TOKEN_ID, Tokenizer, build_text_tower, load_text_weights

TINY = get_preset(TINY_PRESET)


def test_tokenizer_shape_and_padding(tokenizer: Tokenizer) -> None:
    ids = tokenizer(["red car", "a very long prompt " * 20])
    assert ids.shape == (2, 32) and ids.dtype == torch.long
    assert ids[0, 0] == 49406 and (ids[0, 4:] == PAD_TOKEN_ID).all()
    assert ids[1, -1] == 49407  # truncated, end token kept
    assert tokenizer("red car").shape == (1, 32)


@pytest.mark.parametrize("bad", ["", "   ", ["ok", "\t"], []])
def test_tokenizer_rejects_empty(tokenizer: Tokenizer, bad) -> None:
    with pytest.raises(ValueError, match="empty prompt"):
        tokenizer(bad)


def test_text_encoder_tokens_and_mask(tiny_student, tokenizer: Tokenizer) -> None:
    ids = tokenizer(["red circle"])
    tokens, mask = tiny_student.text_encoder(ids)
    assert tokens.shape == (1, 32, TINY.hidden)
    assert mask.tolist() == [[False] * 4 + [True] * 28]


def _fake_open_clip_checkpoint(tower, prefix: str) -> dict[str, torch.Tensor]:
    state = {f"{prefix}{k}": v.clone() for k, v in tower.state_dict().items()}
    positions = state[f"{prefix}positional_embedding"]
    state[f"{prefix}positional_embedding"] = torch.cat(
        [positions, torch.randn(77 - positions.shape[0], positions.shape[1])]
    )
    state[f"{prefix}text_projection"] = torch.randn(TINY.text.width, 512)
    state["visual.trunk.stem.weight"] = torch.randn(3)
    state["logit_scale"] = torch.ones(())
    return state


@pytest.mark.parametrize("prefix", ["text.", ""])  # MobileCLIP ("custom text") and classic CLIP layouts
def test_load_text_weights(tmp_path, prefix: str) -> None:
    torch.manual_seed(0)
    source = build_text_tower(TINY.text)
    path = tmp_path / "open_clip.safetensors"
    save_file(_fake_open_clip_checkpoint(source, prefix), str(path))
    torch.manual_seed(1)
    tower = build_text_tower(TINY.text)
    report = load_text_weights(tower, path)
    assert report.missing == [] and report.unexpected == []
    assert sorted(report.ignored) == sorted(
        [f"{prefix}text_projection", "visual.trunk.stem.weight", "logit_scale"]
    )
    assert report.adapted == ["positional_embedding truncated 77 -> 32"]
    for key, value in source.state_dict().items():
        torch.testing.assert_close(tower.state_dict()[key], value)
    assert "loaded" in str(report)


def test_tokenizer_from_config() -> None:
    tokenizer = Tokenizer(TINY.text)
    assert tokenizer.context_length == TINY.text.context_length
    assert Tokenizer.from_config(TINY.text)("red car").shape == (1, TINY.text.context_length)
