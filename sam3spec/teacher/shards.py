"""The container every teacher cache is stored in: shards of tensors, written atomically, resumable.

Layout of a cache folder (the same for the video features of ``sam3spec teacher cache`` and the
stage targets of ``sam3spec teacher cache --stage``)::

    cache.json                      what was cached; a rerun (another rank, a resume) must match it
    shards/shard_00000.safetensors  the tensors of shard 0's items
    shards/shard_00000.json         its sidecar: the items it holds (written last)
    index.json                      written once every shard is done

A shard counts as done only when its sidecar names exactly the items expected there, and the
sidecar is renamed into place after the tensors: a run killed at any point leaves at most a
temporary file (never a shard that looks done), and a rerun skips what is done. Temporary names
carry the writer's rank, so a rank that starts (and clears its own leftovers) while another is
writing never removes the other's file. Rank ``r`` of ``w`` owns shards ``s % w == r``, whether the
ranks run together under ``torchrun`` or one after another on different machines.
"""

from __future__ import annotations

import json
import os
from collections import OrderedDict
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from sam3spec.atomic import atomic_write_json

SHARDS = "shards"


def shard_stem(directory: Path, index: int) -> Path:
    """``directory/shards/shard_<index>`` (add ``.safetensors`` / ``.json``)."""
    return Path(directory) / SHARDS / f"shard_{index:05d}"


def shard_done(directory: Path, index: int, keys: list[str]) -> bool:
    """Shard ``index`` is complete: tensors present and its sidecar names exactly ``keys``."""
    stem = shard_stem(directory, index)
    sidecar, tensors = stem.with_suffix(".json"), stem.with_suffix(".safetensors")
    if not (sidecar.is_file() and tensors.is_file()):
        return False
    try:
        return [item["key"] for item in json.loads(sidecar.read_text())["items"]] == keys
    except (json.JSONDecodeError, KeyError, TypeError):
        return False


def read_sidecar(directory: Path, index: int) -> dict[str, Any]:
    return json.loads(shard_stem(directory, index).with_suffix(".json").read_text())


def write_shard(
    directory: Path,
    index: int,
    tensors: dict[str, torch.Tensor],
    items: list[dict[str, Any]],
    metadata: dict[str, str] | None = None,
    rank: int = 0,
) -> int:
    """Write shard ``index`` (tensors, then the sidecar listing ``items``); returns its tensor file's bytes."""
    stem = shard_stem(directory, index)
    stem.parent.mkdir(parents=True, exist_ok=True)
    temporary = stem.with_name(f"{stem.name}.safetensors.rank{rank}.tmp")
    save_file({key: value.contiguous() for key, value in tensors.items()}, str(temporary), metadata=metadata)
    os.replace(temporary, stem.with_suffix(".safetensors"))
    atomic_write_json({"shard": index, "items": items}, stem.with_suffix(".json"))
    return stem.with_suffix(".safetensors").stat().st_size


def clear_leftovers(directory: Path, rank: int) -> None:
    """Remove the temporary files a killed run of ``rank`` left (other ranks' are theirs), and
    those of writers that named them without a rank (``*.safetensors.tmp``; no writer does now)."""
    folder = Path(directory) / SHARDS
    for stale in [*folder.glob(f"*.rank{rank}.tmp"), *folder.glob("*.safetensors.tmp")]:
        stale.unlink(missing_ok=True)


def owned(count: int, rank: int, world_size: int) -> list[int]:
    """The shards rank ``rank`` of ``world_size`` computes."""
    if not 0 <= rank < world_size:
        raise ValueError(f"rank {rank} is not in 0..{world_size - 1} (world size {world_size})")
    return [index for index in range(count) if index % world_size == rank]


def distributed_rank(rank: int | None = None, world_size: int | None = None) -> tuple[int, int]:
    """``(rank, world_size)``: as given, else from ``torchrun``'s ``RANK`` / ``WORLD_SIZE``; under
    ``torchrun`` with several ranks a gloo group is started for the final barrier."""
    from_env = rank is None and world_size is None
    world_size = int(os.environ.get("WORLD_SIZE", "1")) if world_size is None else world_size
    rank = int(os.environ.get("RANK", "0")) if rank is None else rank
    if (
        from_env
        and world_size > 1
        and "MASTER_ADDR" in os.environ
        and torch.distributed.is_available()
        and not torch.distributed.is_initialized()
    ):
        torch.distributed.init_process_group("gloo")
    return rank, world_size


def barrier() -> bool:
    """Wait for the other ranks when a process group runs; True when it did."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.barrier()
        return True
    return False


class ShardReader:
    """Tensors by name from a folder's shards, each shard memory-mapped on first use.

    At most ``open_shards`` shards stay open (least recently used closed first), so the memory a
    reader holds does not grow with the number of shards; a tensor is read from disk (the page
    cache) when asked for.
    """

    def __init__(self, directory: Path, open_shards: int = 32) -> None:
        self.directory = Path(directory)
        self.open_shards = open_shards
        self._open: OrderedDict[int, Any] = OrderedDict()

    def shard(self, index: int):
        """The open ``safe_open`` handle of shard ``index``."""
        return self._entry(index)[0]

    def _entry(self, index: int) -> tuple[Any, frozenset[str]]:
        if index in self._open:
            self._open.move_to_end(index)
            return self._open[index]
        handle = safe_open(str(shard_stem(self.directory, index).with_suffix(".safetensors")), "pt")
        self._open[index] = (handle, frozenset(handle.keys()))
        if len(self._open) > self.open_shards:
            self._open.popitem(last=False)
        return self._open[index]

    def get(self, index: int, name: str) -> torch.Tensor:
        return self._entry(index)[0].get_tensor(name)

    def has(self, index: int, name: str) -> bool:
        return name in self._entry(index)[1]
