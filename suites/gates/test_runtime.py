"""Runtime gate (``-m runtime``): phone targets are *not measured* here (no phone), unless a device
run's JSON was ingested; the GPU targets come from ``scripts/device_check.sh``'s JSON (the main job
ingests its tiny CPU run: "no GPU"); the seed's .pte on this CPU (``slow``): speed vs the eager
float student in the same run, and the RSS the program adds."""

from __future__ import annotations

import pytest

from sam3spec.bench.device_record import NO_GPU, RESULTS_NAME, SPEC_FIGURES
from sam3spec.config import SEED_PRESET

pytestmark = pytest.mark.runtime

DEVICE_ONLY = {
    "runtime.image_latency_phone": "needs a phone: run the .pte with the native runner on the device and ingest its JSON (pytest --ingest phone.json)",
    "runtime.peak_memory_phone": "needs a phone: the app process's peak memory is only meaningful on the device (native runner, no libtorch)",
    "runtime.npu_share": "needs the NPU toolchains: the Core ML .pte runs only on macOS/iOS and QNN needs the Qualcomm SDK and a Snapdragon phone; "
    "delegation to XNNPACK (CPU) is export.xnnpack_delegated_share",
}


@pytest.mark.parametrize("spec_id", sorted(DEVICE_ONLY))
def test_device_targets_are_not_measured_here(gate, spec_id):
    gate.not_measured(spec_id, DEVICE_ONLY[spec_id], machine="linux x86_64 CPU")


@pytest.mark.parametrize("spec_id", sorted(SPEC_FIGURES))
def test_gpu_targets_come_from_the_device_check(gate, spec_id):
    """Recorded by the device check's JSON when one was ingested (``--ingest OUT/device_check.json``),
    else not measured here, with how to measure them."""
    if spec_id in gate.store.results:
        return
    import torch

    how = f"run bash scripts/device_check.sh OUT on a GPU machine and ingest OUT/{RESULTS_NAME}"
    gate.not_measured(
        spec_id, f"{NO_GPU}: {how}" if not torch.cuda.is_available() else f"not ingested: {how}"
    )


@pytest.mark.slow
def test_cpu_image_path(gate, run_dir):
    from sam3spec.bench.pte import benchmark
    from sam3spec.export.artifacts import cached_export
    from sam3spec.export.recipes import get_export_recipe
    from sam3spec.world.inputs import WorldExportInputs

    pte, _ = cached_export(
        SEED_PRESET,
        get_export_recipe("xnnpack", "8da4w"),
        "seed",
        inputs=WorldExportInputs(),
        random_weights=True,
        run_dir=run_dir,
    )
    result = benchmark(pte, warmup=2, repeats=5, eager=SEED_PRESET)
    image, eager = result["image_path"], result["eager"]
    pte_ms, eager_ms = (
        image["timings"]["image_path"]["median_ms"],
        eager["timings"]["image_path"]["median_ms"],
    )
    context = {
        "preset": SEED_PRESET,
        "resolution": 504,
        "device": f"cpu, {image['threads']} threads",
        "weights": "random",
    }
    gate.check(
        "runtime.cpu_speedup_vs_eager",
        result["speedup"],
        **context,
        note=f".pte {pte_ms:.0f} ms vs eager fp32 {eager_ms:.0f} ms (median, same run, shared noisy machine)",
    )
    gate.check(
        "runtime.cpu_program_rss_mb",
        image["peak_rss_mb"] - image["baseline_rss_mb"],
        **context,
        note=f"process peak {image['peak_rss_mb']:.0f} MB incl. libtorch + ExecuTorch bindings ({image['baseline_rss_mb']:.0f} MB)",
    )
