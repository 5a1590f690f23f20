"""The concept-world main job: world -> teacher (shipped) -> Phase 1 -> Phase 2 -> Stage 3 ->
students vs teacher.

``run_pipeline("runs/concept-world")`` writes::

    runs/concept-world/
        world/              the generated concept world (train + held-out eval split)
        phase1/  phase2/    stage run directories (checkpoints, train_log.jsonl, tensorboard/,
        stage3/             teacher_targets/, final/, summary.json)
        eval/               teacher/, phase2/, stage3/: SA-Co predictions of each model
        metrics.json        {"teacher": {mIoU, presence_f1, cgF1, ...}, "student": {...} (after
                            Phase 2), "stage3": {...}, "by_kind": {"student"|"stage3": SA-Co
                            metrics of positive + hard-negative pairs, ...}, "diagnosis":
                            {"teacher"|"student"|"stage3": sam3spec.eval.diagnosis.diagnose}}
        report.md           teacher | student | ratio, side by side, and the diagnosis table
        pipeline.json       the config key, seconds per step, ratios

Everything is cached by a hash of the configuration (and of the package's sources and the
teacher's files): a rerun with the same configuration reuses the finished artefacts (a killed run resumes its stage from the last checkpoint); a changed
configuration redoes what depends on it.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from sam3spec.config import config_to_dict
from sam3spec.distill.stages import StageConfig
from sam3spec.world.config import WorldConfig
from sam3spec.world.stages import PHASE1_WORLD, PHASE2_WORLD, STAGE3_WORLD
from sam3spec.world.teacher import shipped_teacher_path

DEFAULT_RUN_DIR = Path("runs/concept-world")


@dataclass(frozen=True)
class PipelineConfig:
    """What the main job runs.

    Attributes:
        images: concept-world images (20% held out for evaluation; 600: 2,874 training pairs).
        seed: world seed.
        world: world generator config (160 px, the shipped teacher's size).
        phase1: Phase 1 stage.
        phase2: Phase 2 stage (starts from Phase 1's final weights).
        stage3: Stage 3 (starts from Phase 2's final weights), or None to stop after Phase 2.
        teacher: teacher folder, None for the shipped concept-world teacher.
        eval_limit: evaluate on the first N held-out images only (None: all).
    """

    images: int = 600
    seed: int = 0
    world: WorldConfig = field(default_factory=WorldConfig)
    phase1: StageConfig = PHASE1_WORLD
    phase2: StageConfig = PHASE2_WORLD
    stage3: StageConfig | None = STAGE3_WORLD
    teacher: str | None = None
    eval_limit: int | None = None

    def teacher_dir(self) -> Path:
        """The teacher folder: ``teacher``, or the shipped concept-world teacher."""
        return Path(self.teacher) if self.teacher else shipped_teacher_path()

    def key(self) -> str:
        from sam3spec.distill.sources import file_identity

        teacher = self.teacher_dir()
        payload = {
            "config": config_to_dict(self),
            "teacher": file_identity(teacher) if teacher.exists() else str(teacher),
            "code": code_digest(),
        }
        return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:16]


def code_digest() -> str:
    """Hash of the package's Python sources: artefacts made by other code are not reused."""
    digest = hashlib.sha256()
    for path in sorted(Path(__file__).resolve().parents[1].rglob("*.py")):  # the whole sam3spec package
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def _stage_state(run: Path) -> str | None:
    meta = run / "stage.json"
    return json.loads(meta.read_text()).get("key") if meta.is_file() else None


def _run_stage(
    stage: StageConfig,
    world: Path,
    run: Path,
    teacher: str,
    init: Path | None,
    progress: bool,
    code: str,
) -> dict:
    """Reuse a finished stage with the same key and code, resume an unfinished one with the same
    key, else start afresh (the pipeline owns ``run``)."""
    from sam3spec.atomic import atomic_write_json
    from sam3spec.distill.options import RunOptions
    from sam3spec.distill.sources import stage_hash, teacher_path
    from sam3spec.distill.trainer import distill

    options = RunOptions(data=world, out=run, teacher=teacher, init=init, progress=progress)
    key = stage_hash(stage, options, teacher_path(options))
    finished = (run / "final" / "model.safetensors").is_file() and (run / "summary.json").is_file()
    made_by = json.loads((run / "made_by.json").read_text()) if (run / "made_by.json").is_file() else {}
    if run.exists() and (_stage_state(run) != key or (finished and made_by.get("code") != code)):
        shutil.rmtree(run)
    elif finished:
        return json.loads((run / "summary.json").read_text())
    options.resume = (run / "checkpoints").exists()
    summary = distill(stage, options)
    atomic_write_json({"key": key, "code": code}, run / "made_by.json")
    return summary


def side_by_side(metrics: dict[str, dict[str, float]]) -> str:
    """A markdown table: metric | teacher | student (Phase 2) | student / teacher, plus Stage 3's
    columns when the run has them."""
    from sam3spec.eval.metrics import format_metric
    from sam3spec.world.evaluate import METRIC_KEYS, ratios

    share = ratios(metrics)
    stage3 = metrics.get("stage3")
    header = "| metric | teacher | student (Phase 2) | student / teacher |"
    rule = "|---|---|---|---|"
    if stage3:
        header += " Stage 3 | Stage 3 / teacher |"
        rule += "---|---|"
    lines = [header, rule]
    for key in METRIC_KEYS:
        ratio = "" if share[key] is None else f"{share[key]:.3f}"
        line = (
            f"| {key} | {format_metric(metrics['teacher'][key])} | {format_metric(metrics['student'][key])} "
            f"| {ratio} |"
        )
        if stage3:
            teacher, value = metrics["teacher"][key], stage3[key]
            share3 = f"{value / teacher:.3f}" if teacher and value is not None else ""
            line += f" {format_metric(value)} | {share3} |"
        lines.append(line)
    notes = [
        f"{name}: {metrics[name]['note']}"
        for name in ("teacher", "student", "stage3")
        if metrics.get(name, {}).get("note")
    ]
    return "\n".join(lines + [""] + notes if notes else lines) + "\n"


def run_pipeline(
    out: str | Path = DEFAULT_RUN_DIR, config: PipelineConfig = PipelineConfig(), progress: bool = True
) -> dict:
    """Run (or reuse) the main job in ``out``; returns ``pipeline.json``'s content."""
    from sam3spec.atomic import atomic_write_json
    from sam3spec.checkpoint import load_student
    from sam3spec.eval.student_view import StudentTeacherView
    from sam3spec.teacher.loading import load_teacher
    from sam3spec.world.evaluate import evaluate_models, ratios, write_metrics
    from sam3spec.world.generate import generate_world

    out = Path(out)
    key = config.key()
    record_path = out / "pipeline.json"
    if record_path.is_file() and (out / "metrics.json").is_file():
        record = json.loads(record_path.read_text())
        if record.get("key") == key:
            return record
    out.mkdir(parents=True, exist_ok=True)
    seconds: dict[str, float] = {}
    world = out / "world"
    start = time.perf_counter()
    manifest = world / "world.json"
    wanted = {"images": config.images, "seed": config.seed, "config": config_to_dict(config.world)}
    if not (
        manifest.is_file()
        and (out / "world.key.json").is_file()
        and json.loads((out / "world.key.json").read_text()) == json.loads(json.dumps(wanted))
    ):
        shutil.rmtree(world, ignore_errors=True)
        generate_world(world, config.images, 0, config.seed, config.world, progress=False)
        atomic_write_json(wanted, out / "world.key.json")
    seconds["world"] = time.perf_counter() - start

    start = time.perf_counter()
    code = code_digest()
    phase1 = _run_stage(config.phase1, world, out / "phase1", str(config.teacher_dir()), None, progress, code)
    seconds["phase1"] = time.perf_counter() - start
    start = time.perf_counter()
    phase2 = _run_stage(
        config.phase2,
        world,
        out / "phase2",
        str(config.teacher_dir()),
        out / "phase1" / "final",
        progress,
        code,
    )
    seconds["phase2"] = time.perf_counter() - start
    stage3 = None
    if config.stage3 is not None:
        start = time.perf_counter()
        stage3 = _run_stage(
            config.stage3,
            world,
            out / "stage3",
            str(config.teacher_dir()),
            out / "phase2" / "final",
            progress,
            code,
        )
        seconds["stage3"] = time.perf_counter() - start

    start = time.perf_counter()
    teacher = load_teacher(config.teacher_dir())
    models = {"teacher": teacher, "student": StudentTeacherView(load_student(out / "phase2" / "final"))}
    if stage3 is not None:
        models["stage3"] = StudentTeacherView(load_student(out / "stage3" / "final"))
    metrics = evaluate_models(models, world, config.eval_limit)
    evaluations = saco_evaluations(out, world, config.teacher_dir(), stage3 is not None, config.eval_limit)
    if stage3 is not None:
        metrics["by_kind"] = {name: evaluations[name]["by_kind"] for name in ("student", "stage3")}
    metrics["diagnosis"] = {name: evaluation["diagnosis"] for name, evaluation in evaluations.items()}
    write_metrics(metrics, out / "metrics.json")
    seconds["evaluate"] = time.perf_counter() - start
    (out / "report.md").write_text(
        "# Concept world: distilled student vs teacher (held-out split)\n\n"
        + side_by_side(metrics)
        + "\n## Diagnosis: where cgF1 goes (SA-Co evaluator, Gold files a/b/c)\n\n"
        + diagnosis_report(metrics["diagnosis"]),
        encoding="utf-8",
    )
    record = {
        "key": key,
        "seconds": seconds,
        "total_seconds": sum(seconds.values()),
        "ratios": ratios(metrics),
        "phase1": {
            k: phase1.get(k)
            for k in ("steps", "feature_loss_start", "feature_loss_end", "feature_loss_ratio")
        },
        "phase2": {k: phase2.get(k) for k in ("steps",)},
        "stage3": None if stage3 is None else {k: stage3.get(k) for k in ("steps",)},
    }
    atomic_write_json(record, record_path)
    return record


def saco_evaluations(
    out: Path, world: Path, teacher: Path, with_stage3: bool, limit: int | None
) -> dict[str, dict]:
    """:func:`sam3spec.world.evaluate.evaluate_model_on_world` (the product's SA-Co evaluator) of the
    teacher, the Phase 2 student and the Stage 3 student: each holds the query-kind breakdown
    (``by_kind``: positives + hard negatives, positives + other negatives) and the diagnosis
    (:mod:`sam3spec.eval.diagnosis`); predictions under ``out/eval/<teacher|phase2|stage3>``."""
    from sam3spec.world.evaluate import evaluate_model_on_world

    runs = {"teacher": ("teacher", teacher), "student": ("phase2", out / "phase2" / "final")}
    if with_stage3:
        runs["stage3"] = ("stage3", out / "stage3" / "final")
    return {
        name: evaluate_model_on_world(spec, world, out / "eval" / folder, limit=limit)
        for name, (folder, spec) in runs.items()
    }


DIAGNOSIS_COLUMNS = {"teacher": "teacher", "student": "student (Phase 2)", "stage3": "Stage 3"}


def diagnosis_report(diagnoses: dict[str, dict]) -> str:
    """The diagnosis table of the main job: teacher, Phase 2 and Stage 3 students, and each
    student / teacher."""
    from sam3spec.eval.diagnosis import diagnosis_table

    return diagnosis_table({DIAGNOSIS_COLUMNS.get(name, name): d for name, d in diagnoses.items()})
