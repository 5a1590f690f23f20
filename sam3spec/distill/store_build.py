"""Write a stage's teacher targets (:mod:`sam3spec.distill.store`): sharded, resumable, any number of ranks.

The stage's training set (:func:`~sam3spec.distill.stage_data.stage_dataset`, the samples and
prompt draws training will ask for) is cut into its images (:func:`~sam3spec.distill.data.image_groups`:
the prompts of one image stay together, so its FPN levels are computed and stored once), and the
images into shards of ``shard_size``. Rank ``r`` of ``w`` computes the shards ``s % w == r``
(:mod:`sam3spec.teacher.shards`: atomic per shard, done shards skipped on a rerun). Whichever
process finds every shard done writes the index: under ``torchrun`` rank 0 after a barrier; ranks
run one after another (or on machines without a process group) - the last one to finish.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file
from tqdm import tqdm

from sam3spec.atomic import atomic_write_json
from sam3spec.data.loader import collate_samples
from sam3spec.distill.adapters import StudentGeometry
from sam3spec.distill.cache import prompt_fingerprint
from sam3spec.distill.data import image_groups
from sam3spec.distill.stage_data import stage_dataset
from sam3spec.distill.store import (
    ARRAYS,
    FORMAT,
    INDEX,
    PRECISIONS,
    VERSION,
    encode_levels,
    encode_sample,
    identity,
)
from sam3spec.distill.targets import TeacherTargets
from sam3spec.teacher import shards as container

SA1B_IMAGES = 11_000_000  # SA-1B's published image count (one Phase 1 / 2 sample per image and draw)


def stage_geometry(stage) -> StudentGeometry:
    """The student grid a stage's targets are kept on (its student at its resolution)."""
    return StudentGeometry.of(stage.student_config(), stage.resolution, mask_scale=stage.mask_target_scale)


def default_top_k(stage) -> int:
    """The student's query count: the matcher never reads more teacher queries (``distill/task.py``)."""
    return stage.student_config().detr.num_queries


def part_of(name: str) -> str:
    """What a stored tensor is, for the size breakdown (``masks``, ``fpn``, ``encoder``, ...)."""
    field = name.split(".")[2] if name.startswith("s") else "fpn"
    return {"boxes": "queries", "logits": "queries", "has_encoder": "encoder", "text_valid": "text"}.get(
        field, field
    )


def compute_shard(builder, dataset, groups, members, top_k, precision, draws, batch_size=16):
    """Tensors and sidecar items of one shard (the images ``members``, indices into ``groups``)."""
    tensors: dict[str, torch.Tensor] = {}
    items, stored_groups = [], set()
    group_of = {index: group for group in members for index in groups[group]}
    present: dict[int, list[int]] = {group: [] for group in members}
    for draw in range(draws):
        dataset.set_epoch(draw)
        samples = [index for group in members for index in groups[group]]
        for start in range(0, len(samples), batch_size):
            batch = collate_samples([dataset[index] for index in samples[start : start + batch_size]])
            if not batch["batch_size"]:
                continue
            targets = builder(batch)
            for position, index in enumerate(batch["index"]):
                row = targets.select(torch.tensor([position]))
                group = group_of[index]
                if row.fpn_levels is not None and group not in stored_groups:
                    tensors.update(
                        {f"g{group}.{k}": v for k, v in encode_levels(row.fpn_levels, precision).items()}
                    )
                    stored_groups.add(group)
                row.fpn_levels = None
                values = encode_sample(row, top_k, precision)
                values["fingerprint"] = torch.tensor([prompt_fingerprint(batch, position)], dtype=torch.long)
                tensors.update({f"s{index}.d{draw}.{k}": v for k, v in values.items()})
                if draw == 0:
                    present[group].append(index)
    for group in members:
        items.append({"key": f"group:{group}", "samples": groups[group], "cached": present[group]})
    return tensors, items


def build_target_store(
    stage,
    options,
    teacher,
    out: str | Path,
    shard_size: int = 64,
    top_k: int | None = None,
    precision: str = "float16",
    rank: int = 0,
    world_size: int = 1,
    progress: bool = True,
    pause: float = 0.0,
) -> dict[str, Any]:
    """Cache ``teacher``'s targets for ``stage`` on ``options.data`` into ``out`` (resuming it).

    Args:
        stage: an image stage (:class:`~sam3spec.distill.stages.StageConfig`) distilling from a teacher.
        options: the run options training will use (``data``, ``vocabulary``, ``limit``; the teacher
            is ``teacher``, loaded at ``stage.teacher_resolution``).
        teacher: a :class:`~sam3spec.teacher.protocol.Teacher`.
        out: cache folder.
        shard_size: images per shard.
        top_k: teacher queries kept per sample (default: the student's query count).
        precision: ``float16`` or ``int8`` (:mod:`sam3spec.distill.store`).
        rank, world_size: this process among the cache's writers.
        progress: show a progress bar; pause: seconds to sleep after each shard (tests).

    Returns:
        ``shards``, ``computed`` (by this call), ``skipped`` (done before), ``samples``, and with the
        index written ``index`` (its contents: bytes per sample, ...).

    Raises:
        ValueError: ``out`` holds a cache made with other options, or a bad option.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if shard_size < 1:
        raise ValueError(f"--shard-size must be >= 1, got {shard_size}")
    top_k = default_top_k(stage) if top_k is None else top_k
    if top_k < 1:
        raise ValueError(f"--top-k must be >= 1, got {top_k}")
    if stage.targets != "teacher":
        raise ValueError(
            f"stage {stage.name!r} trains on {stage.targets!r} targets, not the teacher's: nothing to cache"
        )
    out = Path(out)
    geometry = stage_geometry(stage)
    dataset = stage_dataset(stage, options, teacher.image_size)
    groups = image_groups(dataset)
    meta = {
        "format": FORMAT,
        "version": VERSION,
        "stage": stage.name,
        "identity": identity(stage, options, geometry, len(dataset)),
        "teacher": {
            "path": str(options.teacher),
            "input_size": int(teacher.image_size),
            "score_offset": float(getattr(teacher, "score_offset", 0.0)),
        },
        "top_k": top_k,
        "precision": precision,
        "shard_size": shard_size,
        "groups": len(groups),
    }
    meta = json.loads(json.dumps(meta))  # as read back (tuples are lists)
    meta_path = out / "cache.json"
    if meta_path.is_file():
        existing = json.loads(meta_path.read_text())
        if existing != meta:
            changed = sorted(key for key in meta if existing.get(key) != meta[key])
            raise ValueError(
                f"{out} holds a cache made with other options ({', '.join(changed)} differ, {meta_path}); "
                "use another --out or the same options"
            )
    else:
        out.mkdir(parents=True, exist_ok=True)
        atomic_write_json(meta, meta_path)  # every rank writes the same content: a race is harmless
    container.clear_leftovers(out, rank)
    plan = [
        list(range(start, min(start + shard_size, len(groups))))
        for start in range(0, len(groups), shard_size)
    ]
    keys = [[f"group:{group}" for group in members] for members in plan]
    mine = container.owned(len(plan), rank, world_size)
    todo = [index for index in mine if not container.shard_done(out, index, keys[index])]
    builder = TeacherTargets(teacher, geometry, stage.losses.uses_features, stage.fpn_levels)
    bar = tqdm(
        total=len(mine),
        initial=len(mine) - len(todo),
        desc=f"{stage.name} targets (rank {rank})",
        disable=not progress,
    )
    for index in todo:
        tensors, items = compute_shard(
            builder, dataset, groups, plan[index], top_k, precision, stage.prompt_draws
        )
        container.write_shard(out, index, tensors, items, {"format": FORMAT}, rank)
        bar.update()
        if pause:
            time.sleep(pause)
    bar.close()
    counts: dict[str, Any] = {
        "shards": len(plan),
        "computed": len(todo),
        "skipped": len(mine) - len(todo),
        "samples": len(dataset),
    }
    grouped = container.barrier()
    if (rank == 0 or not grouped) and all(container.shard_done(out, i, keys[i]) for i in range(len(plan))):
        counts["index"] = write_store_index(out, meta, len(plan), len(dataset))
    return counts


def write_store_index(out: Path, meta: dict[str, Any], shards: int, samples: int) -> dict[str, Any]:
    """``index.safetensors`` (per sample: its shard and image, -1 when skipped) and ``index.json``
    (identity, widths, measured bytes); every sample must be in exactly one shard."""
    shard_of = torch.full((samples,), -1, dtype=torch.int32)
    group_of = torch.full((samples,), -1, dtype=torch.int32)
    seen = torch.zeros(samples, dtype=torch.int32)
    total, parts, widths = 0, {}, None
    for index in range(shards):
        for item in container.read_sidecar(out, index)["items"]:
            seen[item["samples"]] += 1
            shard_of[item["cached"]] = index
            group_of[item["cached"]] = int(item["key"].split(":")[1])
        path = container.shard_stem(out, index).with_suffix(".safetensors")
        total += path.stat().st_size
        header = safetensors_header(path)
        for name, entry in header.items():
            start, stop = entry["data_offsets"]
            parts[part_of(name)] = parts.get(part_of(name), 0) + stop - start
        if widths is None and meta["identity"]["fpn_levels"] is not None:
            widths = feature_widths(header)
    if not bool((seen == 1).all()):
        wrong = torch.nonzero(seen != 1).flatten()[:5].tolist()
        raise RuntimeError(
            f"{out}: samples {wrong} are in {seen[wrong].tolist()} shards (each must be in one)"
        )
    temporary = out / f".{ARRAYS}.tmp"
    save_file({"shard": shard_of, "group": group_of}, str(temporary))
    temporary.replace(out / ARRAYS)
    per_sample = total / max(1, samples)
    index = {
        "format": FORMAT,
        "version": VERSION,
        "identity": meta["identity"],
        "teacher": meta["teacher"],
        "top_k": meta["top_k"],
        "precision": meta["precision"],
        "shards": shards,
        "samples": samples,
        "cached_samples": int((shard_of >= 0).sum()),
        "draws": meta["identity"]["prompt_draws"],
        "widths": widths,
        "total_bytes": total,
        "bytes_per_sample": per_sample,
        "bytes_per_sample_by_part": {name: size / max(1, samples) for name, size in sorted(parts.items())},
        "sa1b_images": SA1B_IMAGES,
        "sa1b_bytes": per_sample * SA1B_IMAGES,
    }
    atomic_write_json(index, out / INDEX)
    return index


def safetensors_header(path: Path) -> dict[str, dict]:
    """A safetensors file's tensor entries (``dtype``, ``shape``, ``data_offsets``), read from its header only."""
    import struct

    with open(path, "rb") as handle:
        (length,) = struct.unpack("<Q", handle.read(8))
        header = json.loads(handle.read(length))
    header.pop("__metadata__", None)
    return header


def feature_widths(header: dict[str, dict]) -> list | None:
    """``[[teacher width per distilled level], encoder width, text width or None]`` from one shard's
    header (None when it holds no image)."""
    levels: dict[int, int] = {}
    encoder = text = None
    for name, entry in header.items():
        stem = name.split(".")
        if name.startswith("g") and len(stem) == 2:
            levels[int(stem[1][3:])] = entry["shape"][0]
        elif len(stem) == 3 and stem[2] == "encoder":
            encoder = entry["shape"][0]
        elif len(stem) == 3 and stem[2] == "text":
            text = entry["shape"][-1]
    if not levels or encoder is None:
        return None
    return [[levels[position] for position in sorted(levels)], encoder, text]
