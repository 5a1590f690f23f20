"""Where and how training runs: device, precision, processes, weight averaging, pictures.

Decided once at the edge and handed to the loop (nanoGPT style): the device (CUDA, MPS or CPU,
auto-detected, overridable), the autocast context and whether a gradient scaler is needed, the
process group under ``torchrun`` (NCCL on CUDA, gloo otherwise).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from dataclasses import dataclass

import torch
from torch import nn


def resolve_device(name: str | None = None, local_rank: int = 0) -> torch.device:
    """``name`` if given (``cpu``, ``cuda``, ``cuda:1``, ``mps``), else CUDA, then MPS, then CPU.

    Under ``torchrun`` on CUDA each process takes ``cuda:<LOCAL_RANK>``.
    """
    if name:
        device = torch.device(name)
        if device.type == "cuda" and device.index is None:
            device = torch.device("cuda", local_rank)
        return device
    if torch.cuda.is_available():
        return torch.device("cuda", local_rank)
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


@dataclass(frozen=True)
class Precision:
    """Autocast dtype (None: full precision) and whether fp16 needs a gradient scaler."""

    dtype: torch.dtype | None
    scaler: bool

    def autocast(self, device: torch.device):
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=device.type, dtype=self.dtype)

    @property
    def name(self) -> str:
        return "fp32" if self.dtype is None else str(self.dtype).replace("torch.", "")


def resolve_precision(amp: str, device: torch.device) -> Precision:
    """``auto``: bf16 on CUDA (when supported), fp16 with a scaler on MPS, fp32 on CPU.

    fp32 is the CPU default because bf16 autocast was not faster for the tiny student on this
    project's 2-core CPU and fp32 keeps runs comparable across machines; ``amp="bf16"`` turns it on.
    """
    if amp == "off":
        return Precision(None, False)
    if amp == "bf16":
        return Precision(torch.bfloat16, False)
    if amp == "fp16":
        return Precision(torch.float16, device.type != "cpu")
    if device.type == "cuda":
        return Precision(
            torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16,
            not torch.cuda.is_bf16_supported(),
        )
    if device.type == "mps":
        return Precision(torch.float16, True)
    return Precision(None, False)


@dataclass(frozen=True)
class Processes:
    """This process's place under ``torchrun`` (rank 0 of 1 without it)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    started_group: bool = False

    @property
    def main(self) -> bool:
        return self.rank == 0


def start_processes(device_hint: str | None = None) -> Processes:
    """Read ``RANK`` / ``WORLD_SIZE`` / ``LOCAL_RANK`` and start the process group when needed."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    started = False
    if world_size > 1 and not torch.distributed.is_initialized():
        cuda = torch.cuda.is_available() and (device_hint is None or device_hint.startswith("cuda"))
        torch.distributed.init_process_group("nccl" if cuda else "gloo")
        started = True
    return Processes(rank, world_size, local_rank, started)


def barrier(processes: Processes) -> None:
    if processes.world_size > 1:
        torch.distributed.barrier()


def mean_across(values: torch.Tensor, processes: Processes) -> torch.Tensor:
    """Average a tensor over all processes (identity for one)."""
    if processes.world_size == 1:
        return values
    values = values.clone()
    torch.distributed.all_reduce(values, op=torch.distributed.ReduceOp.SUM)
    return values / processes.world_size


class WeightAverage:
    """Exponential moving average of the trainable parameters (``decay`` per optimizer step)."""

    def __init__(self, model: nn.Module, decay: float) -> None:
        self.decay = decay
        self.shadow = {
            name: parameter.detach().clone()
            for name, parameter in model.named_parameters()
            if parameter.requires_grad
        }

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        for name, parameter in model.named_parameters():
            if name in self.shadow:
                self.shadow[name].lerp_(parameter.detach(), 1 - self.decay)

    @torch.no_grad()
    def copy_to(self, model: nn.Module) -> None:
        for name, parameter in model.named_parameters():
            if name in self.shadow:
                parameter.copy_(self.shadow[name])


def mask_picture(image: torch.Tensor, teacher: torch.Tensor, student: torch.Tensor) -> torch.Tensor:
    """``[3, H, 3W]`` picture for TensorBoard: the input (ImageNet-normalised ``[3, H, W]``), the
    teacher's and the student's semantic maps (``[h, w]`` probabilities), side by side."""
    from sam3spec.data.transforms import Normalization, denormalize

    height, width = image.shape[-2:]
    picture = denormalize(image.float().cpu(), Normalization.IMAGENET).clamp(0, 1)

    def grey(probabilities: torch.Tensor) -> torch.Tensor:
        resized = torch.nn.functional.interpolate(
            probabilities.float().cpu()[None, None], size=(height, width)
        )
        return resized[0].expand(3, height, width)

    return torch.cat([picture, grey(teacher), grey(student)], dim=-1)


class AllReduceBatchNorm(nn.BatchNorm2d):
    """BatchNorm whose batch statistics are summed over all processes (any backend, CPU included).

    ``torch.nn.SyncBatchNorm`` refuses CPU tensors; this is the same computation written with the
    autograd-aware ``torch.distributed.nn.functional.all_reduce``: per channel count and sum, then
    the sum of squared deviations, are all-reduced, so every process normalises with the statistics of the *global*
    batch, as a single process with that batch would. Outside training or with one process it is
    a plain ``BatchNorm2d``. Parameter and buffer names are unchanged (checkpoints load either way).
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        distributed = torch.distributed.is_available() and torch.distributed.is_initialized()
        if not (self.training and distributed and torch.distributed.get_world_size() > 1):
            return super().forward(x)
        from torch.distributed.nn.functional import all_reduce

        channels = x.shape[1]
        # Two passes (mean, then the mean squared deviation) keep the variance as exact as the
        # single-process kernel's; E[x^2] - E[x]^2 cancels badly when |mean| >> std.
        sums = all_reduce(torch.cat([x.sum((0, 2, 3)), x.new_full((1,), x.numel() / channels)]))
        count = sums[-1]
        mean = sums[:channels] / count
        centred = x - mean.view(1, channels, 1, 1)
        variance = all_reduce((centred * centred).sum((0, 2, 3))) / count
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                momentum = (
                    self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked)
                )
                unbiased = variance * count / (count - 1).clamp(min=1)
                self.running_mean.lerp_(mean.detach(), momentum)
                self.running_var.lerp_(unbiased.detach(), momentum)
        shape = (1, channels, 1, 1)
        y = centred * torch.rsqrt(variance.view(shape) + self.eps)
        return y * self.weight.view(shape) + self.bias.view(shape) if self.affine else y


def synchronise_batch_norm(model: nn.Module, device: torch.device) -> nn.Module:
    """Make BatchNorm use global-batch statistics under several processes (in place).

    CUDA: ``torch.nn.SyncBatchNorm``; other devices: :class:`AllReduceBatchNorm`. Without this a
    DDP run with ``W`` ranks of ``B`` samples would normalise with ``B``-sample statistics and
    differ from a single process with ``W * B`` samples.
    """
    if device.type == "cuda":
        return torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
    for name, child in list(model.named_children()):
        if type(child) is nn.BatchNorm2d:
            replacement = AllReduceBatchNorm(
                child.num_features, child.eps, child.momentum, child.affine, child.track_running_stats
            )
            replacement.load_state_dict(child.state_dict())
            replacement.to(child.weight.device if child.affine else device)
            setattr(model, name, replacement)
        else:
            synchronise_batch_norm(child, device)
    return model


def weight_digest(module: torch.nn.Module) -> str:
    """SHA-256 of every parameter's bytes (equal digests = bit-identical weights)."""
    digest = hashlib.sha256()
    for name, parameter in sorted(module.state_dict().items()):
        digest.update(name.encode())
        digest.update(parameter.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()
