"""Where a stage's targets come from, and what identifies a run.

:func:`target_source` returns ``targets(batch, epoch) -> Targets``: ground truth, the teacher's
targets read from a teacher cache (:mod:`sam3spec.distill.store`) or cached once per run
(:mod:`sam3spec.distill.cache`; rank 0 builds, the others wait), the teacher run on every batch, or the student's own outputs (``targets="self"``: a frozen copy made
before training). :func:`stage_hash` names everything that fixes a run's trajectory,
so a resume or a reused cache can be checked against it.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import torch
from torch import nn

from sam3spec.config import config_to_dict
from sam3spec.data.sources import DataSource, TrainingDataError, data_sources, training_files
from sam3spec.distill import runtime
from sam3spec.distill.options import RunOptions
from sam3spec.distill.stage_data import stage_dataset
from sam3spec.distill.stages import StageConfig
from sam3spec.distill.targets import ground_truth_targets


def file_identity(path: Path) -> list:
    """Cheap identity of a file tree (names, sizes, mtimes) for cache keys."""
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    return [[str(p), p.stat().st_size, int(p.stat().st_mtime)] for p in files[:2000]]


def annotation_files(sources: list[DataSource]) -> list[Path]:
    """The SA-Co files of image-stage roots (none for SA-1B, for a video stage's SA-V folder, or
    for a root that is no training data)."""
    paths = []
    for source in sources:
        try:
            paths += training_files(source.root).annotation_files()
        except TrainingDataError:
            continue  # not image training data (a video stage's SA-V folder): nothing to name
    return paths


def stage_hash(stage: Any, options: RunOptions, teacher: Path | None) -> str:
    """Hash of everything that fixes a run's trajectory (a resume must match it).

    Args:
        stage: the stage (a :class:`StageConfig`, or a stage kind's dataclass holding one: all of
            its fields count).
        options: the run's options (data roots and weights, init, pretrained weights, limit, cached
            targets; a vocabulary, a video stage's phrases and teacher cache when given).
        teacher: the teacher folder, or None.
    """
    sources = data_sources(options.data)
    data: str | list = str(Path(sources[0].root).resolve())
    if len(sources) > 1:
        data = [[str(Path(source.root).resolve()), source.weight] for source in sources]
    payload = {
        "stage": _keyed(config_to_dict(stage)),
        "data": data,
        "annotations": [file_identity(path) for path in annotation_files(sources)],
        "teacher": None if teacher is None else file_identity(teacher),
        "init": None if options.init is None else file_identity(Path(options.init) / "model.safetensors"),
        "pretrained": [
            None if path is None else file_identity(Path(path))
            for path in (options.pretrained_backbone, options.pretrained_text)
        ],
        "limit": options.limit,
        "cached": options.cache_targets,
    }
    if options.vocabulary is not None:
        payload["vocabulary"] = hashlib.sha256("\n".join(options.vocabulary).encode()).hexdigest()
    if options.phrases:
        payload["phrases"] = {video: list(names) for video, names in options.phrases.items()}
    if options.teacher_cache is not None:
        payload["teacher_cache"] = file_identity(Path(options.teacher_cache) / "cache.json")
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


# Stage fields added after runs were keyed: left out of the key at their default, so the runs
# (and their checkpoints) made before a field existed keep their key and still resume.
LATER_DEFAULTS = {"teacher_resolution": None}


def _keyed(values: dict) -> dict:
    """A stage's fields as keyed: :data:`LATER_DEFAULTS` at their default left out (nested too)."""
    kept = {}
    for name, value in values.items():
        if name in LATER_DEFAULTS and value == LATER_DEFAULTS[name]:
            continue
        kept[name] = _keyed(value) if isinstance(value, dict) else value
    return kept


def teacher_path(options: RunOptions) -> Path:
    """The teacher folder of a run that distils from a teacher.

    Raises:
        TeacherLoadError: no teacher was given.
    """
    if not options.teacher:
        from sam3spec.teacher.layout import TeacherLoadError

        raise TeacherLoadError(
            "this stage distils from a teacher (targets='teacher'): give RunOptions.teacher / --teacher "
            "(a SAM 3 folder, or any sam3spec-layout teacher)"
        )
    return Path(options.teacher)


def load_teacher_for(options: RunOptions, device: torch.device, resolution: int | None = None):
    """The run's teacher on ``device`` (MPS: CPU), at ``resolution`` px (None: its own size)."""
    from sam3spec.teacher.loading import load_teacher

    return load_teacher(
        options.teacher, device=device if device.type != "mps" else "cpu", resolution=resolution
    )


def target_source(
    stage: StageConfig,
    options: RunOptions,
    geometry,
    dataset,
    processes: runtime.Processes,
    device: torch.device,
    run_key: str,
    student: nn.Module,
):
    """``(targets(batch, epoch) -> Targets, teacher widths ([fpn per level], encoder, text) or None)``.

    Teacher targets come from ``options.teacher_cache`` when given (``sam3spec teacher cache
    --stage``: :func:`stored_targets`), else they are cached once per run (rank 0 builds, the others
    wait) unless ``options.cache_targets`` is off; then the teacher runs on every batch (``dataset`` is given
    the teacher view). ``targets="self"``: the outputs of a frozen copy of ``student`` as it is now
    (before any training step), on the same inputs.
    """
    if stage.targets == "ground_truth":
        return (lambda batch, epoch: ground_truth_targets(batch, geometry)), None
    if stage.targets == "self":
        return self_targets(student, geometry, device), None
    from sam3spec.distill.targets import TeacherTargets

    features = stage.losses.uses_features
    if options.teacher_cache is not None:
        return stored_targets(stage, options, geometry, dataset)
    if options.cache_targets:
        from sam3spec.distill.cache import META, TargetCache, build_target_cache

        directory = Path(options.out) / "teacher_targets"
        ready = (directory / META).is_file() and json.loads((directory / META).read_text()).get(
            "key"
        ) == run_key
        if processes.main and not ready:
            teacher = load_teacher_for(options, device, stage.teacher_resolution)
            viewed = stage_dataset(stage, options, teacher.image_size)
            builder = TeacherTargets(teacher, geometry, features, stage.fpn_levels)
            build_target_cache(
                builder, viewed, directory, stage.prompt_draws, run_key, progress=options.progress
            )
            del teacher
        runtime.barrier(processes)
        cache = TargetCache(directory)
        widths = None
        if features:
            stored = cache.draw(0)
            widths = (
                [cache.features[f"fpn.{i}"].shape[1] for i in range(len(stage.fpn_levels))],
                stored["encoder_memory"].shape[1],
                stored["text_features"].shape[2] if "text_features" in stored else None,
            )
        return (lambda batch, epoch: cache.lookup(batch, epoch)), widths
    teacher = load_teacher_for(options, device, stage.teacher_resolution)
    dataset.dataset.transform.teacher_size = teacher.image_size
    builder = TeacherTargets(teacher, geometry, features, stage.fpn_levels)
    widths = None
    if features:
        probe = teacher.encode_image(
            teacher.preprocess(torch.zeros(1, 3, teacher.image_size, teacher.image_size, dtype=torch.uint8))
        )
        levels = [probe.fpn_levels[level].shape[1] for level in stage.fpn_levels]
        widths = (levels, levels[-1], levels[-1])  # SAM 3's encoder and text widths are its FPN width
    return (lambda batch, epoch: builder(batch)), widths


def stored_targets(stage: StageConfig, options: RunOptions, geometry, dataset):
    """``(targets, widths)`` read from the teacher cache ``options.teacher_cache``
    (:mod:`sam3spec.distill.store`), after checking it was made for this stage's data and grid.

    Raises:
        TeacherCacheMismatch: the cache was made at another teacher resolution, student grid,
            prompt set, vocabulary or sample count (a ``ValueError``; one line).
    """
    from sam3spec.distill.store import TargetStore, identity

    store = TargetStore(options.teacher_cache)
    store.check(stage, identity(stage, options, geometry, len(dataset)))
    widths = store.widths if stage.losses.uses_features else None
    return (lambda batch, epoch: store.lookup(batch, epoch)), widths


def self_targets(student: nn.Module, geometry, device: torch.device):
    """``targets(batch, epoch)``: the outputs of a frozen, eval-mode copy of ``student`` (taken now)
    on the batch's student inputs, as :class:`~sam3spec.distill.targets.Targets` on ``geometry``."""
    import copy

    from sam3spec.distill.data import student_inputs
    from sam3spec.distill.targets import from_outputs
    from sam3spec.distill.task import DistillModel
    from sam3spec.models.text_encoder import Tokenizer

    reference = copy.deepcopy(student).eval().to(device)
    for parameter in reference.parameters():
        parameter.requires_grad_(False)
    model, tokenizer = DistillModel(reference, None, geometry), Tokenizer(student.config.text)

    @torch.no_grad()
    def targets(batch: dict, epoch: int):
        return from_outputs(model(student_inputs(batch, tokenizer, device)).outputs, geometry)

    return targets
