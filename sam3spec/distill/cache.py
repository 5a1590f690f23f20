"""Cache the teacher's targets once per run, so epochs cost only the student.

On the concept world the teacher's forward costs several times the tiny student's training step;
with a fixed set of prompt *draws* (draw ``d`` = the prompts the dataset gives at epoch ``d``;
epoch ``e`` trains on draw ``e % draws``) the teacher runs once per (image, prompt) and epoch after
epoch reads the stored targets. Targets are stored on the student's grid (float16 masks and
features), in one safetensors file per draw plus one for the per-image FPN targets (shared by all
prompts and draws of an image)::

    CACHE_DIR/cache.json              what was cached (key, counts); must match to be reused
    CACHE_DIR/draw_000.safetensors    per sample: logits, boxes, masks, ..., prompt fingerprint
    CACHE_DIR/features.safetensors    per image: FPN levels (Phase 1 only)

Every file is written to a temporary name and renamed; ``cache.json`` last, so a cache without it
is unfinished and rebuilt. Lookups check a fingerprint of each sample's prompt, so a cache can
never silently serve targets for other prompts.

Why not the teacher cache (:mod:`sam3spec.teacher.cache`): it stores the teacher's outputs
for its own prompt set (SA-Co phrases, SA-1B boxes and clicks) at the teacher's resolution,
without the DETR-encoder output Phase 1 needs; this cache stores exactly the prompts the stage's
sampler draws, resized for the student.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from tqdm import tqdm

from sam3spec.atomic import atomic_write_json
from sam3spec.data.loader import collate_samples
from sam3spec.distill.targets import Targets, TeacherTargets, image_key, pad_queries

META = "cache.json"
FORMAT = "sam3spec-distill-targets"


def prompt_fingerprint(batch: dict[str, Any], index: int) -> int:
    """A 62-bit hash of sample ``index``'s image, prompt type, text, points and boxes."""
    parts = [
        image_key(batch, index),
        batch["prompt_type"][index],
        batch["text"][index],
        repr([round(v, 5) for v in batch["points_xy"][index].flatten().tolist()]),
        repr(batch["point_labels"][index].tolist()),
        repr([round(v, 5) for v in batch["prompt_boxes_xyxy"][index].flatten().tolist()]),
        repr(batch["prompt_box_labels"][index].tolist()),
    ]
    return int(hashlib.sha256("|".join(map(str, parts)).encode()).hexdigest()[:15], 16)


def _save(tensors: dict[str, torch.Tensor], path: Path) -> None:
    temporary = path.with_name(f".{path.name}.tmp")
    save_file({key: value.contiguous() for key, value in tensors.items()}, str(temporary))
    os.replace(temporary, path)


def build_target_cache(
    builder: TeacherTargets,
    dataset,
    directory: str | Path,
    draws: int,
    key: str,
    batch_size: int = 32,
    progress: bool = True,
) -> TargetCache:
    """Run the teacher over ``draws`` prompt draws of ``dataset`` into ``directory`` (reused when
    ``cache.json`` holds the same ``key``).

    Args:
        builder: computes targets for a batch (its ``features`` decides whether FPN / encoder
            targets are stored).
        dataset: an :class:`~sam3spec.distill.data.IndexedDataset` producing ``teacher_image``.
        directory: cache folder.
        draws: prompt draws (epochs 0 .. draws-1 of the dataset).
        key: identity of everything the targets depend on (teacher, data, prompts, geometry).
        batch_size: samples per teacher call group (consecutive samples share images).
        progress: show a progress bar.
    """
    directory = Path(directory)
    meta_path = directory / META
    if meta_path.is_file():
        import json

        if json.loads(meta_path.read_text()).get("key") == key:
            return TargetCache(directory)
    directory.mkdir(parents=True, exist_ok=True)
    count = len(dataset)
    image_rows: dict[str, int] = {}
    image_levels: list[list[torch.Tensor]] = []
    bar = tqdm(total=draws * count, desc="teacher targets", disable=not progress)
    for draw in range(draws):
        dataset.set_epoch(draw)
        rows: list[Targets | None] = [None] * count
        fingerprints = torch.zeros(count, dtype=torch.long)
        image_of = torch.full((count,), -1, dtype=torch.long)
        for start in range(0, count, batch_size):
            batch = collate_samples(
                [dataset[index] for index in range(start, min(count, start + batch_size))]
            )
            bar.update(min(count, start + batch_size) - start)
            if not batch["batch_size"]:
                continue
            targets = builder(batch)
            for position, index in enumerate(batch["index"]):
                one = targets.select(torch.tensor([position]))
                fingerprints[index] = prompt_fingerprint(batch, position)
                image = image_key(batch, position)
                if image not in image_rows:
                    image_rows[image] = len(image_rows)
                    image_levels.append(
                        [] if one.fpn_levels is None else [level.half() for level in one.fpn_levels]
                    )
                image_of[index] = image_rows[image]
                one.fpn_levels = None
                rows[index] = one
        present = [row for row in rows if row is not None]
        if not present:
            raise RuntimeError(f"no usable samples in the dataset for the teacher cache {directory}")
        queries = max(row.logits.shape[1] for row in present)
        blank = pad_queries(present[0], queries).map(torch.zeros_like)
        stacked = Targets.cat([pad_queries(row, queries) if row is not None else blank for row in rows])
        tensors = {
            "logits": stacked.logits,
            "boxes_xyxy": stacked.boxes_xyxy,
            "mask_probs": stacked.mask_probs.half(),
            "valid": stacked.valid,
            "presence_logits": stacked.presence_logits,
            "semantic_probs": stacked.semantic_probs.half(),
            "fingerprint": fingerprints,
            "image_row": image_of,
            "present": torch.tensor([row is not None for row in rows]),
        }
        if stacked.encoder_memory is not None:
            tensors["encoder_memory"] = stacked.encoder_memory.half()
            tensors["has_encoder"] = stacked.has_encoder
        if stacked.text_features is not None:
            tensors["text_features"] = stacked.text_features.half()
            tensors["text_valid"] = stacked.text_valid
        _save(tensors, directory / f"draw_{draw:03d}.safetensors")
    bar.close()
    if image_levels and image_levels[0]:
        features = {
            f"fpn.{level}": torch.cat([levels[level] for levels in image_levels])
            for level in range(len(image_levels[0]))
        }
        _save(features, directory / "features.safetensors")
    atomic_write_json({"format": FORMAT, "key": key, "draws": draws, "samples": count}, meta_path)
    return TargetCache(directory)


class TargetCache:
    """Read a finished target cache; :meth:`lookup` gives :class:`Targets` for a batch."""

    def __init__(self, directory: str | Path) -> None:
        import json

        self.directory = Path(directory)
        meta = json.loads((self.directory / META).read_text())
        self.draws = int(meta["draws"])
        self._draws: dict[int, dict[str, torch.Tensor]] = {}
        features = self.directory / "features.safetensors"
        self.features = load_file(str(features)) if features.is_file() else None

    def draw(self, draw: int) -> dict[str, torch.Tensor]:
        if draw not in self._draws:
            self._draws[draw] = load_file(str(self.directory / f"draw_{draw:03d}.safetensors"))
        return self._draws[draw]

    def lookup(self, batch: dict[str, Any], epoch: int) -> Targets:
        """Targets of the samples in ``batch`` (which must carry ``index``) at ``epoch``.

        Raises:
            ValueError: a sample's prompt differs from the cached one (other data or prompts).
        """
        stored = self.draw(epoch % self.draws)
        index = torch.tensor(batch["index"], dtype=torch.long)
        for position, sample in enumerate(batch["index"]):
            if not bool(stored["present"][sample]) or int(
                stored["fingerprint"][sample]
            ) != prompt_fingerprint(batch, position):
                raise ValueError(
                    f"teacher target cache {self.directory}: sample {sample} (epoch {epoch}) has another prompt "
                    "than the cached one; the cache was built for other data, prompts or seed"
                )
        levels = None
        if self.features is not None:
            rows = stored["image_row"][index]
            levels = [self.features[f"fpn.{level}"][rows].float() for level in range(len(self.features))]
        encoder = stored.get("encoder_memory")
        text = stored.get("text_features")
        return Targets(
            logits=stored["logits"][index],
            boxes_xyxy=stored["boxes_xyxy"][index],
            mask_probs=stored["mask_probs"][index].float(),
            valid=stored["valid"][index],
            presence_logits=stored["presence_logits"][index],
            semantic_probs=stored["semantic_probs"][index].float(),
            fpn_levels=levels,
            encoder_memory=None if encoder is None else encoder[index].float(),
            has_encoder=None if encoder is None else stored["has_encoder"][index],
            text_features=None if text is None else text[index].float(),
            text_valid=None if text is None else stored["text_valid"][index],
        )
