"""Text encoder: the open_clip MobileCLIP-S1 text tower (no image tower) + a projection to ``hidden``.

SAM 3 conditions on *every* token state of its prompt, so the tower is built with
``output_tokens=True`` and no pooled projection: the states after ``ln_final`` go through
``Linear(width, hidden)``. With the seed widths (512 wide, 12 layers, 8 heads, context 32) that is
63.27M parameters, 25.3M of them the 49408-token embedding table.

open_clip is imported lazily (it costs ~5 s) inside the functions that need it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn

from sam3spec.config import TextEncoderConfig
from sam3spec.models.attention import xavier_init
from sam3spec.models.weights import LoadReport, apply_state_dict, read_state_dict

PAD_TOKEN_ID = 0  # CLIP's BPE tokenizer pads with 0 (start/end of text are 49406/49407)

# Top-level keys of a non-"custom_text" open_clip CLIP checkpoint that belong to the text tower.
_TEXT_KEYS = ("token_embedding.", "positional_embedding", "transformer.", "ln_final.", "text_projection")


class TextEncoder(nn.Module):
    """Token states of a CLIP text transformer, projected to the model width.

    Args:
        tower: an open_clip ``TextTransformer`` built with ``output_tokens=True``.
        width: the tower's width.
        hidden: output width (the student's ``hidden``).
    """

    def __init__(self, tower: nn.Module, width: int, hidden: int) -> None:
        super().__init__()
        self.tower = tower
        self.context_length = int(tower.context_length)
        self.projection = nn.Linear(width, hidden)
        xavier_init(self.projection)

    def forward(self, input_ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Encode token ids.

        Args:
            input_ids: ``[B, L]`` int64 token ids, padded with 0, ``L <= context_length``.

        Returns:
            ``(tokens [B, L, hidden], padding_mask [B, L])`` with padding_mask True at pad tokens.
        """
        _, states = self.tower(input_ids)  # states: [B, L, width], after ln_final
        return self.projection(states), input_ids == PAD_TOKEN_ID


def build_text_tower(config: TextEncoderConfig) -> nn.Module:
    """Build only the open_clip text transformer described by ``config`` (random weights).

    MobileCLIP-S1's text config is ``{context_length 77, vocab 49408, width 512, heads 8,
    layers 12, no_causal_mask}``; here the context length comes from ``config`` (32 for SAM 3),
    the pooled projection is dropped (``proj_type='none'``: it would get no gradient) and
    pooling is ``'none'`` so no per-sample gather is traced.
    """
    from open_clip.model import CLIPTextCfg, _build_text_tower

    text_cfg = CLIPTextCfg(
        context_length=config.context_length,
        vocab_size=config.vocab_size,
        width=config.width,
        heads=config.heads,
        layers=config.layers,
        no_causal_mask=True,
        output_tokens=True,
        proj_type="none",
        pool_type="none",
    )
    return _build_text_tower(embed_dim=config.width, text_cfg=text_cfg)


def load_text_weights(tower: nn.Module, path: str | Path) -> LoadReport:
    """Load the text tower of a local open_clip checkpoint (e.g. MobileCLIP-S1) into ``tower``.

    Accepts both layouts: ``text.*`` keys ("custom text" models such as MobileCLIP) and
    top-level ``token_embedding`` / ``positional_embedding`` / ``transformer.*`` / ``ln_final``
    keys (classic CLIP). The image tower, ``logit_scale`` and the pooled ``text_projection``
    (unused: the student projects every token) are reported as ignored; a longer positional
    embedding (77 positions) is truncated to the tower's context length.

    Returns:
        A :class:`LoadReport`.
    """
    report = LoadReport(source=str(path))
    state: dict[str, torch.Tensor] = {}
    for key, value in read_state_dict(path).items():
        name = key[len("text.") :] if key.startswith("text.") else key
        if name.startswith("text_projection") or not name.startswith(_TEXT_KEYS):
            report.ignored.append(key)
            continue
        state[name] = value
    positions = state.get("positional_embedding")
    context = int(tower.positional_embedding.shape[0])
    if positions is not None and positions.shape[0] > context:
        state["positional_embedding"] = positions[:context].clone()
        report.adapted.append(f"positional_embedding truncated {positions.shape[0]} -> {context}")
    return apply_state_dict(tower, state, report)


class Tokenizer:
    """CLIP BPE tokenizer of an open_clip model, padded/truncated to a fixed context length.

    Works offline (the vocabulary ships inside open_clip).

    Args:
        model_name: open_clip model whose tokenizer to use (``MobileCLIP-S1``), or a
            :class:`TextEncoderConfig` (its ``model_name`` and ``context_length`` are used).
        context_length: tokens per prompt (32 for SAM 3); None takes the config's, else 32.
    """

    def __init__(
        self, model_name: str | TextEncoderConfig = "MobileCLIP-S1", context_length: int | None = None
    ) -> None:
        import open_clip

        if isinstance(model_name, TextEncoderConfig):
            context_length = model_name.context_length if context_length is None else context_length
            model_name = model_name.model_name
        self.model_name = model_name
        self.context_length = 32 if context_length is None else context_length
        self._tokenizer = open_clip.get_tokenizer(model_name)

    @classmethod
    def from_config(cls, config: TextEncoderConfig) -> Tokenizer:
        """The tokenizer matching a :class:`TextEncoderConfig`."""
        return cls(config.model_name, config.context_length)

    def __call__(self, texts: str | Sequence[str]) -> torch.Tensor:
        """Tokenize one prompt or a list of prompts.

        Returns:
            ``[N, context_length]`` int64 ids; long prompts are truncated (end token kept).

        Raises:
            ValueError: for an empty list or an empty / whitespace-only prompt.
        """
        items = [texts] if isinstance(texts, str) else list(texts)
        if not items:
            raise ValueError("empty prompt: no text given")
        for index, text in enumerate(items):
            if not isinstance(text, str) or not text.strip():
                raise ValueError(f"empty prompt at index {index}: {text!r}; give a noun phrase")
        return self._tokenizer(items, context_length=self.context_length).long()

    def token_count(self, text: str) -> int:
        """Tokens of ``text`` before truncation, start and end tokens included (compare with
        :attr:`context_length`: a longer prompt is cut by :meth:`__call__`)."""
        return len(self._tokenizer.encode(text)) + 2
