"""A text-embedding table: ``encode_text`` precomputed for a fixed vocabulary of prompts.

An app that only ever asks known prompts (a product's label set, a demo's fixed phrases)
can ship this table and never run the text tower. The file is safetensors with::

    input_ids  [V, L]     int64  token ids of each phrase (the lookup key)
    tokens     [V, L, C]  fp16   encode_text's token states
    masks      [V, L]     bool   padding masks

and the phrases, in order, as JSON in the metadata (``phrases``), with the preset and the
context length.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch


@dataclass
class TextTable:
    """Phrases and their ``encode_text`` outputs.

    Attributes:
        phrases: the vocabulary, in order.
        input_ids: ``[V, L]`` token ids.
        tokens: ``[V, L, C]`` token states (stored fp16).
        masks: ``[V, L]`` padding masks (True = padding).
        preset: the preset the states belong to.
    """

    phrases: list[str]
    input_ids: torch.Tensor
    tokens: torch.Tensor
    masks: torch.Tensor
    preset: str

    def lookup(self, input_ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor] | None:
        """``(tokens [L, C] float32, mask [L])`` for a row of ids in the table, else None."""
        matches = (self.input_ids == input_ids.to(self.input_ids.dtype)[None]).all(dim=1).nonzero()
        if len(matches) == 0:
            return None
        index = int(matches[0, 0])
        return self.tokens[index].float(), self.masks[index]

    def get(self, phrase: str) -> tuple[torch.Tensor, torch.Tensor]:
        """The entry of ``phrase``; ``KeyError`` when it is not in the vocabulary."""
        if phrase not in self.phrases:
            raise KeyError(f"{phrase!r} is not in the text table ({len(self.phrases)} phrases)")
        index = self.phrases.index(phrase)
        return self.tokens[index].float(), self.masks[index]

    def save(self, path: str | Path) -> Path:
        from safetensors.torch import save_file

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tensors = {
            "input_ids": self.input_ids.contiguous(),
            "tokens": self.tokens.half().contiguous(),
            "masks": self.masks.contiguous(),
        }
        metadata = {
            "format": "sam3spec-text-table/1",
            "preset": self.preset,
            "phrases": json.dumps(self.phrases),
        }
        save_file(tensors, str(path), metadata=metadata)
        return path

    @classmethod
    def load(cls, path: str | Path) -> TextTable:
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
            if metadata.get("format") != "sam3spec-text-table/1":
                raise ValueError(f"{path}: not a sam3spec text table")
            tensors = {name: handle.get_tensor(name) for name in ("input_ids", "tokens", "masks")}
        return cls(
            json.loads(metadata["phrases"]),
            tensors["input_ids"],
            tensors["tokens"],
            tensors["masks"],
            metadata["preset"],
        )


def build_text_table(
    phrases: Sequence[str],
    tokenize: Callable[[Sequence[str]], torch.Tensor],
    encode_text: Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]],
    preset: str,
) -> TextTable:
    """Run ``encode_text`` (eager wrapper or a ``.pte`` method) over ``phrases``, one at a time.

    Args:
        phrases: distinct prompts.
        tokenize: phrases -> ``[N, L]`` ids.
        encode_text: ``[1, L]`` ids -> ``(tokens [1, L, C], mask [1, L])``.
        preset: recorded in the file.
    """
    unique = list(dict.fromkeys(phrases))
    ids = tokenize(unique)
    tokens, masks = [], []
    with torch.no_grad():
        for row in ids:
            token_states, mask = encode_text(row[None])
            tokens.append(token_states[0])
            masks.append(mask[0])
    return TextTable(unique, ids, torch.stack(tokens), torch.stack(masks), preset)
