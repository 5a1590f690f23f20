"""Quantization gate (``-m quant``): sensitive layers stay float, QAT round trip, the seed's size ratio
(``slow``), and the quantized concept-world accuracy of a *trained* tiny student (not measured, with
the reason, until the distillation pipeline has produced one)."""

from __future__ import annotations

import copy

import pytest
import torch

from sam3spec.config import SEED_PRESET, TINY_PRESET
from sam3spec.models.build import build_student
from sam3spec.quant.recipes import quantize_student
from sam3spec.quant.sensitivity import sensitive_float_share

pytestmark = pytest.mark.quant


@pytest.fixture(scope="module")
def tiny_student():
    torch.manual_seed(0)
    return build_student(TINY_PRESET).eval()


def test_sensitive_layers_stay_float(gate, tiny_student):
    model = copy.deepcopy(tiny_student)
    report = quantize_student(model, "8da4w", log=None)
    share, kept, total = sensitive_float_share(model)
    gate.check(
        "quant.sensitive_kept_float",
        share,
        preset=TINY_PRESET,
        recipe="8da4w",
        note=f"{kept}/{total}; {report.plan.describe()}",
    )


def test_qat_round_trip(gate, tiny_student, tmp_path):
    from sam3spec.quant.qat import QatOptions, train_qat
    from sam3spec.world import generate_world

    generate_world(tmp_path / "world", 8, 0, 0, progress=False)
    model = copy.deepcopy(tiny_student)
    options = QatOptions(tmp_path / "qat", steps=3, batch_size=2, verbose=False, progress=False)
    result = train_qat(model, tmp_path / "world", "8da4w", options)
    planned = result["fake_quantized"]
    converted = sum(
        1
        for m in model.modules()
        if isinstance(m, torch.nn.Linear) and type(m.weight.data) is not torch.Tensor
    )
    gate.check(
        "quant.qat_roundtrip",
        converted / planned,
        preset=TINY_PRESET,
        recipe="8da4w",
        steps=3,
        note=f"losses {[round(v, 3) for v in result['losses']]}; weights random (mechanics only)",
    )


@pytest.mark.slow
def test_seed_size_ratio(gate, run_dir):
    from sam3spec.export.artifacts import cached_export
    from sam3spec.export.recipes import get_export_recipe
    from sam3spec.world.inputs import WorldExportInputs

    pte, manifest = cached_export(
        SEED_PRESET,
        get_export_recipe("xnnpack", "8da4w"),
        "seed",
        inputs=WorldExportInputs(),
        random_weights=True,
        run_dir=run_dir,
    )
    student = build_student(SEED_PRESET).eval().reparameterize()
    float_bytes = sum(p.numel() * 4 for p in student.parameters())
    gate.check(
        "quant.size_ratio",
        pte.stat().st_size / float_bytes,
        preset=SEED_PRESET,
        weights="random",
        note=f".pte {pte.stat().st_size / 1e6:.1f} MB / fp32 {float_bytes / 1e6:.1f} MB",
    )


def test_quantized_accuracy(gate, run_dir, trained_student):
    checkpoint, world, looked = trained_student
    if checkpoint is None:
        gate.not_measured(
            "quant.miou_drop_pct",
            "no trained concept-world student found (looked in "
            + ", ".join(str(path) for path in looked)
            + "): run the distillation pipeline (sam3spec train pipeline) first; random weights would make the figure meaningless",
        )
        return
    from sam3spec.checkpoint import load_student
    from sam3spec.eval.quant_compare import compare
    from sam3spec.export.artifacts import cached_export
    from sam3spec.export.recipes import get_export_recipe
    from sam3spec.world.inputs import WorldExportInputs, world_images

    label = f"tiny-{checkpoint.parent.name}"  # tiny-phase2 or tiny-phase1
    pte, _ = cached_export(
        checkpoint,
        get_export_recipe("xnnpack", "8da4w"),
        label,
        inputs=WorldExportInputs(world),
        run_dir=run_dir,
    )
    rows = compare(load_student(checkpoint), world_images(world), recipes=(), ptes=[pte])
    float_row, pte_row = rows[0], rows[-1]
    if not float_row.metrics["mIoU"]:  # a relative drop from 0 cannot fail: never a silent pass
        gate.not_measured(
            "quant.miou_drop_pct",
            f"the float student's mIoU is 0 on the eval split ({checkpoint}): the relative drop is undefined "
            f"(.pte mIoU {pte_row.metrics['mIoU']:.4f}; presence F1 {float_row.metrics['presence_f1']:.3f} vs "
            f"{pte_row.metrics['presence_f1']:.3f})",
            preset=TINY_PRESET,
            weights="trained",
            checkpoint=str(checkpoint),
        )
        return
    gate.check(
        "quant.miou_drop_pct",
        pte_row.miou_drop_percent,
        preset=TINY_PRESET,
        weights="trained",
        checkpoint=str(checkpoint),
        stage=checkpoint.parent.name,
        data="concept-world eval split",
        note=f"mIoU float {float_row.metrics['mIoU']:.4f} vs .pte {pte_row.metrics['mIoU']:.4f}; "
        f"presence F1 {float_row.metrics['presence_f1']:.3f} vs {pte_row.metrics['presence_f1']:.3f}; "
        f"cgF1 {float_row.metrics['cgF1']:.2f} vs {pte_row.metrics['cgF1']:.2f}",
    )
