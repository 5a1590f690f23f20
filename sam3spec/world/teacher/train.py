"""Train the concept-world teacher: a small SAM 3 detector + point tracker, from scratch, on CPU.

One flat loop (nanoGPT style). Each step draws ``images_per_step`` fresh concept-world images under
the train split rule (:mod:`sam3spec.world.teacher.data`), runs the ViT once per image, the
detector once per (image, phrase) pair and the tracker once per clicked object, and takes one
AdamW step on the summed losses (:mod:`sam3spec.world.teacher.losses`). The tracker shares the
detector's vision encoder but does not train it (its features are detached), so point prompts
cannot degrade the concept detector.

Reproducible from the seed: model init, data and clicks all derive from it. Resumable: a
checkpoint (model, optimiser, schedule, step) is written atomically every ``checkpoint_every``
steps; rerunning the same command continues from it and sees the same data it would have seen.
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from sam3spec.eval.metrics import format_metric
from sam3spec.teacher.architecture import TeacherArchitecture
from sam3spec.world.config import WorldConfig
from sam3spec.world.teacher import WORLD
from sam3spec.world.teacher.data import (
    WorldImage,
    attribute_labels,
    boxes_xyxy,
    mask_targets,
    to_pixels,
    training_images,
    validation_images,
)
from sam3spec.world.teacher.init import anchor_centres, initialise_for_training
from sam3spec.world.teacher.losses import (
    LossWeights,
    WordAlignment,
    detector_loss,
    tracker_loss,
    word_alignment_loss,
)

CLICK_STREAM = 103
ALIGNED_LEVEL = 2  # FPN level (1x the ViT grid) that Sam3Model's DETR encoder reads


@dataclass(frozen=True)
class WorldTrainConfig:
    """Everything a concept-world teacher run depends on (saved next to its weights)."""

    seed: int = 0
    steps: int = 7200
    images_per_step: int = 6
    phrases_per_image: int = 4
    clicks_per_image: int = 2
    learning_rate: float = 8e-4
    warmup_steps: int = 150
    decay_fraction: float = 0.2
    final_lr_fraction: float = 0.02
    weight_decay: float = 0.01
    clip_norm: float = 1.0
    checkpoint_every: int = 100
    log_every: int = 10
    validate_every: int = 400
    validation_images: int = 24
    threads: int = 2
    init_from: str | None = None
    # Detector mask / semantic targets at this multiple of the mask resolution (the logits are
    # upsampled bilinearly, as the evaluation does, before the loss); 1 = the shipped 7,200-step recipe.
    mask_target_scale: int = 1
    weights: LossWeights = field(default_factory=lambda: LossWeights(semantic_dice=2.0, word_alignment=1.0))
    arch: TeacherArchitecture = WORLD
    world: WorldConfig = field(default_factory=WorldConfig)

    def __post_init__(self) -> None:
        if self.mask_target_scale not in (1, 2, 4):
            raise ValueError(f"mask_target_scale must be 1, 2 or 4, got {self.mask_target_scale}")

    def to_dict(self) -> dict:
        return json.loads(json.dumps(asdict(self)))


def decay_start(config: WorldTrainConfig) -> int:
    """First step of the final decay."""
    return max(config.warmup_steps, int(round(config.steps * (1 - config.decay_fraction))))


def learning_rate_at(step: int, config: WorldTrainConfig) -> float:
    """Warm-up, stable, decay: linear warm-up, constant peak, then a cosine decay to
    ``final_lr_fraction`` over the last ``decay_fraction`` of the steps.

    Until the decay starts the rate does not depend on ``steps``, so a run can be resumed with
    fewer total steps (before its new decay start) and still equal a fresh run of that length.
    """
    if step < config.warmup_steps:
        return config.learning_rate * (step + 1) / config.warmup_steps
    start = decay_start(config)
    if step < start:
        return config.learning_rate
    progress = min(1.0, (step - start) / max(1, config.steps - start))
    floor = config.final_lr_fraction
    return config.learning_rate * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress)))


def _clicks(images: list[WorldImage], rng: np.random.Generator, per_image: int, size: int):
    """Up to ``per_image`` objects per image, one positive click uniformly inside each visible mask.

    Returns:
        ``(image index [T], click (x, y) in model pixels [T, 2], target masks [T, H, W] bool)``.
    """
    owners, clicks, targets = [], [], []
    for index, image in enumerate(images):
        masks = image.object_masks
        chosen = rng.choice(len(masks), size=min(per_image, len(masks)), replace=False) if len(masks) else []
        for obj in chosen:
            rows, cols = np.nonzero(masks[obj])
            pick = rng.integers(len(rows))
            scale = size / masks.shape[-1]
            owners.append(index)
            clicks.append([cols[pick] * scale, rows[pick] * scale])
            targets.append(masks[obj])
    return torch.tensor(owners), torch.tensor(clicks, dtype=torch.float32), np.stack(targets)


def train_step(
    detector,
    tracker,
    images: list[WorldImage],
    clicks_rng,
    config: WorldTrainConfig,
    tokenizer,
    aligner: WordAlignment | None = None,
):
    """Loss of one step (forward only; the caller steps the optimiser)."""
    from sam3spec.teacher.hf_adapter import (
        detector_forward,
        encode_detector_image,
        tracker_forward,
        tracker_levels_from_fpn,
    )

    arch = config.arch
    embeddings = encode_detector_image(
        detector, to_pixels([image.image for image in images], arch.image_size)
    )
    owners, texts, target_boxes, target_masks = [], [], [], []
    for index, image in enumerate(images):
        for text, instances in zip(image.texts, image.instances, strict=True):
            owners.append(index)
            texts.append(text)
            target_boxes.append(
                boxes_xyxy(torch.from_numpy(instances)) if len(instances) else torch.zeros(0, 4)
            )
            target_masks.append(mask_targets(instances, arch.mask_size * config.mask_target_scale))
    tokens = tokenizer(texts)
    outputs, layers = detector_forward(
        detector,
        embeddings.select(torch.tensor(owners)),
        tokens["input_ids"],
        tokens["attention_mask"],
        return_all_layers=True,
    )
    loss, parts = detector_loss(
        outputs, layers, target_boxes, target_masks, config.weights, anchors=anchor_centres(detector)
    )
    if aligner is not None and config.weights.word_alignment:
        alignment = _word_alignment(
            aligner, detector, embeddings.fpn_levels[ALIGNED_LEVEL], images, config.world, tokenizer
        )
        loss = loss + config.weights.word_alignment * alignment
        parts["word_alignment"] = float(alignment.detach())
    if tracker is not None and config.clicks_per_image > 0:
        click_owners, clicks, click_masks = _clicks(
            images, clicks_rng, config.clicks_per_image, arch.image_size
        )
        levels = tracker_levels_from_fpn(tracker, [level.detach() for level in embeddings.fpn_levels])
        levels = [level.index_select(0, click_owners) for level in levels]
        masks, iou, objects = tracker_forward(tracker, levels, clicks[:, None], torch.ones(len(clicks), 1))
        extra, tracker_parts = tracker_loss(masks, iou, objects, mask_targets(click_masks, arch.mask_size))
        loss = loss + config.weights.tracker * extra
        parts.update(tracker_parts)
    return loss, parts


def attribute_vocabularies(world: WorldConfig) -> dict[str, tuple[list[str], list[str]]]:
    """Per attribute, its words and the training-legal phrases whose first word token stands for
    each ("red shape", "circle", "large shape"): where the words sit in the phrases asked most."""
    return {
        "colour": (list(world.colours), [f"{colour} shape" for colour in world.colours]),
        "shape": (list(world.shapes), list(world.shapes)),
        "size": (list(world.sizes), [f"{size} shape" for size in world.sizes]),
    }


def _word_alignment(aligner, detector, level, images, world: WorldConfig, tokenizer) -> torch.Tensor:
    """Word-alignment loss of one step (:func:`~sam3spec.world.teacher.losses.word_alignment_loss`)
    summed over the colour, shape and size vocabularies; ``level`` ``[N, C, h, w]``.

    Each word's text feature is the projected feature of the first token of its phrase (a word
    of two BPE tokens, "cyan", is represented by its first: the causal text encoder has seen
    only that much of it there)."""
    total = level.sum() * 0.0
    for words, phrases in attribute_vocabularies(world).values():
        tokens = tokenizer(phrases)
        features = detector.get_text_features(
            input_ids=tokens["input_ids"], attention_mask=tokens["attention_mask"], return_dict=True
        ).pooler_output[:, 1]  # [K, C]
        logits = aligner(level, features[None].expand(len(images), -1, -1))  # [N, K, h, w]
        labels = torch.stack([attribute_labels(image, words, level.shape[-1]) for image in images])
        total = total + word_alignment_loss(logits, labels)
    return total


def trainable_parameters(detector, tracker) -> list[torch.nn.Parameter]:
    """What the teacher run optimises: the detector except its reference boxes (kept on their
    grid: they are the anchors of the matching, :func:`anchor_centres`), and the tracker except
    the vision encoder it shares with the detector."""
    detector.detr_decoder.reference_points.weight.requires_grad_(False)
    return [p for p in detector.parameters() if p.requires_grad] + [
        p for n, p in tracker.named_parameters() if not n.startswith("vision_encoder.")
    ]


def start_from(detector, tracker, teacher_dir: str | Path) -> None:
    """Copy a trained teacher's weights (sam3spec layout, e.g. the shipped one) into freshly built
    models: a fine-tuning run starts from them instead of from ``initialise_for_training``.

    Raises:
        TeacherLoadError: the folder is not a teacher of this architecture (names the keys).
    """
    from sam3spec.teacher.loading import TeacherLoadError, load_teacher

    source = load_teacher(teacher_dir, dtype=torch.float32)
    for name, model, trained in (
        ("detector", detector, source.detector),
        ("tracker", tracker, source.tracker),
    ):
        if trained is None:
            raise TeacherLoadError(f"{teacher_dir} has no {name}; a world teacher run needs both")
        try:
            model.load_state_dict(trained.state_dict())
        except RuntimeError as error:  # shape / key mismatch: another architecture
            raise TeacherLoadError(
                f"{teacher_dir}/{name} does not fit the run's architecture: {error}"
            ) from error


def _atomic_save(payload: dict, path: Path) -> None:
    temporary = path.with_suffix(".tmp")
    torch.save(payload, temporary)
    os.replace(temporary, path)


def validate(detector, images: list[WorldImage], tokenizer) -> dict[str, float]:
    """Metrics on in-memory eval-like images (monitoring only; the acceptance figure is
    :func:`sam3spec.world.evaluate.evaluate_world` on a generated world's files)."""
    from sam3spec.teacher.hf_adapter import HFTeacher
    from sam3spec.world.evaluate import score_pairs

    was_training = detector.training
    detector.eval()
    summary, _ = score_pairs(
        HFTeacher(detector, None, tokenizer), ((i.image, i.texts, i.instances) for i in images)
    )
    detector.train(was_training)
    return summary


def train_world_teacher(
    out: str | Path, config: WorldTrainConfig = WorldTrainConfig(), progress: bool = True
) -> Path:
    """Train (or resume) a concept-world teacher in ``out``; returns the saved teacher folder.

    ``out`` receives ``checkpoint.pt`` (resumable state), ``train_log.jsonl`` and, at the end,
    ``teacher/`` (``detector/`` + ``tracker/`` in transformers' ``save_pretrained`` layout and
    ``teacher.json``), loadable with :func:`sam3spec.teacher.load_teacher`.
    """
    from sam3spec.teacher.hf_models import build_models
    from sam3spec.teacher.loading import save_teacher
    from sam3spec.teacher.tokenizer import default_tokenizer

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(config.threads)
    tokenizer = default_tokenizer()
    detector, tracker = build_models(config.arch, seed=config.seed)
    initialise_for_training(detector)
    if config.init_from is not None:
        start_from(detector, tracker, config.init_from)
    parameters = trainable_parameters(detector, tracker)
    aligner = WordAlignment() if config.weights.word_alignment else None
    if aligner is not None:
        parameters += list(aligner.parameters())
    optimizer = torch.optim.AdamW(parameters, lr=config.learning_rate, weight_decay=config.weight_decay)
    start = 0
    checkpoint = out / "checkpoint.pt"
    if checkpoint.is_file():
        state = torch.load(checkpoint, map_location="cpu", weights_only=True)
        saved = {key: value for key, value in state["config"].items() if key != "steps"}
        if saved != {key: value for key, value in config.to_dict().items() if key != "steps"}:
            raise ValueError(
                f"{checkpoint} was written by a different configuration; use another --out or delete it"
            )
        saved_start = decay_start(replace(config, steps=state["config"]["steps"]))
        if state["config"]["steps"] != config.steps and int(state["step"]) > min(
            saved_start, decay_start(config)
        ):
            raise ValueError(
                f"{checkpoint} is at step {state['step']}, past a learning-rate decay start (saved run "
                f"{saved_start}, --steps {config.steps}: {decay_start(config)}): resuming with another "
                "length would not equal a fresh run"
            )
        detector.load_state_dict(state["detector"])
        tracker.load_state_dict(state["tracker"])
        if aligner is not None:
            aligner.load_state_dict(state["aligner"])
        optimizer.load_state_dict(state["optimizer"])
        start = int(state["step"])
    detector.train()
    tracker.train()
    validation = (
        validation_images(config.seed, config.validation_images, config.world)
        if config.validate_every
        else []
    )
    log = (out / "train_log.jsonl").open("a", encoding="utf-8")
    bar = tqdm(total=config.steps, initial=start, desc="teacher", disable=not progress)
    last = time.perf_counter()
    for step in range(start, config.steps):
        for group in optimizer.param_groups:
            group["lr"] = learning_rate_at(step, config)
        images = training_images(
            config.seed, step, config.images_per_step, config.phrases_per_image, config.world
        )
        clicks_rng = np.random.default_rng([config.seed, CLICK_STREAM, step])
        loss, parts = train_step(detector, tracker, images, clicks_rng, config, tokenizer, aligner)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        norm = torch.nn.utils.clip_grad_norm_(parameters, config.clip_norm)
        optimizer.step()
        done = step + 1
        bar.update()
        if done % config.log_every == 0:
            now = time.perf_counter()
            record = {
                "step": done,
                "loss": float(loss.detach()),
                "grad_norm": float(norm),
                "lr": learning_rate_at(step, config),
            }
            record.update(parts, seconds_per_step=(now - last) / config.log_every)
            last = now
            log.write(json.dumps(record) + "\n")
            log.flush()
            bar.set_postfix(loss=f"{float(loss.detach()):.3f}")
        if config.validate_every and (done % config.validate_every == 0 or done == config.steps):
            metrics = validate(detector, validation, tokenizer)
            log.write(json.dumps({"step": done, "validation": metrics}) + "\n")
            log.flush()
            bar.write(
                f"step {done}: "
                + ", ".join(f"{k} {format_metric(metrics[k], 3)}" for k in ("mIoU", "presence_f1", "cgF1"))
            )
        if done % config.checkpoint_every == 0 or done == config.steps:
            _atomic_save(
                {
                    "step": done,
                    "config": config.to_dict(),
                    "detector": detector.state_dict(),
                    "tracker": tracker.state_dict(),
                    "aligner": aligner.state_dict() if aligner is not None else {},
                    "optimizer": optimizer.state_dict(),
                },
                checkpoint,
            )
    bar.close()
    log.close()
    detector.eval()
    tracker.eval()
    return save_teacher(
        out / "teacher", detector, tracker, {"kind": "concept-world", "train_config": config.to_dict()}
    )
