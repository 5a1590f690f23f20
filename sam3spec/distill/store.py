"""A stage's teacher targets on disk: what the distillation losses read, sharded, read lazily.

``sam3spec teacher cache --stage NAME`` (:mod:`sam3spec.distill.store_build`) runs the teacher
once over the stage's training set (its samples and prompt draws, exactly as training draws
them) and stores the targets in the shard container of :mod:`sam3spec.teacher.shards`;
``sam3spec train stage --teacher-cache DIR`` reads them here instead of running the teacher
(``--no-cache``) or building a per-run copy (:mod:`sam3spec.distill.cache`, whose tensors all sit
in memory: 17.7 MB per sample at the seed student's grid with features). Training memory does
not grow with the dataset: a shard is memory-mapped and a sample read when its batch comes
(:class:`~sam3spec.teacher.shards.ShardReader`); what stays in memory is two ``int32`` per sample
(``index.safetensors``: the sample's shard and image).

**What is stored** (everything on the student's grid, as the losses read it):

* per sample and draw (``s<index>.d<draw>.<name>``): the teacher's ``top_k`` valid queries by
  score: ``logits`` ``[k]`` and ``boxes`` ``[k, 4]`` (float32), ``masks`` ``[k, h, w]``
  (probabilities); ``presence`` ``[1]``, ``semantic`` ``[1, h, w]``, the prompt ``fingerprint``;
  with feature losses the DETR-encoder map ``encoder`` ``[C, h_e, w_e]`` (+ ``has_encoder``) and
  the text tokens ``text`` ``[T, C]`` (+ ``text_valid``);
* per image (``g<group>.fpn<j>``): the distilled FPN levels ``[C, H_l, W_l]`` (stored once, shared
  by the image's prompts).

``top_k`` defaults to the student's query count: the matcher keeps exactly the ``Q_s`` best valid
teacher queries (``distill/task.py``), so the losses from the cache equal the online ones up to the
storage precision. ``precision``: ``float16`` (features and probabilities as fp16) or ``int8``
(features as int8 with a float32 scale per channel, ``<name>.scale``; probabilities as uint8 /
255): half the bytes, an error below 1% of each channel's largest value.

``index.json`` records what the targets depend on (:func:`identity`): the teacher's input size,
the student's grid, the distilled levels, prompts, seed, draws, vocabulary and sample count;
:meth:`TargetStore.check` refuses a cache made for another stage with one line naming the first
difference, and every lookup checks the sample's prompt fingerprint.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file

from sam3spec.config import config_to_dict
from sam3spec.distill.cache import prompt_fingerprint
from sam3spec.distill.targets import Targets
from sam3spec.teacher.shards import ShardReader

FORMAT, VERSION = "sam3spec-stage-targets", 1
PRECISIONS = ("float16", "int8")
INDEX, ARRAYS = "index.json", "index.safetensors"
SAMPLE_TENSORS = (
    "logits",
    "boxes",
    "masks",
    "presence",
    "semantic",
    "fingerprint",
    "encoder",
    "encoder.scale",
    "has_encoder",
    "text",
    "text.scale",
    "text_valid",
)


class TeacherCacheMismatch(ValueError):
    """A teacher cache made for other data, prompts, teacher size or student grid (one line)."""


def vocabulary_digest(vocabulary) -> str:
    """Short hash of the text-prompt vocabulary (None: the shipped one)."""
    from sam3spec.data.vocabulary import default_vocabulary

    words = default_vocabulary() if vocabulary is None else tuple(vocabulary)
    return hashlib.sha256("\n".join(words).encode()).hexdigest()[:16]


def identity(stage, options, geometry, samples: int) -> dict[str, Any]:
    """What a stage's targets depend on, beyond the teacher's weights (JSON values)."""
    features = stage.losses.uses_features
    return {
        "teacher_resolution": stage.teacher_resolution,
        "student_grid": {
            "resolution": geometry.resolution,
            "mask_target_size": list(geometry.mask_target_size),
            "level_sizes": [list(size) for size in geometry.level_sizes],
            "encoder_size": list(geometry.encoder_size),
        },
        "fpn_levels": list(stage.fpn_levels) if features else None,
        "prompts": config_to_dict(stage.prompts),
        "seed": stage.seed,
        "prompt_draws": stage.prompt_draws,
        "vocabulary": None if stage.targets == "ground_truth" else vocabulary_digest(options.vocabulary),
        "samples": samples,
    }


def quantize(tensor: torch.Tensor, precision: str, channel_dim: int = 0) -> dict[str, torch.Tensor]:
    """``{"": stored}`` (float16) or ``{"": int8, ".scale": float32 per channel}`` (int8)."""
    if precision == "float16":
        return {"": tensor.half()}
    values = tensor.float()
    other = [dim for dim in range(values.dim()) if dim != channel_dim % values.dim()]
    peak = values.abs().amax(dim=other, keepdim=True) if other else values.abs()
    scale = (peak / 127.0).clamp_min(1e-12)
    stored = (values / scale).round().clamp(-127, 127).to(torch.int8)
    return {"": stored, ".scale": scale.flatten()}


def dequantize(stored: torch.Tensor, scale: torch.Tensor | None, channel_dim: int = 0) -> torch.Tensor:
    if scale is None:
        return stored.float()
    shape = [1] * stored.dim()
    shape[channel_dim % stored.dim()] = -1
    return stored.float() * scale.reshape(shape)


def store_probabilities(probs: torch.Tensor, precision: str) -> torch.Tensor:
    return (
        probs.half()
        if precision == "float16"
        else (probs.float() * 255).round().clamp(0, 255).to(torch.uint8)
    )


def read_probabilities(stored: torch.Tensor) -> torch.Tensor:
    return stored.float() / 255 if stored.dtype == torch.uint8 else stored.float()


def encode_sample(row: Targets, top_k: int, precision: str) -> dict[str, torch.Tensor]:
    """The stored tensors of one sample (``row``: :class:`Targets` of batch 1, FPN levels left out)."""
    logits, valid = row.logits[0].float(), row.valid[0]
    ranked = torch.where(valid, logits, torch.full_like(logits, float("-inf")))
    order = torch.argsort(ranked, descending=True, stable=True)[: min(top_k, int(valid.sum()))]
    tensors = {
        "logits": logits[order],
        "boxes": row.boxes_xyxy[0, order].float(),
        "masks": store_probabilities(row.mask_probs[0, order], precision),
        "presence": row.presence_logits[0].float(),
        "semantic": store_probabilities(row.semantic_probs[0], precision),
    }
    if row.encoder_memory is not None:
        tensors.update({f"encoder{k}": v for k, v in quantize(row.encoder_memory[0], precision).items()})
        tensors["has_encoder"] = row.has_encoder[:1].bool()
    if row.text_features is not None:
        tensors.update({f"text{k}": v for k, v in quantize(row.text_features[0], precision, -1).items()})
        tensors["text_valid"] = row.text_valid[0].bool()
    return {name: value.detach().cpu().contiguous() for name, value in tensors.items()}


def encode_levels(levels: list[torch.Tensor], precision: str) -> dict[str, torch.Tensor]:
    """``fpn<j>`` (+ ``.scale``) of one image's distilled levels (each ``[1, C, H, W]``)."""
    tensors = {}
    for position, level in enumerate(levels):
        tensors.update({f"fpn{position}{k}": v for k, v in quantize(level[0], precision).items()})
    return {name: value.detach().cpu().contiguous() for name, value in tensors.items()}


def _describe(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


class TargetStore:
    """Read a finished stage-target cache (``lookup`` gives :class:`Targets` for a batch)."""

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        meta_path = self.directory / "cache.json"
        if not meta_path.is_file():
            raise FileNotFoundError(
                f"--teacher-cache {self.directory}: no cache.json, not a teacher cache "
                "(make one with `sam3spec teacher cache --stage NAME --data DATA --out DIR`)"
            )
        meta = json.loads(meta_path.read_text())
        if meta.get("format") != FORMAT:
            raise TeacherCacheMismatch(
                f"--teacher-cache {self.directory} holds {meta.get('format')!r}, not a stage's targets "
                "(made without --stage: video features); make one with `sam3spec teacher cache --stage NAME`"
            )
        index = self.directory / INDEX
        if not index.is_file():
            raise FileNotFoundError(
                f"--teacher-cache {self.directory}: {INDEX} not found, the cache is unfinished "
                "(rerun `sam3spec teacher cache` with the same options, on every rank, to finish it)"
            )
        self.index = json.loads(index.read_text())
        arrays = load_file(str(self.directory / ARRAYS))
        self.shard_of, self.group_of = arrays["shard"], arrays["group"]
        self.draws = int(self.index["identity"]["prompt_draws"])
        self.reader = ShardReader(self.directory)

    @property
    def identity(self) -> dict[str, Any]:
        return self.index["identity"]

    @property
    def widths(self) -> tuple[list[int], int, int | None] | None:
        """``([teacher width per distilled level], encoder width, text width or None)``, or None
        when the cache holds no feature targets."""
        widths = self.index.get("widths")
        return None if widths is None else (list(widths[0]), int(widths[1]), widths[2])

    def check(self, stage, expected: dict[str, Any]) -> None:
        """Refuse (one line) a cache whose :func:`identity` differs from ``expected`` (the stage's).

        A stage without feature losses reads a cache with them (they are not read); one with
        feature losses needs them at its levels.
        """
        cached = self.identity
        for name, wanted in expected.items():
            have = cached.get(name)
            if name == "fpn_levels" and wanted is None:
                continue
            if _describe(have) != _describe(wanted):
                what = {
                    "teacher_resolution": "teacher resolution (px; null: the teacher's own)",
                    "fpn_levels": "distilled FPN levels (null: no feature targets)",
                }.get(name, name.replace("_", " "))
                raise TeacherCacheMismatch(
                    f"--teacher-cache {self.directory} was made with {what} {_describe(have)}, but stage "
                    f"{stage.name!r} needs {_describe(wanted)}: make a cache for this stage "
                    f"(`sam3spec teacher cache --stage {stage.name} ...` with the same --set / --resolution)"
                )

    def _sample(self, index: int, draw: int) -> dict[str, torch.Tensor]:
        shard = int(self.shard_of[index])
        if shard < 0:
            raise TeacherCacheMismatch(
                f"--teacher-cache {self.directory}: sample {index} was skipped when cached"
            )
        prefix = f"s{index}.d{draw}."
        return {
            name: self.reader.get(shard, prefix + name)
            for name in SAMPLE_TENSORS
            if self.reader.has(shard, prefix + name)
        }

    def _levels(self, index: int) -> list[torch.Tensor]:
        shard, group = int(self.shard_of[index]), int(self.group_of[index])
        levels = []
        for position in range(len(self.identity["fpn_levels"])):
            stem = f"g{group}.fpn{position}"
            scale = (
                self.reader.get(shard, stem + ".scale") if self.reader.has(shard, stem + ".scale") else None
            )
            levels.append(dequantize(self.reader.get(shard, stem), scale)[None])
        return levels

    def lookup(self, batch: dict[str, Any], epoch: int) -> Targets:
        """Targets of the samples in ``batch`` (which carries ``index``) at ``epoch`` (draw
        ``epoch % prompt_draws``), on the CPU.

        Raises:
            TeacherCacheMismatch: a sample is not in the cache or was cached with another prompt.
        """
        draw = epoch % self.draws
        features = self.identity["fpn_levels"] is not None
        rows, levels_of = [], {}
        for position, index in enumerate(batch["index"]):
            if not 0 <= index < len(self.shard_of):
                raise TeacherCacheMismatch(f"--teacher-cache {self.directory} holds no sample {index}")
            stored = self._sample(index, draw)
            if "fingerprint" not in stored or int(stored["fingerprint"][0]) != prompt_fingerprint(
                batch, position
            ):
                raise TeacherCacheMismatch(
                    f"--teacher-cache {self.directory}: sample {index} (epoch {epoch}) has another prompt than "
                    "the cached one; the cache was made for other data, prompts or seed"
                )
            count = stored["logits"].shape[0]
            row = Targets(
                logits=stored["logits"][None],
                boxes_xyxy=stored["boxes"][None],
                mask_probs=read_probabilities(stored["masks"])[None],
                valid=torch.ones(1, count, dtype=torch.bool),
                presence_logits=stored["presence"][None],
                semantic_probs=read_probabilities(stored["semantic"])[None],
            )
            if features:
                group = int(self.group_of[index])
                if group not in levels_of:
                    levels_of[group] = self._levels(index)
                row.fpn_levels = levels_of[group]
                row.encoder_memory = dequantize(stored["encoder"], stored.get("encoder.scale"))[None]
                row.has_encoder = stored["has_encoder"]
                if "text" in stored:
                    row.text_features = dequantize(stored["text"], stored.get("text.scale"), -1)[None]
                    row.text_valid = stored["text_valid"][None]
            rows.append(row)
        return Targets.cat(rows)
