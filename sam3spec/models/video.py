"""Explicit, fixed-size video state for :meth:`Student.forward_video` (and the ``track`` export).

The state is three tensors a caller (a Python loop, a phone runtime) owns and passes back in:

* ``context [B, T, C, h, w]``: FPN level ``memory.context_level`` maps of the last T frames
  pushed, oldest first (a rolling buffer: a new frame drops the oldest);
* ``valid [B, T]`` bool: which slots hold a frame (a video shorter than T leaves the oldest empty);
* ``memory [B, K, C]``: the Perceiver resampler's K latents read from the valid slots, i.e. the
  memory the *next* frame attends to (K = ``memory.num_latents``, 64).

None of the sizes depends on how many frames were seen, so a 1,000-frame video needs exactly the
memory of a 1-frame one. This is the ``track`` export method's buffer (``export/wrappers.py``):
the same slots, the same masking, the same frame ages, so eager and exported programs agree.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from sam3spec.models.memory import context_tokens

CONTEXT_FRAMES = 8  # T: frames the memory reads (docs/PLAN.md 4.3)


@dataclass
class VideoState:
    """The memory a video carries from frame to frame (see the module docstring for shapes)."""

    context: torch.Tensor
    valid: torch.Tensor
    memory: torch.Tensor

    def tensors(self) -> dict[str, torch.Tensor]:
        return {"context": self.context, "valid": self.valid, "memory": self.memory}

    def nbytes(self) -> int:
        """Bytes held by the state (constant over a video)."""
        return sum(t.numel() * t.element_size() for t in self.tensors().values())

    @property
    def has_context(self) -> bool:
        """True when at least one slot holds a frame (every row must agree; see :func:`resample_valid`)."""
        return bool(self.valid.any())


def empty_state(
    batch: int,
    frames: int,
    channels: int,
    height: int,
    width: int,
    latents: int,
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float32,
) -> VideoState:
    """A state with every slot empty (the start of a video)."""
    return VideoState(
        context=torch.zeros(batch, frames, channels, height, width, device=device, dtype=dtype),
        valid=torch.zeros(batch, frames, dtype=torch.bool, device=device),
        memory=torch.zeros(batch, latents, channels, device=device, dtype=dtype),
    )


def resample_valid(resampler: nn.Module, context: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """The Perceiver resampler over the valid slots of a T-frame buffer (invalid slots are masked keys).

    Equal to ``resampler(context_tokens(context[:, valid]))`` when the valid slots are the newest
    ones, because frame ages (temporal embeddings) count from the newest slot.

    Args:
        resampler: a :class:`~sam3spec.models.memory.PerceiverResampler`.
        context: ``[B, T, C, h, w]``.
        valid: ``[B, T]`` bool; every row needs at least one valid slot (a row without any would
            be a softmax over nothing).

    Returns:
        memory ``[B, K, C]``.
    """
    if not bool(valid.any(dim=1).all()):
        raise ValueError("resample_valid: every batch row needs at least one valid context frame")
    batch, frames, _, height, width = context.shape
    tokens = context_tokens(context)
    padding = (
        (~valid)[:, :, None].expand(batch, frames, height * width).reshape(batch, frames * height * width)
    )
    latents = resampler.latents[None].expand(batch, -1, -1)
    for layer in resampler.layers:
        keys = layer.context_norm(tokens)
        latents = latents + layer.attn(layer.latent_norm(latents), keys, keys, key_padding_mask=padding)
        latents = latents + layer.ffn(layer.ffn_norm(latents))
    return resampler.norm(latents)


def push_frame(state: VideoState, frame_map: torch.Tensor, resampler: nn.Module) -> VideoState:
    """A new state: the buffer shifted by one slot with ``frame_map [B, C, h, w]`` appended, and
    the memory the next frame will read (the old state is not modified)."""
    context = torch.cat((state.context[:, 1:], frame_map[:, None].to(state.context.dtype)), dim=1)
    valid = torch.cat((state.valid[:, 1:], torch.ones_like(state.valid[:, :1])), dim=1)
    return VideoState(context, valid, resample_valid(resampler, context, valid))
