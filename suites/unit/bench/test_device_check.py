"""The GPU readiness check (``scripts/device_check.sh``): its tiny CPU run measures what a CPU can,
records what needs a GPU as not measured ("no GPU"), and its JSON goes into the report."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from sam3spec.bench import device
from sam3spec.bench.device_record import NO_GPU, RESULTS_NAME, SPEC_FIGURES, CheckRecord
from sam3spec.report import FAIL, NOT_MEASURED, PASS, ResultStore, load_specs, render

ROOT = Path(__file__).resolve().parents[3]
CPU_FIGURES = ("train_eager_cached", "train_eager_online", "train_ddp_cached")
GPU_ONLY = ("train_compiled_cached", "train_compiled_online")


@pytest.fixture(scope="module")
def tiny_check(tmp_path_factory) -> tuple[subprocess.CompletedProcess, dict, Path]:
    """``bash scripts/device_check.sh OUT --tiny`` with CUDA hidden (a generous deadline: CI machines are shared)."""
    out = tmp_path_factory.mktemp("device_check")
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    process = subprocess.run(
        ["bash", str(ROOT / "scripts" / "device_check.sh"), str(out), "--tiny", "--deadline", "900"],
        capture_output=True,
        text=True,
        env=env,
        timeout=1200,
    )
    path = out / RESULTS_NAME
    return process, json.loads(path.read_text()) if path.is_file() else {}, path


def test_tiny_check_measures_cpu_figures_and_leaves_gpu_ones_to_a_gpu(tiny_check):
    process, data, _ = tiny_check
    assert process.returncode == 0, process.stderr[-3000:]
    measurements = data["measurements"]
    for name in ("student_inference", "teacher_inference"):
        for batch in (1, 8):
            figure = measurements[name][f"batch_{batch}"]
            assert figure["batch"] == batch and figure["images_per_second"] > 0 and figure["median_ms"] > 0
    for name in CPU_FIGURES:
        assert measurements[name]["median_ms"] > 0 and measurements[name]["first_s"] > 0, name
    assert measurements["train_ddp_cached"]["backend"] == "gloo"
    for name in GPU_ONLY:
        assert measurements[name]["skipped"].startswith(NO_GPU), measurements[name]
    assert data["check"]["preset"] == "efficientsam3-tiny" and data["check"]["device"] == "cpu"


def test_tiny_check_records_every_gpu_spec_as_not_measured_no_gpu(tiny_check):
    _, data, _ = tiny_check
    results = {item["id"]: item for item in data["results"]}
    assert set(results) == set(SPEC_FIGURES)
    for spec_id, result in results.items():
        assert (result["status"], result["reason"], result["measured"]) == (NOT_MEASURED, NO_GPU, None), (
            spec_id
        )


def test_tiny_check_json_is_ingested_into_the_report(tiny_check):
    _, _, path = tiny_check
    store = ResultStore()
    assert store.ingest(path) == len(SPEC_FIGURES)
    report = render(load_specs(), store, "device check", stages=["runtime"])
    rows = {line.split("|")[1].strip(): line for line in report.splitlines() if line.startswith("| `")}
    for spec_id in SPEC_FIGURES:
        assert f"not measured ({NO_GPU})" in rows[f"`{spec_id}`"] and RESULTS_NAME in rows[f"`{spec_id}`"]


def test_spec_results_come_from_the_figures_or_say_what_is_missing(tmp_path):
    context = {"preset": "seed", "device": "a GPU"}
    record = CheckRecord(tmp_path / RESULTS_NAME, deadline_s=3600, spec_reason=None, context=context)
    record.measure(
        "student_inference", lambda: {f"batch_{b}": {"images_per_second": 300.0 * b} for b in (1, 8)}
    )
    record.measure(
        "teacher_inference", lambda: {f"batch_{b}": {"images_per_second": 20.0 * b} for b in (1, 8)}
    )
    record.measure("train_eager_cached", lambda: {"median_ms": 200.0})
    record.measure("train_ddp_cached", lambda: {"median_ms": 260.0})
    record.measure("train_eager_online", lambda: 1 / 0)
    record.measure("train_compiled_cached", lambda: {"median_ms": 100.0}, skip="no room")
    results = {result.id: result for result in ResultStore.from_json(record.path).results.values()}
    ratio = results["runtime.student_teacher_throughput_ratio"]
    assert (ratio.status, ratio.measured, ratio.context["device"]) == (FAIL, 15.0, "a GPU")  # 2400 / 160 < 30
    assert results["runtime.gpu_train_step_ms"].status == PASS
    assert (results["runtime.gpu_ddp_overhead"].status, results["runtime.gpu_ddp_overhead"].measured) == (
        FAIL,
        1.3,
    )
    assert (
        results["runtime.gpu_train_step_online_ms"].reason
        == "train_eager_online failed: ZeroDivisionError: division by zero"
    )
    assert results["runtime.gpu_compile_speedup"].reason == "train_compiled_cached: no room"
    assert record.failures == 1


def test_a_figure_past_the_deadline_is_not_reached(tmp_path):
    record = CheckRecord(tmp_path / RESULTS_NAME, deadline_s=0.0, spec_reason=None, context={})
    record.measure("train_eager_cached", lambda: pytest.fail("ran after the deadline"))
    reason = ResultStore.from_json(record.path).results["runtime.gpu_train_step_ms"].reason
    assert reason == "train_eager_cached: not reached within the 0 s deadline"
    assert "not reached" in record.problem("train_ddp_cached")  # never started: the run stopped before it


def test_a_missing_package_is_named(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(device, "NEEDED_MODULES", {"sam3spec_no_such_module": "no-such-package"})
    assert device.main(["--out", str(tmp_path), "--tiny"]) == 3
    error = capsys.readouterr().err
    assert "sam3spec_no_such_module (pip install no-such-package)" in error and "BENCHMARKS.md" in error


def test_the_full_check_refuses_a_machine_without_cuda(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(device, "NEEDED_MODULES", {})
    monkeypatch.setattr(device.torch.cuda, "is_available", lambda: False)
    assert device.main(["--out", str(tmp_path)]) == 2
    assert "no CUDA device" in capsys.readouterr().err and not (tmp_path / RESULTS_NAME).exists()


def test_the_script_names_its_arguments():
    process = subprocess.run(
        ["bash", str(ROOT / "scripts" / "device_check.sh")], capture_output=True, text=True, timeout=60
    )
    assert process.returncode == 2 and "usage: bash scripts/device_check.sh OUT_DIR" in process.stderr
