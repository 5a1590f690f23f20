"""Precise BatchNorm: re-estimate a model's BatchNorm running statistics over many batches.

During training every BatchNorm keeps an exponential moving average (momentum 0.1) of its batch
statistics, so the saved running mean / variance are those of the last ~10-20 micro-batches, and of
weights that were still moving. At evaluation (``eval()`` mode) the model normalises with them. Wu
& Johnson ("Rethinking 'Batch' in BatchNorm", 2021) call the fix *precise BN*: one forward pass in
``train()`` mode over a fixed set of training batches, with the statistics averaged over all of them
(momentum None). The tiny world student has 52 BatchNorm layers (RepViT, FPN adapters, pixel
decoder).

The trainer uses it twice (``StageConfig.precise_bn_batches``): on the final weights after
training, or, with ``StageConfig.freeze_batch_norm``, on the weights of the moment the statistics
are frozen for the rest of the stage (the concept world's stages: Phase 1 from its third epoch,
Phase 2 and Stage 3 from the start; measured in docs/DECISIONS.md "BatchNorm":
re-estimating the final weights' statistics alone changed nothing).

``torch.optim.swa_utils.update_bn`` does the pass (reset, cumulative average, restore momentum and
mode); this module only feeds it the stage's own micro-batches (same images and prompt mix as
training) and keeps ranks in lock step. ``merge`` concatenates that many micro-batches into one
forward (``StageConfig.precise_bn_merge``): ``update_bn`` averages each forward's batch variance,
and the variance within a 3-image micro-batch misses the spread between images that the running
variance must hold at evaluation (the concept world's stages use 4: 12 images per forward;
docs/DECISIONS.md "BatchNorm").
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from sam3spec.data.loader import collate_samples
from sam3spec.distill import runtime
from sam3spec.distill.data import student_inputs


def batch_norm_layers(model: nn.Module) -> list[nn.Module]:
    """Every BatchNorm of ``model`` (``AllReduceBatchNorm`` included: it subclasses BatchNorm2d)."""
    return [module for module in model.modules() if isinstance(module, nn.modules.batchnorm._BatchNorm)]


def recalibrate_batch_norm(
    model: nn.Module,
    dataset: Dataset,
    batches: Sequence[list[int]],
    tokenizer,
    device: torch.device,
    processes: runtime.Processes,
    autocast=None,
    num_workers: int = 0,
    progress: bool = True,
    merge: int = 1,
) -> int:
    """Recompute every BatchNorm's running statistics of ``model`` over ``batches``.

    Args:
        model: the (unwrapped) :class:`~sam3spec.distill.task.DistillModel`; its forward takes the
            dict of :func:`~sam3spec.distill.data.student_inputs`.
        dataset: the stage's training dataset (its epoch already set).
        batches: micro-batches of dataset indices (this process's shard).
        tokenizer: the student's tokenizer.
        device: where the model runs.
        processes: with several, every rank must pass the same number of batches: a batch is
            skipped on all ranks when any rank's has no usable sample (``AllReduceBatchNorm`` sums
            statistics across ranks inside the forward, so the ranks stay in lock step).
        autocast: the training precision's autocast context for the forward, or None (off).
        num_workers: data loader processes.
        progress: show a tqdm bar.
        merge: consecutive micro-batches concatenated into one forward (>= 1).

    Returns:
        The number of micro-batches the statistics were averaged over (0: no BatchNorm, no batch,
        or no usable sample; the running statistics are then left as training left them).

    Raises:
        ValueError: ``merge`` below 1.
    """
    if merge < 1:
        raise ValueError(f"merge must be >= 1 micro-batch per forward, got {merge}")
    layers = batch_norm_layers(model)
    if not layers or not batches:
        return 0
    groups = [list(batches[start : start + merge]) for start in range(0, len(batches), merge)]
    kept = [{name: buffer.clone() for name, buffer in layer.named_buffers()} for layer in layers]
    from tqdm import tqdm

    merged = [[index for batch in group for index in batch] for group in groups]
    loader = DataLoader(dataset, batch_sampler=merged, collate_fn=collate_samples, num_workers=num_workers)
    used = 0

    def inputs() -> Iterator[dict[str, Any]]:
        nonlocal used
        forwards = tqdm(loader, desc="precise BN", disable=not progress, leave=False)
        for group, batch in zip(groups, forwards, strict=True):
            usable = torch.tensor([1.0 if batch["batch_size"] else 0.0], device=device)
            if float(runtime.mean_across(usable, processes)) < 1.0:
                continue
            used += len(group)
            yield student_inputs(batch, tokenizer, device)

    with autocast if autocast is not None else contextlib.nullcontext():
        torch.optim.swa_utils.update_bn(inputs(), model)
    if used == 0:  # update_bn reset the statistics before it found no batch: put them back
        with torch.no_grad():
            for layer, buffers in zip(layers, kept, strict=True):
                for name, buffer in layer.named_buffers():
                    buffer.copy_(buffers[name])
    return used
