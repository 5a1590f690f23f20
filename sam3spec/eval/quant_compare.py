"""Quantization compare: float vs every quantization recipe (and exported programs) on SA-Co images.

One table: size, mIoU, presence F1, cgF1 and image-path latency per scheme, on held-out SA-Co
images (:class:`~sam3spec.data.saco.GoldImage`, e.g. a data root's ``saco/eval`` split), each row
scored by the same code (:func:`~sam3spec.eval.predictors.evaluate_predictor`). A row whose mIoU
falls more than 2% (relative) below float gets a warning (the plan's rule; it is what triggers QAT).

Sizes: float = fp32 parameter bytes; eager recipes = packed bytes (quantized values at their bit
width + scales, :func:`~sam3spec.quant.recipes.packed_bytes`); ``.pte`` rows = the file. Eager
latency of an Intx recipe on CPU is a simulation (weights are dequantized on the fly, slower than
float); the ``.pte`` rows are the deployable speed.
"""

from __future__ import annotations

import copy
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from sam3spec.data.saco import GoldImage
from sam3spec.eval.predictors import evaluate_predictor
from sam3spec.quant.recipes import float_bytes, quantize_student

DROP_WARNING_PERCENT = 2.0


@dataclass
class CompareRow:
    """One scheme's figures.

    Attributes:
        name: ``float``, a recipe name, or ``pte:<file>``.
        kind: ``float`` / ``eager`` / ``pte``.
        size_mb: see the module docstring.
        metrics: ``mIoU``, ``presence_f1``, ``cgF1``, ... (:func:`sam3spec.eval.metrics.summarize`).
        latency_ms: median of ``set_image`` + one ``predict`` over the first images.
        miou_drop_percent: relative mIoU drop vs float, in percent (None for float).
        note: what the row is.
    """

    name: str
    kind: str
    size_mb: float
    metrics: dict[str, float]
    latency_ms: float
    miou_drop_percent: float | None = None
    note: str = ""

    @property
    def warning(self) -> bool:
        return self.miou_drop_percent is not None and self.miou_drop_percent > DROP_WARNING_PERCENT


def _latency(predictor: Any, pairs: list[GoldImage], count: int = 5) -> float:
    times = []
    with torch.no_grad():
        for pair in pairs[:count]:
            start = time.perf_counter()
            predictor.set_image(pair.image)
            predictor.predict(text=pair.phrases[0])
            times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times) if times else float("nan")


def drop_percent(reference: float, value: float) -> float:
    """Relative drop in percent (0 when the reference is 0)."""
    return 0.0 if reference == 0 else 100.0 * (reference - value) / reference


def compare(
    student: torch.nn.Module,
    images: Sequence[GoldImage],
    recipes: Sequence[str] = ("8da4w", "int4wo-g128", "8da8w"),
    ptes: Sequence[str | Path] = (),
    log: Callable[[str], None] = print,
) -> list[CompareRow]:
    """Score float, each eager recipe and each ``.pte`` on the same images."""
    from sam3spec.export.runtime import PtePredictor
    from sam3spec.predictor import ImagePredictor

    pairs = list(images)
    if not pairs:
        raise ValueError("no images to compare on (the eval split is empty)")
    rows: list[CompareRow] = []
    float_metrics = evaluate_predictor(ImagePredictor(student.eval()), pairs)
    rows.append(
        CompareRow(
            "float",
            "float",
            float_bytes(student) / 1e6,
            float_metrics,
            _latency(ImagePredictor(student), pairs),
            None,
            "fp32 eager",
        )
    )
    if float_metrics["mIoU"] is None:  # nothing to compare a drop against
        raise ValueError(f"the held-out images give no mIoU to compare ({float_metrics['note']})")
    log(f"float: mIoU {float_metrics['mIoU']:.4f} on {int(float_metrics['num_pairs'])} pairs")
    for name in recipes:
        model = copy.deepcopy(student).eval()
        report = quantize_student(model, name, log=log)
        predictor = ImagePredictor(model)
        metrics = evaluate_predictor(predictor, pairs)
        row = CompareRow(
            name,
            "eager",
            report.packed_bytes / 1e6,
            metrics,
            _latency(predictor, pairs),
            drop_percent(float_metrics["mIoU"], metrics["mIoU"]),
            "torchao eager (CPU simulation)",
        )
        rows.append(row)
        log(f"{name}: mIoU {metrics['mIoU']:.4f} ({row.miou_drop_percent:+.2f}% drop)")
    for path in ptes:
        predictor = PtePredictor(path)
        metrics = evaluate_predictor(predictor, pairs)
        meta = predictor.model.program.metadata
        row = CompareRow(
            f"pte:{Path(path).name}",
            "pte",
            Path(path).stat().st_size / 1e6,
            metrics,
            _latency(predictor, pairs),
            drop_percent(float_metrics["mIoU"], metrics["mIoU"]),
            f"{meta['backend']}/{meta['recipe']} .pte",
        )
        rows.append(row)
        log(f"{row.name}: mIoU {metrics['mIoU']:.4f} ({row.miou_drop_percent:+.2f}% drop)")
    return rows


def format_table(rows: list[CompareRow]) -> str:
    """The comparison as a GitHub markdown table, with a warning line per row over the 2% rule."""
    from tabulate import tabulate

    table = [
        [
            row.name,
            f"{row.size_mb:.2f}",
            f"{row.metrics['mIoU']:.4f}",
            "" if row.miou_drop_percent is None else f"{row.miou_drop_percent:+.2f}%",
            f"{row.metrics['presence_f1']:.4f}",
            f"{row.metrics['cgF1']:.2f}",
            f"{row.latency_ms:.1f}",
            row.note,
        ]
        for row in rows
    ]
    headers = ["scheme", "size MB", "mIoU", "mIoU drop", "presence F1", "cgF1", "latency ms", "what"]
    lines = [tabulate(table, headers=headers, tablefmt="github", disable_numparse=True)]
    for row in rows:
        if row.warning:
            lines.append(
                f"WARNING: {row.name} loses {row.miou_drop_percent:.2f}% mIoU (> {DROP_WARNING_PERCENT:g}%): "
                "consider QAT (sam3spec train qat)"
            )
    return "\n".join(lines)


def rows_to_json(rows: list[CompareRow]) -> list[dict[str, Any]]:
    return [{**asdict(row), "warning": row.warning} for row in rows]
