"""Run a model over an SA-Co split, write its predictions as SAM 3 does, and score them.

A teacher and a student go through the teacher protocol (``preprocess`` / ``encode_image`` /
``predict``): a student checkpoint is wrapped in :class:`~sam3spec.eval.student_view.StudentTeacherView`,
so the two are scored by the same code on the same pairs; a ``.pte`` goes through its two-call
predictor (:mod:`sam3spec.eval.predictions` maps every kind back to the image's pixels). The
split is an SA-Co Gold triple (or any SA-Co files with the same pairs, one per annotator) and the
folder of its images. Every Gold subset of a folder: :mod:`sam3spec.eval.gold`.

Files written under ``out`` by :func:`evaluate_model`::

    predictions_segm.json   COCO results as SAM 3's dumper writes them
                            (:mod:`sam3spec.eval.predictions`), what SAM 3's evaluator reads
    presence.json           {pair id: presence probability} (for presence_f1; not part of COCO)
    vos/<video>/<obj>/*.png SA-V val masks of the streaming video predictor (students)
    metrics.json            cgF1, pmF1, IL_MCC, mIoU, presence_f1, J, F, J&F (+ details, and
                            the diagnosis of :mod:`sam3spec.eval.diagnosis`)
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sam3spec.atomic import atomic_write_json
from sam3spec.eval.diagnosis import diagnose
from sam3spec.eval.predictions import predict_pairs
from sam3spec.eval.saco_files import evaluate_saco, load_ground_truth

if TYPE_CHECKING:
    from sam3spec.eval.gold import GoldSubset
    from sam3spec.eval.video import VideoSplit


def model_kind(path: Path) -> str:
    """``"teacher"``, ``"student"`` or ``"pte"`` for a ``--model`` path (see :func:`load_model`).

    Raises:
        FileNotFoundError: neither a folder nor a ``.pte`` file, or a folder without ``config.json``.
        ValueError: a ``config.json`` that is not JSON (a folder whose config is not SAM 3's is
            taken for a student checkpoint, whose loader names what is wrong with it).
    """
    if path.suffix == ".pte":
        if not path.is_file():
            raise FileNotFoundError(f"--model {path}: no such .pte file")
        return "pte"
    if not path.is_dir():
        raise FileNotFoundError(
            f"--model {path}: not a folder or a .pte (give a student checkpoint, a teacher folder or a .pte)"
        )
    if (path / "teacher.json").is_file() or (path / "detector").is_dir():
        return "teacher"
    config_path = path / "config.json"
    if not config_path.is_file():
        raise FileNotFoundError(
            f"--model {path}: no config.json (expected a student checkpoint or a SAM 3 folder)"
        )
    try:
        config = json.loads(config_path.read_text())
    except json.JSONDecodeError as error:
        raise ValueError(f"--model {path}: {config_path} is not valid JSON ({error})") from error
    if isinstance(config, dict) and config.get("model_type") in ("sam3", "sam3_video"):
        return "teacher"  # the transformers layout, e.g. a local copy of facebook/sam3
    return "student"


def load_model(spec: str | Path, device: str = "cpu"):
    """A teacher folder (sam3spec or transformers layout), a student checkpoint, or a ``.pte``.

    Returns:
        ``(model, kind)``: a teacher-protocol object (``"teacher"``, ``"student"`` through
        :class:`~sam3spec.eval.student_view.StudentTeacherView`), or a two-call predictor for a
        ``.pte`` (``"pte"``: :class:`~sam3spec.export.runtime.PtePredictor`, with its text table
        when one lies beside it).
    """
    path = Path(spec)
    kind = model_kind(path)
    if kind == "teacher":
        from sam3spec.teacher.loading import load_teacher

        return load_teacher(path, device=device), "teacher"
    if kind == "pte":
        from sam3spec.export.pipeline import companion_paths
        from sam3spec.export.runtime import PtePredictor

        table = companion_paths(path)["text_table"]
        return PtePredictor(path, text_table=table if table.is_file() else None), "pte"
    from sam3spec.checkpoint import load_student
    from sam3spec.eval.student_view import StudentTeacherView

    return StudentTeacherView(load_student(path, verbose=False).to(device)), "student"


def mask_geometry(model) -> tuple[tuple[int, int] | None, bool, str | None]:
    """``(mask output size, letterbox, note)`` of a loaded model, for the mask-resolution ceiling
    of :func:`~sam3spec.eval.diagnosis.diagnose`: the ``pred_masks`` size of one forward on a
    blank input (any teacher-protocol model, a student included), or None with the reason for a
    two-call predictor (a ``.pte``), which answers in image pixels."""
    if hasattr(model, "set_image"):
        return None, False, "not measured: a two-call predictor (.pte) answers in image pixels"
    import torch

    side = int(model.image_size)
    with torch.no_grad():
        embeddings = model.encode_image(model.preprocess(torch.zeros(1, 3, side, side, dtype=torch.uint8)))
        masks = model.predict(embeddings, text=["object"]).pred_masks
    return (int(masks.shape[-2]), int(masks.shape[-1])), bool(getattr(model, "letterbox", False)), None


def predict_split(
    model,
    gt_path: Path,
    image_root: Path,
    out: Path,
    min_score: float = 0.05,
    limit: int | None = None,
    progress: bool = False,
) -> tuple[Path, Path]:
    """:func:`predict_pairs`, written to ``out/predictions_segm.json`` and ``out/presence.json``."""
    results, presence = predict_pairs(model, gt_path, image_root, min_score, limit, progress)
    pred_path, presence_path = Path(out) / "predictions_segm.json", Path(out) / "presence.json"
    atomic_write_json(results, pred_path, indent=None, sort_keys=False)
    atomic_write_json(presence, presence_path, indent=None, sort_keys=False)
    return pred_path, presence_path


def video_metrics(
    model, kind: str, videos: VideoSplit | None, out: Path, limit: int | None = None
) -> dict[str, Any]:
    """J, F, J&F of a student on SA-V val videos (the streaming video predictor of
    :mod:`sam3spec.eval.video`, with memory; masks written under ``out/vos``), scored by
    :func:`sam3spec.eval.vos.evaluate_vos`. The teacher has no text-prompted video path here: None."""
    if kind != "student":
        return {"J": None, "F": None, "J&F": None, "vos_note": "video J&F is measured for students only"}
    if videos is None:
        return {"J": None, "F": None, "J&F": None, "vos_note": "no SA-V val videos given"}
    annotations = videos.annotations
    if not annotations.is_dir() or not any(annotations.iterdir()):
        return {"J": None, "F": None, "J&F": None, "vos_note": f"no SA-V val videos in {annotations}"}
    from sam3spec.eval.video import predict_split as predict_videos
    from sam3spec.eval.vos import evaluate_vos

    predict_videos(model.student, videos, out / "vos", use_memory=True, limit=limit)
    names = sorted(p.name for p in (out / "vos").iterdir() if p.is_dir())
    summary = evaluate_vos(annotations, out / "vos", strict=limit is None).summary()
    note = f"{summary['num_objects']} object(s) in {len(names)} val video(s), streaming predictor with memory"
    return {"J": summary["J"], "F": summary["F"], "J&F": summary["J&F"], "vos_note": note}


BREAKDOWN = {
    "positive+hard_negative": ("positive", "hard_negative"),
    "positive+negative": ("positive", "negative"),
}


def kind_breakdown(
    truths: list, pred_path: Path, presence: dict[int, float], kinds: Mapping[int, str]
) -> dict[str, Any]:
    """SA-Co metrics on pair subsets by query kind (``kinds``: pair id -> positive,
    hard_negative, e.g. "blue circle" when only a red one is present, negative): IL_MCC of
    positives vs hard negatives is what Stage 3 must improve. Empty when no kinds are known."""
    if not kinds:
        return {}
    out = {}
    for name, wanted in BREAKDOWN.items():
        subset = []
        for truth in truths:
            picked = copy.copy(truth)
            picked.pairs = {k: v for k, v in truth.pairs.items() if kinds.get(k) in wanted}
            subset.append(picked)
        summary = evaluate_saco(subset, pred_path, "segm", presence=presence).summary()
        out[name] = {
            key: summary[key] for key in ("cgF1", "pmF1", "IL_MCC", "IL_FPR", "presence_f1", "num_pairs")
        }
    return out


def evaluate_model(
    model_spec: str | Path,
    gold_files: Sequence[str | Path],
    image_root: str | Path,
    out: str | Path,
    device: str = "cpu",
    min_score: float = 0.05,
    limit: int | None = None,
    progress: bool = False,
    videos: VideoSplit | None = None,
    pair_kinds: Mapping[int, str] | None = None,
) -> dict[str, Any]:
    """``sam3spec eval model``: predictions on an SA-Co split, scored; writes ``out/metrics.json``.

    Args:
        model_spec: a student checkpoint or a teacher folder.
        gold_files: the split's SA-Co files, one per annotator (the first defines the pairs).
        image_root: the folder their ``file_name`` entries are relative to.
        out: output folder.
        videos: SA-V val videos with their object phrases, for the students' video J&F
            (:func:`video_metrics`; ``vos_note`` says what was measured).
        pair_kinds: pair id -> query kind, for :func:`kind_breakdown` and the diagnosis's
            hard negatives.
    """
    gold_files = [Path(path) for path in gold_files]
    if not gold_files or not gold_files[0].is_file():
        raise FileNotFoundError(
            f"SA-Co eval file {gold_files[0] if gold_files else '(none given)'} not found"
        )
    model, kind = load_model(model_spec, device)
    out = Path(out)
    pred_path, presence_path = predict_split(
        model, gold_files[0], Path(image_root), out, min_score, limit, progress
    )
    presence = {int(k): v for k, v in json.loads(presence_path.read_text()).items()}
    gts = [load_ground_truth(p) for p in gold_files if p.is_file()]
    if limit:  # score only the pairs that were predicted
        for truth in gts:
            truth.pairs = {k: v for k, v in truth.pairs.items() if k in presence}
    evaluation = evaluate_saco(gts, pred_path, "segm", presence=presence)
    segm = evaluation.summary()
    bbox = evaluate_saco(gts, pred_path, "bbox", presence=presence).summary()
    metrics = {key: segm[key] for key in ("cgF1", "pmF1", "IL_MCC", "mIoU", "presence_f1")}
    metrics.update(video_metrics(model, kind, videos, out, limit))
    metrics.update(
        {
            "model": str(model_spec),
            "kind": kind,
            "data": str(gold_files[0]),
            "predictions": str(pred_path),
            "segm": segm,
            "bbox": bbox,
        }
    )
    metrics["by_kind"] = kind_breakdown(gts, pred_path, presence, pair_kinds or {})
    mask_size, letterbox, mask_note = mask_geometry(model)
    metrics["diagnosis"] = diagnose(evaluation, mask_size, letterbox, pair_kinds, mask_note)
    atomic_write_json(metrics, out / "metrics.json", indent=None, sort_keys=False)
    return metrics


def evaluate_benchmarks(
    model_spec: str | Path,
    out: str | Path,
    gold: Sequence[GoldSubset] = (),
    sav: str | Path | None = None,
    device: str = "cpu",
    min_score: float = 0.05,
    limit: int | None = None,
    progress: bool = False,
) -> dict[str, Any]:
    """``sam3spec eval model --saco-gold DIR --sav DIR``: a model on the real benchmarks.

    Args:
        model_spec: a student checkpoint, a teacher folder (either layout) or a ``.pte``.
        out: output folder: SAM 3's dump tree of every Gold subset (:mod:`sam3spec.eval.gold`),
            ``sav/`` (the predicted SA-V masks) and ``metrics.json``.
        gold: Gold subsets (:func:`~sam3spec.eval.gold.find_subsets`); none: SA-Co is not run.
        sav: an SA-V val / test folder (:mod:`sam3spec.eval.sav_vos`); None: not run.
        limit: first ``limit`` images per Gold subset and videos of SA-V (smoke tests).

    Returns:
        ``metrics.json``'s content: ``saco_gold`` (per subset and mean) and its mean cgF1 /
        IL_MCC / pmF1 at the top; ``sav`` and its ``J`` / ``F`` / ``J&F`` at the top (None with
        ``sav_note`` saying why when not measured).
    """
    from sam3spec.eval.gold import evaluate_gold

    model, kind = load_model(model_spec, device)
    out = Path(out)
    metrics: dict[str, Any] = {"model": str(model_spec), "kind": kind}
    if gold:
        result = evaluate_gold(model, list(gold), out, min_score, limit, progress)
        metrics["saco_gold"] = result
        metrics.update(result["mean"])
    if sav is not None:
        if kind == "student":
            from sam3spec.eval.sav_vos import evaluate_sav

            summary = evaluate_sav(model.student, sav, out / "sav", limit)
            metrics["sav"] = summary
            metrics.update({key: summary[key] for key in ("J", "F", "J&F")})
            metrics["sav_note"] = summary["note"]
        else:
            metrics.update({"J": None, "F": None, "J&F": None})
            metrics["sav_note"] = (
                f"not measured: SA-V J&F runs the student's streaming video predictor; a {kind} has none here"
            )
    atomic_write_json(metrics, out / "metrics.json", indent=None, sort_keys=False)
    return metrics
