"""Export gate (``-m export``): QNN fails with what to install, a Core ML .pte is produced here, and
(``slow``) the seed's XNNPACK program: size, parity on concept-world images, delegated share, and the
parity of a *trained* tiny student's program (random weights put many mask logits near 0, where any
quantization error flips pixels: the seed's random-weight parity is reported, the trained one is
what an app ships)."""

from __future__ import annotations

import json

import pytest

from sam3spec.cli import main
from sam3spec.config import SEED_PRESET, TINY_PRESET

pytestmark = pytest.mark.export
SEED = {"preset": SEED_PRESET, "weights": "random (randomised BN statistics)", "recipe": "xnnpack/8da4w"}


def test_qnn_fails_with_the_sdk_message(gate, tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("QNN_SDK_ROOT", raising=False)
    out = tmp_path / "qnn.pte"
    code = main(
        [
            "export",
            "--preset",
            TINY_PRESET,
            "--random-weights",
            "--backend",
            "qnn",
            "--methods",
            "encode_text",
            "--out",
            str(out),
        ]
    )
    error = capsys.readouterr().err
    wanted = (
        "QNN_SDK_ROOT is not set",
        "export QNN_SDK_ROOT=",
        "LD_LIBRARY_PATH=$QNN_SDK_ROOT/lib/x86_64-linux-clang",
    )
    passed = code == 2 and all(text in error for text in wanted) and not out.exists()
    gate.check(
        "export.qnn_sdk_message",
        float(passed),
        preset=TINY_PRESET,
        note=error.strip().splitlines()[0] if error else None,
    )


def test_coreml_program_is_written(gate, tmp_path):
    from sam3spec.export.profile import pte_breakdown

    out = tmp_path / "coreml.pte"
    code = main(
        [
            "export",
            "--preset",
            TINY_PRESET,
            "--random-weights",
            "--backend",
            "coreml",
            "--recipe",
            "fp16",
            "--out",
            str(out),
        ]
    )
    breakdown = pte_breakdown(out) if out.is_file() else None
    manifest = json.loads(out.with_suffix(".json").read_text()) if out.with_suffix(".json").is_file() else {}
    written = (
        code == 0
        and breakdown is not None
        and set(breakdown.methods) == {"encode_image", "encode_text", "decode", "track"}
    )
    gate.check(
        "export.coreml_pte_written",
        float(written),
        preset=TINY_PRESET,
        recipe="coreml/fp16",
        note=f"{out.stat().st_size / 1e6:.2f} MB; delegated share {manifest.get('delegation', {}).get('overall_share')}; "
        "runs on macOS/iOS only"
        if out.is_file()
        else "not written",
    )


@pytest.fixture(scope="module")
def seed_program(run_dir):
    from sam3spec.export.artifacts import cached_export
    from sam3spec.export.recipes import get_export_recipe
    from sam3spec.world.inputs import WorldExportInputs

    return cached_export(
        SEED_PRESET,
        get_export_recipe("xnnpack", "8da4w"),
        "seed",
        inputs=WorldExportInputs(),
        random_weights=True,
        run_dir=run_dir,
    )


@pytest.mark.slow
def test_seed_size(gate, seed_program):
    from sam3spec.export.profile import PteBreakdown, program_bytes

    pte, manifest = seed_program
    breakdown = manifest["breakdown"]
    split = ", ".join(f"{name} {item['total'] / 1e6:.1f}" for name, item in breakdown["methods"].items())
    shared = ", ".join(f"{names} {size / 1e6:.1f}" for names, size in breakdown["shared"].items())
    gate.check(
        "export.pte_size_total",
        pte.stat().st_size / 1e6,
        **SEED,
        note=f"own MB: {split}; shared MB: {shared}",
    )
    vision = ("encode_image", "decode", "track")
    gate.check(
        "export.vision_program_mb",
        program_bytes(PteBreakdown(**breakdown), vision) / 1e6,
        **SEED,
        note=f"the {pte.stat().st_size / 1e6:.2f} MB program less what only encode_text uses",
    )


@pytest.mark.slow
def test_seed_parity(gate, seed_program):
    _, manifest = seed_program
    parity = manifest["parity"]
    note = f"{parity['samples']} concept-world samples; max |d score| {parity['max_score_delta']:.4f}; track IoU {parity['track_mask_iou']}"
    gate.check("export.parity_cosine", parity["mask_cosine"], **SEED, note=note)
    gate.check("export.parity_mask_iou", parity["mask_iou"], **SEED, note=note)


@pytest.mark.slow
def test_seed_delegation(gate, seed_program):
    _, manifest = seed_program
    delegation = manifest["delegation"]
    shares = ", ".join(
        f"{name} {item['share']:.3f}" for name, item in delegation.items() if isinstance(item, dict)
    )
    gate.check("export.xnnpack_delegated_share", delegation["overall_share"], **SEED, note=shares)


def test_trained_parity(gate, run_dir, trained_student):
    checkpoint, world, looked = trained_student
    if checkpoint is None:
        gate.not_measured(
            "export.parity_mask_iou_trained",
            "no trained concept-world student found (looked in "
            + ", ".join(map(str, looked))
            + "): run the distillation pipeline first (the main job does)",
        )
        return
    from sam3spec.export.artifacts import cached_export
    from sam3spec.export.recipes import get_export_recipe
    from sam3spec.world.inputs import WorldExportInputs

    label = f"tiny-{checkpoint.parent.name}"  # the program the quant gate measures (same cache entry)
    _, manifest = cached_export(
        checkpoint,
        get_export_recipe("xnnpack", "8da4w"),
        label,
        inputs=WorldExportInputs(world),
        run_dir=run_dir,
    )
    parity = manifest["parity"]
    gate.check(
        "export.parity_mask_iou_trained",
        parity["mask_iou"],
        preset=TINY_PRESET,
        weights="trained",
        checkpoint=str(checkpoint),
        recipe="xnnpack/8da4w",
        note=f"{parity['samples']} concept-world samples; max |d score| {parity['max_score_delta']:.4f}; "
        f"cosine {parity['mask_cosine']:.4f}; track IoU {parity['track_mask_iou']}",
    )
