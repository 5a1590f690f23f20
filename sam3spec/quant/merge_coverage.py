"""Vocabulary coverage of a pruned CLIP BPE merge list: which phrases keep their token ids.

The text tower's token table is CLIP's 49,408 rows: 512 byte symbols (with and without ``</w>``),
48,894 merges in rank order, then the start and end tokens. Keeping only the first ``N`` merges
keeps every row id below ``512 + N`` unchanged, and byte-level BPE still encodes every string (a
word the dropped merges would have joined is spelled with shorter tokens). So a smaller table
loses no vocabulary outright; a phrase whose ids change is read differently by the trained text
tower, which is the measurable cost. :func:`merge_coverage` counts, for each ``N``, the phrases
whose ids are unchanged, and the table rows and bytes that ``N`` keeps.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

BYTE_SYMBOLS = 512  # the 256 byte symbols, with and without "</w>"
FULL_MERGES = 48_894
SPECIAL_TOKENS = 2  # start and end of text


@dataclass(frozen=True)
class MergeCoverage:
    """Coverage of one merge-list length over a phrase list.

    Attributes:
        merges: merges kept (the first ``merges`` in rank order).
        phrases: phrases counted (distinct, non-empty).
        unchanged: phrases whose token ids equal those of the full merge list.
        tokens_full: token count of all phrases with the full merge list (no start / end tokens).
        tokens_pruned: the same with ``merges`` kept.
    """

    merges: int
    phrases: int
    unchanged: int
    tokens_full: int
    tokens_pruned: int

    @property
    def rows(self) -> int:
        """Token-table rows kept: byte symbols, the kept merges, start and end."""
        return BYTE_SYMBOLS + self.merges + SPECIAL_TOKENS

    @property
    def share(self) -> float:
        """Share of phrases whose ids are unchanged (1.0 for the full list)."""
        return self.unchanged / self.phrases if self.phrases else float("nan")

    def table_bytes(self, width: int, bytes_per_weight: float) -> float:
        """Bytes of a ``[rows, width]`` table at ``bytes_per_weight`` (scales included by the caller's figure)."""
        return self.rows * width * bytes_per_weight


def pruned_tokenizer(merges: int, model_name: str = "MobileCLIP-S1"):
    """open_clip's tokenizer for ``model_name`` keeping only its first ``merges`` merges.

    ``bpe_ranks`` is what open_clip's BPE loop reads; dropping the ranks at and above ``merges``
    (and its per-word cache) is the whole change: ids, byte symbols and special tokens stay.
    """
    import open_clip

    if not 0 <= merges <= FULL_MERGES:
        raise ValueError(f"merges must be in 0..{FULL_MERGES}, got {merges}")
    tokenizer = open_clip.get_tokenizer(model_name)
    if merges < FULL_MERGES:
        tokenizer.bpe_ranks = {pair: rank for pair, rank in tokenizer.bpe_ranks.items() if rank < merges}
        tokenizer.cache = {token: token for token in ("<start_of_text>", "<end_of_text>")}
    return tokenizer


def merge_coverage(
    phrases: Iterable[str], merges: Sequence[int], model_name: str = "MobileCLIP-S1"
) -> list[MergeCoverage]:
    """Coverage of each merge-list length in ``merges`` over ``phrases`` (distinct, blank ones skipped).

    Returns:
        One :class:`MergeCoverage` per entry of ``merges``, in that order.
    """
    items = sorted({phrase.strip() for phrase in phrases if phrase.strip()})
    if not items:
        raise ValueError("no phrases to measure coverage on")
    full = [pruned_tokenizer(FULL_MERGES, model_name).encode(phrase) for phrase in items]
    results = []
    for count in merges:
        tokenizer = pruned_tokenizer(count, model_name)
        pruned = [tokenizer.encode(phrase) for phrase in items]
        results.append(
            MergeCoverage(
                merges=count,
                phrases=len(items),
                unchanged=sum(a == b for a, b in zip(full, pruned, strict=True)),
                tokens_full=sum(map(len, full)),
                tokens_pruned=sum(map(len, pruned)),
            )
        )
    return results
