"""The offline tokenizer gives open_clip's ids, truncated to 32 tokens with the end token kept."""

from __future__ import annotations

import pytest
import torch

from sam3spec.teacher.tokenizer import (
    CONTEXT_LENGTH,
    VOCAB_SIZE,
    Sam3Tokenizer,
    clip_vocabulary,
    write_clip_tokenizer_files,
)

PROMPTS = [
    "red circle",
    "large blue star",
    "Crème brûlée on a café table, naïve façade",
    "ÉCOLE  très   élevé",
    "e\u0301cole (decomposed accent)",
    "a dog!!! (running)... fast?",
    "don't stop—it's 3.5 km/h; x@y #tag & <b>bold</b>",
    "日本語のテキスト",
    " ".join(["word"] * 40),
    "the quick brown fox jumps over the lazy dog " * 4,
    "",
    "a  b\tc\nd",
]


@pytest.fixture(scope="module")
def tokenizer() -> Sam3Tokenizer:
    return Sam3Tokenizer()


@pytest.fixture(scope="module")
def reference():
    open_clip = pytest.importorskip("open_clip")
    return open_clip.get_tokenizer("ViT-B-32")


def test_vocabulary_is_clips() -> None:
    vocab, merges = clip_vocabulary()
    assert len(vocab) == VOCAB_SIZE
    assert vocab["<|startoftext|>"] == 49406 and vocab["<|endoftext|>"] == 49407
    assert len(merges) == 49152 - 256 - 2


def test_ids_equal_open_clip(tokenizer: Sam3Tokenizer, reference) -> None:
    batch = tokenizer(PROMPTS)
    expected = reference(PROMPTS, context_length=CONTEXT_LENGTH)
    # open_clip pads with 0, the hub tokenizer with the end token: compare where the mask is on.
    ours = torch.where(
        batch["attention_mask"].bool(), batch["input_ids"], torch.zeros_like(batch["input_ids"])
    )
    for row, prompt in enumerate(PROMPTS):
        assert ours[row].tolist() == expected[row].tolist(), prompt
    assert (batch["attention_mask"].sum(1) == (expected != 0).sum(1)).all()


def test_truncates_with_end_token_last(tokenizer: Sam3Tokenizer) -> None:
    batch = tokenizer(" ".join(["word"] * 40))
    assert batch["input_ids"].shape == (1, CONTEXT_LENGTH)
    assert batch["attention_mask"].all()
    assert batch["input_ids"][0, 0] == tokenizer.start_id and batch["input_ids"][0, -1] == tokenizer.end_id


def test_files_round_trip(tokenizer: Sam3Tokenizer, tmp_path) -> None:
    write_clip_tokenizer_files(tmp_path)
    from_files = Sam3Tokenizer(tmp_path)
    assert torch.equal(from_files(PROMPTS)["input_ids"], tokenizer(PROMPTS)["input_ids"])
