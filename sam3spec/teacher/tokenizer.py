"""SAM 3's text tokenizer, built offline from the CLIP BPE vocabulary that open_clip ships.

SAM 3 uses CLIP's byte-level BPE (49,408 tokens) with a 32-token context. The hub copy of the
tokenizer cannot be downloaded here, so we rebuild it exactly the way CLIP does from
``open_clip/bpe_simple_vocab_16e6.txt.gz``: the 256 byte symbols, the same with ``</w>``, the first
48,894 merges, then ``<|startoftext|>`` (49406) and ``<|endoftext|>`` (49407).

transformers' ``Sam3Processor`` pads to 32 but does not truncate, and a longer prompt crashes the
text encoder; :meth:`Sam3Tokenizer.__call__` truncates to the context keeping the end-of-text
token last, as open_clip does.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

import torch

CONTEXT_LENGTH = 32
VOCAB_SIZE = 49408
START_OF_TEXT, END_OF_TEXT = "<|startoftext|>", "<|endoftext|>"
_NUM_MERGES = 49152 - 256 - 2


def bytes_to_unicode() -> dict[int, str]:
    """CLIP's reversible byte -> printable unicode character table (GPT-2's construction)."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
    printable += list(range(ord("®"), ord("ÿ") + 1))
    characters = printable[:]
    extra = 0
    for byte in range(256):
        if byte not in printable:
            printable.append(byte)
            characters.append(256 + extra)
            extra += 1
    return dict(zip(printable, map(chr, characters), strict=True))


def bundled_bpe_path() -> Path:
    """The BPE merges file bundled with open_clip (found without importing open_clip)."""
    import importlib.util

    spec = importlib.util.find_spec("open_clip")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("open_clip is not installed: it ships the CLIP BPE file the tokenizer needs")
    path = Path(next(iter(spec.submodule_search_locations))) / "bpe_simple_vocab_16e6.txt.gz"
    if not path.is_file():
        raise FileNotFoundError(f"CLIP BPE vocabulary not found at {path}")
    return path


def clip_vocabulary(bpe_path: str | Path | None = None) -> tuple[dict[str, int], list[str]]:
    """CLIP's vocabulary and merges built from the gzip BPE file.

    Returns:
        ``(vocab, merges)``: token -> id (49,408 entries) and merges as ``"a b"`` lines.
    """
    path = Path(bpe_path) if bpe_path else bundled_bpe_path()
    lines = gzip.open(path).read().decode("utf-8").split("\n")
    merges = lines[1 : _NUM_MERGES + 1]
    symbols = list(bytes_to_unicode().values())
    tokens = symbols + [symbol + "</w>" for symbol in symbols]
    tokens += ["".join(merge.split()) for merge in merges] + [START_OF_TEXT, END_OF_TEXT]
    if len(tokens) != VOCAB_SIZE:
        raise ValueError(f"{path}: built {len(tokens)} tokens, expected {VOCAB_SIZE} (not CLIP's BPE file?)")
    return {token: index for index, token in enumerate(tokens)}, merges


def write_clip_tokenizer_files(
    directory: str | Path, bpe_path: str | Path | None = None
) -> tuple[Path, Path]:
    """Write ``vocab.json`` and ``merges.txt`` (the files ``CLIPTokenizer`` reads) into ``directory``."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    vocab, merges = clip_vocabulary(bpe_path)
    vocab_file, merges_file = directory / "vocab.json", directory / "merges.txt"
    vocab_file.write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
    merges_file.write_text("#version: 0.2\n" + "\n".join(merges) + "\n", encoding="utf-8")
    return vocab_file, merges_file


class Sam3Tokenizer:
    """CLIP BPE tokenizer with SAM 3's 32-token context, truncating (EOT kept) and padding.

    Args:
        directory: a folder holding ``vocab.json`` + ``merges.txt`` (a SAM 3 checkpoint's, say);
            None builds them from open_clip's bundled BPE file.
        context_length: tokens per prompt, start and end tokens included (SAM 3: 32).
    """

    def __init__(self, directory: str | Path | None = None, context_length: int = CONTEXT_LENGTH) -> None:
        from transformers import CLIPTokenizer

        if directory is not None and (Path(directory) / "vocab.json").is_file():
            vocab_file, merges_file = Path(directory) / "vocab.json", Path(directory) / "merges.txt"
            if not merges_file.is_file():
                raise FileNotFoundError(f"{directory} has vocab.json but no merges.txt")
            self.backend = CLIPTokenizer(vocab=str(vocab_file), merges=str(merges_file))
        else:
            vocab, merges = clip_vocabulary()
            self.backend = CLIPTokenizer(vocab=vocab, merges=[tuple(merge.split()) for merge in merges])
        self.context_length = context_length
        self.start_id = self.backend.convert_tokens_to_ids(START_OF_TEXT)
        self.end_id = self.backend.convert_tokens_to_ids(END_OF_TEXT)
        self.pad_id = self.end_id

    def encode(self, text: str) -> list[int]:
        """Token ids of ``text`` with start/end tokens, truncated to the context (end kept last)."""
        ids = self.backend(text, add_special_tokens=False)["input_ids"]
        ids = [self.start_id, *ids[: self.context_length - 2], self.end_id]
        return ids

    def __call__(self, texts: str | Sequence[str]) -> dict[str, torch.Tensor]:
        """Tokenize a prompt or a batch.

        Returns:
            ``input_ids`` ``[B, 32]`` long (padded with the end token, as CLIP's hub tokenizer)
            and ``attention_mask`` ``[B, 32]`` long (1 for real tokens).
        """
        texts = [texts] if isinstance(texts, str) else list(texts)
        input_ids = torch.full((len(texts), self.context_length), self.pad_id, dtype=torch.long)
        attention_mask = torch.zeros((len(texts), self.context_length), dtype=torch.long)
        for row, text in enumerate(texts):
            ids = self.encode(text)
            input_ids[row, : len(ids)] = torch.tensor(ids)
            attention_mask[row, : len(ids)] = 1
        return {"input_ids": input_ids, "attention_mask": attention_mask}


@lru_cache(maxsize=2)
def default_tokenizer(context_length: int = CONTEXT_LENGTH) -> Sam3Tokenizer:
    """A process-wide tokenizer built from open_clip's BPE file (building takes ~1 s)."""
    return Sam3Tokenizer(context_length=context_length)
