"""The teacher cache: run the teacher once over a dataset, store what distillation needs.

Layout of a cache folder::

    cache.json                     what was cached (teacher, data, options); a rerun must match
    shards/shard_00000.safetensors tensors of items 0..N-1, keys "<item>/<name>"
    shards/shard_00000.json        the shard's sidecar: its items and their prompts (written last)
    index.json                     item -> shard, written when every shard is done

Items are the dataset's images (``image:<id>``: FPN levels, and per prompt the teacher's logits,
boxes, presence, semantic map and the masks of its best queries) and videos (``video:<id>``:
FPN level-3 features ``[F, C, h, w]`` of the annotated frames, fp16, as the video stage reads
them). Item ``i`` belongs to shard ``i // shard_size``, whatever the number of processes.

Resumable and crash-safe, in the shard container of :mod:`sam3spec.teacher.shards` (the one the
image stages' target cache, :mod:`sam3spec.distill.store`, is stored in too): a killed run loses at
most the shards in progress and never leaves a corrupt one, and a rerun skips what is done. With
``torchrun``, rank ``r`` of ``w`` computes shards ``s % w == r``; rank 0 writes the index after a
barrier.
"""

from __future__ import annotations

import hashlib
import json
import time
import warnings
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file
from tqdm import tqdm

from sam3spec.atomic import atomic_write_json
from sam3spec.teacher.shards import clear_leftovers, distributed_rank, shard_done, write_shard

__all__ = ["CacheOptions", "TeacherCache", "build_cache", "distributed_rank", "list_items", "write_index"]

FORMAT, VERSION = "sam3spec-teacher-cache", 1


@dataclass(frozen=True)
class CacheOptions:
    """What to cache (saved in ``cache.json``; a resumed run must use the same options).

    Attributes:
        levels: FPN levels stored per image (0 = finest; SAM 3 at 1008 px: 288, 144, 72, 36).
        video_level: FPN level stored per annotated video frame (3: ``[256, 18, 18]`` at 504 px).
        boxes_per_image: GT-box prompts per image (SA-1B boxes), besides the SA-Co phrases.
        points_per_image: GT-point prompts per image (SA-1B ``point_coords``).
        mask_queries: masks kept per prompt (the best-scoring queries; all logits/boxes are kept).
        shard_size: items per shard.
        limit: cache only the first ``limit`` images and videos (smoke runs).
        seed: prompt selection seed.
        resolution: teacher input size (None: the teacher's own).
        teacher: which teacher (its folder or hub id, as given).
        data: the dataset folder.
        score_offset: the teacher's calibrated query-logit offset (``teacher.json``), filled in by
            :func:`build_cache` from the teacher: part of what was cached, so a cache resumed after
            a recalibration is refused, not mixed.
    """

    levels: tuple[int, ...] = (2,)
    video_level: int = 3
    boxes_per_image: int = 2
    points_per_image: int = 2
    mask_queries: int = 16
    shard_size: int = 16
    limit: int | None = None
    seed: int = 0
    resolution: int | None = None
    teacher: str = ""
    data: str = ""
    score_offset: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return json.loads(json.dumps(asdict(self)))


@dataclass
class WorkItem:
    """One cache item: an image (with its phrases) or a video."""

    key: str
    kind: str  # "image" | "video"
    source: Any
    phrases: list[str] = field(default_factory=list)


def list_items(data: Path, limit: int | None) -> list[WorkItem]:
    """Images (SA-1B layout) and videos (SA-V) under ``data``, in a fixed order. For a data root
    (:mod:`sam3spec.data.layout`) its train split, each image with the phrases its SA-Co train
    files ask about it."""
    from sam3spec.data.layout import DataLayout
    from sam3spec.data.sa1b import find_pairs
    from sam3spec.data.sav import find_videos

    layout = DataLayout.of(data)
    image_root, video_root, phrases = data, data, {}
    if layout.is_data_root():
        image_root, video_root = layout.sa1b_train, layout.sav_train
        for saco_file in layout.saco_files("train"):
            for entry in json.loads(saco_file.read_text())["images"]:
                phrases.setdefault(Path(entry["file_name"]).name, []).append(entry["text_input"])
    images = [
        WorkItem(f"image:{image.stem}", "image", (image, annotation), phrases.get(image.name, []))
        for image, annotation in find_pairs(image_root)
    ]
    videos = [WorkItem(f"video:{video.video_id}", "video", video) for video in find_videos(video_root)]
    if limit is not None:
        images, videos = images[:limit], videos[:limit]
    return images + videos


def _image_prompts(
    sample: dict, phrases: list[str], options: CacheOptions, rng: np.random.Generator
) -> list[dict]:
    prompts = [{"type": "text", "text": text} for text in phrases]
    count = len(sample["boxes_xyxy"])
    for index in sorted(rng.permutation(count)[: options.boxes_per_image].tolist()):
        prompts.append(
            {"type": "box", "box_xyxy": [round(v, 6) for v in sample["boxes_xyxy"][index].tolist()]}
        )
    clickable = [i for i in range(count) if bool((sample["point_coords_xy"][i] >= 0).all())]
    for index in sorted(rng.permutation(clickable)[: options.points_per_image].tolist()):
        prompts.append(
            {"type": "point", "points_xy": [[round(v, 6) for v in sample["point_coords_xy"][index].tolist()]]}
        )
    return prompts


@torch.no_grad()
def cache_image(teacher, sample: dict, prompts: list[dict], options: CacheOptions) -> dict[str, torch.Tensor]:
    """Tensors of one image: ``fpn.<level>`` and ``prompt<j>.<output>`` per prompt."""
    embeddings = teacher.encode_image(teacher.preprocess(sample["image"][None]))
    tensors = {f"fpn.{level}": embeddings.fpn_levels[level][0].half() for level in options.levels}
    for index, prompt in enumerate(prompts):
        if prompt["type"] == "text":
            outputs = teacher.predict(embeddings, text=prompt["text"])
        elif prompt["type"] == "box":
            outputs = teacher.predict(embeddings, boxes=torch.tensor([[prompt["box_xyxy"]]]))
        else:
            outputs = teacher.predict(embeddings, points=torch.tensor([prompt["points_xy"]]))
        scores = outputs.scores()[0].float()
        keep = torch.argsort(scores, descending=True, stable=True)[: options.mask_queries]
        name = f"prompt{index}"
        tensors[f"{name}.pred_logits"] = outputs.pred_logits[0].float()
        tensors[f"{name}.pred_boxes"] = outputs.pred_boxes[0].float()
        tensors[f"{name}.presence_logits"] = outputs.presence_logits[0].float()
        tensors[f"{name}.semantic_seg"] = outputs.semantic_seg[0].half()
        tensors[f"{name}.mask_queries"] = keep
        tensors[f"{name}.pred_masks"] = outputs.pred_masks[0, keep].half()
    return {key: value.detach().cpu().contiguous() for key, value in tensors.items()}


def _video_frames(video) -> tuple[np.ndarray, list[int]]:
    """Annotated frames (``[F, H, W, 3]`` uint8) of an SA-V video and their 24 fps indices."""
    from sam3spec.data.files import read_image
    from sam3spec.data.sav import ANNOTATION_STRIDE, read_manual
    from sam3spec.data.video_io import read_frames

    if video.mp4 is not None:
        masklet, _ = read_manual(video.manual)
        indices = [ANNOTATION_STRIDE * k for k in range(len(masklet))]
        return read_frames(video.mp4, indices), indices
    indices = sorted({int(p.stem) for p in video.masks_dir.glob("*/*.png") if p.stem.isdigit()})
    return np.stack([read_image(video.frames_dir / f"{index:05d}.jpg") for index in indices]), indices


@torch.no_grad()
def cache_video(
    teacher, video, options: CacheOptions, batch: int = 8
) -> tuple[dict[str, torch.Tensor], list[int]]:
    """``fpn.<video_level>`` ``[F, C, h, w]`` fp16 of the annotated frames."""
    frames, indices = _video_frames(video)
    features = []
    for start in range(0, len(frames), batch):
        chunk = torch.from_numpy(np.array(frames[start : start + batch], copy=True)).permute(0, 3, 1, 2)
        features.append(
            teacher.encode_image(teacher.preprocess(chunk)).fpn_levels[options.video_level].half().cpu()
        )
    return {f"fpn.{options.video_level}": torch.cat(features).contiguous()}, indices


def _compute_shard(teacher, items: list[WorkItem], options: CacheOptions) -> tuple[dict, list[dict]]:
    from sam3spec.data.faults import DataFault
    from sam3spec.data.sa1b import read_sa1b

    tensors, described = {}, []
    for item in items:
        try:
            values, description = _compute_item(teacher, item, options, read_sa1b)
        except DataFault as fault:  # bad data is skipped and named, never fatal
            warnings.warn(f"teacher cache: skipping {item.key}: {fault}", stacklevel=2)
            described.append({"key": item.key, "kind": item.kind, "skipped": str(fault)})
            continue
        described.append(description)
        tensors.update({f"{item.key}/{name}": value for name, value in values.items()})
    return tensors, described


def _compute_item(teacher, item: WorkItem, options: CacheOptions, read_sa1b) -> tuple[dict, dict]:
    if item.kind == "video":
        values, frames = cache_video(teacher, item.source, options)
        return values, {"key": item.key, "kind": "video", "frames": frames}
    record = read_sa1b(*item.source)
    height, width = record["image"].shape[:2]
    sample = {
        "image": torch.from_numpy(np.array(record["image"], copy=True)).permute(2, 0, 1),
        "boxes_xyxy": torch.from_numpy(record["boxes_xyxy"]),
        "point_coords_xy": torch.from_numpy(record["point_coords_xy"]),
    }
    digest = int(hashlib.sha256(item.key.encode()).hexdigest()[:8], 16)
    prompts = _image_prompts(sample, item.phrases, options, np.random.default_rng([options.seed, digest]))
    values = cache_image(teacher, sample, prompts, options)
    return values, {"key": item.key, "kind": "image", "size": [height, width], "prompts": prompts}


def build_cache(
    teacher,
    data: str | Path,
    out: str | Path,
    options: CacheOptions,
    rank: int = 0,
    world_size: int = 1,
    progress: bool = True,
    pause: float = 0.0,
) -> dict[str, int]:
    """Cache ``teacher`` outputs for the dataset in ``data`` into ``out`` (resuming if present).

    Args:
        teacher: a :class:`~sam3spec.teacher.protocol.Teacher`.
        data: a data root (its train split is cached, :mod:`sam3spec.data.layout`) or an SA-1B / SA-V folder.
        out: cache folder.
        options: what to cache.
        rank: this process's rank (``torchrun``: ``RANK``); world_size: ``WORLD_SIZE``.
        progress: show a progress bar with ETA.
        pause: seconds to sleep after each shard (lets tests interrupt a run mid-way).

    Returns:
        Counts: ``items``, ``shards``, ``computed`` (shards this call wrote), ``skipped``.
    """
    out = Path(out)
    (out / "shards").mkdir(parents=True, exist_ok=True)
    options = replace(options, score_offset=float(getattr(teacher, "score_offset", 0.0)))
    meta = {"format": FORMAT, "version": VERSION, "options": options.to_dict()}
    meta_path = out / "cache.json"
    if meta_path.is_file():
        existing = json.loads(meta_path.read_text())
        if existing != meta:
            raise ValueError(f"{out} holds a cache made with other options ({meta_path}); use another --out")
    elif rank == 0:
        atomic_write_json(meta, meta_path)
    clear_leftovers(out, rank)
    items = list_items(Path(data), options.limit)
    shards = [items[start : start + options.shard_size] for start in range(0, len(items), options.shard_size)]
    mine = [index for index in range(len(shards)) if index % world_size == rank]
    todo = [index for index in mine if not shard_done(out, index, [item.key for item in shards[index]])]
    bar = tqdm(
        total=len(mine),
        initial=len(mine) - len(todo),
        desc=f"teacher cache (rank {rank})",
        disable=not progress,
    )
    for index in todo:
        tensors, described = _compute_shard(teacher, shards[index], options)
        write_shard(out, index, tensors, described, {"format": FORMAT}, rank)
        bar.update()
        if pause:
            time.sleep(pause)
    bar.close()
    if world_size > 1 and torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.barrier()
    if rank == 0:
        write_index(out, shards)
    return {
        "items": len(items),
        "shards": len(shards),
        "computed": len(todo),
        "skipped": len(mine) - len(todo),
    }


def write_index(out: Path, shards: list[list[WorkItem]]) -> None:
    """``index.json``: every item -> its shard file and description (all shards must be done)."""
    entries = {}
    for index, items in enumerate(shards):
        if not shard_done(out, index, [item.key for item in items]):
            raise RuntimeError(f"shard {index} of {out} is not done; rerun the cache command to finish it")
        sidecar = json.loads((out / "shards" / f"shard_{index:05d}.json").read_text())
        for item in sidecar["items"]:
            entries[item["key"]] = {"shard": f"shards/shard_{index:05d}.safetensors", **item}
    atomic_write_json(
        {"format": FORMAT, "version": VERSION, "num_shards": len(shards), "items": entries},
        out / "index.json",
    )


class TeacherCache:
    """Read a finished cache: ``cache[key]`` -> dict of tensors of that item."""

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        index = self.directory / "index.json"
        if not index.is_file():
            raise FileNotFoundError(
                f"{index} not found: the cache is unfinished (rerun `sam3spec teacher cache`)"
            )
        self.index = json.loads(index.read_text())
        self._shard: tuple[str, dict[str, torch.Tensor]] | None = None

    def __len__(self) -> int:
        return len(self.index["items"])

    def keys(self) -> list[str]:
        return list(self.index["items"])

    def describe(self, key: str) -> dict[str, Any]:
        """The item's description (kind, prompts or frames)."""
        return self.index["items"][key]

    def __getitem__(self, key: str) -> dict[str, torch.Tensor]:
        shard = self.index["items"][key]["shard"]
        if self._shard is None or self._shard[0] != shard:
            self._shard = (shard, load_file(str(self.directory / shard)))
        prefix = key + "/"
        return {
            name[len(prefix) :]: value for name, value in self._shard[1].items() if name.startswith(prefix)
        }

    def __iter__(self) -> Iterator[str]:
        return iter(self.keys())
