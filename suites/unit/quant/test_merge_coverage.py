"""Coverage of a pruned CLIP merge list: ids kept below the cut, every string still encodable."""

from __future__ import annotations

import pytest

pytest.importorskip("open_clip")

from sam3spec.quant.merge_coverage import (  # noqa: E402
    BYTE_SYMBOLS,
    FULL_MERGES,
    merge_coverage,
    pruned_tokenizer,
)

PHRASES = ["a", "dog", "traffic light", "hot-air balloon", "a dog", "zucchini", "  ", "dog"]


def test_full_list_changes_nothing_and_counts_distinct_phrases():
    (full,) = merge_coverage(PHRASES, [FULL_MERGES])
    assert full.phrases == 6  # blank and repeated phrases dropped
    assert full.unchanged == 6 and full.share == 1.0
    assert full.tokens_pruned == full.tokens_full
    assert full.rows == 49_408


def test_no_merges_spells_everything_with_byte_symbols():
    tokenizer = pruned_tokenizer(0)
    ids = tokenizer.encode("traffic light")
    assert ids and max(ids) < BYTE_SYMBOLS
    assert tokenizer.decode(ids).strip() == "traffic light"
    (none,) = merge_coverage(PHRASES, [0])
    assert none.rows == BYTE_SYMBOLS + 2
    assert none.tokens_pruned > none.tokens_full
    assert 0 < none.unchanged < none.phrases  # "a" is one byte symbol either way; "dog" is not


def test_ids_below_the_cut_are_the_full_lists_ids():
    cut = 4_000
    full, pruned = pruned_tokenizer(FULL_MERGES), pruned_tokenizer(cut)
    for phrase in ("person", "zucchini", "hot-air balloon"):
        ids = pruned.encode(phrase)
        assert max(ids) < BYTE_SYMBOLS + cut
        assert pruned.decode(ids) == full.decode(full.encode(phrase))
        if max(full.encode(phrase)) < BYTE_SYMBOLS + cut:
            assert ids == full.encode(phrase)


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="merges must be in 0..48894"):
        pruned_tokenizer(FULL_MERGES + 1)
    with pytest.raises(ValueError, match="no phrases"):
        merge_coverage(["", " "], [10])
