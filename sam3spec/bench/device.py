"""The GPU readiness check: one prepared run timing what distilling the seed student on a GPU needs.

    python -m sam3spec.bench.device --out OUT_DIR           # seed student + SAM 3's architecture, CUDA
    python -m sam3spec.bench.device --out OUT_DIR --tiny    # tiny student + tiny teacher: a rehearsal
    bash scripts/device_check.sh OUT_DIR [--tiny]           # the same, under an 8-minute limit

Each figure takes a first call (timed on its own: it holds ``torch.compile``'s compilation), a few
warm-up calls and a few timed calls, waiting for the GPU after each:

* **inference throughput**, images/s at batch 1 and 8: the student (re-parameterised as deployed,
  text prompt, ``encode_image`` + ``encode_prompt`` + ``decode`` at its resolution) and the teacher
  (one text-prompted ``Sam3Model`` forward at its resolution);
* **the Phase 1 training step** (:mod:`sam3spec.bench.training`: forward with intermediates,
  matching, every loss, backward, AdamW), eager and ``torch.compile``-d, with the teacher's
  targets *cached* (computed once by the teacher and moved to the device each step, as from the
  trainer's target cache) or *online* (the teacher runs on every batch:
  :class:`~sam3spec.distill.targets.TeacherTargets`, as ``--no-cache``);
* the eager cached step under **DDP with one process** (NCCL on CUDA, gloo on the CPU), as the
  trainer wraps it under ``torchrun``.

The student runs under bf16 autocast and the teacher in bf16 (as SAM 3 is loaded), on the CPU
rehearsal too (``--tiny`` without a GPU: one thread, the compiled step left out, since inductor is
timed on CUDA only). The teacher is SAM 3's architecture with random weights (nothing
is downloaded), or a local SAM 3 folder (``--teacher``). The figures and the ``runtime.*`` spec
results drawn from them go to ``OUT_DIR/device_check.json`` (:mod:`sam3spec.bench.device_record`).
"""

from __future__ import annotations

import argparse
import copy
import importlib
import os
import socket
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import torch

from sam3spec.bench.device_record import NO_GPU, RESULTS_NAME, CheckRecord
from sam3spec.bench.measure import time_callable
from sam3spec.config import SEED_PRESET, TINY_PRESET
from sam3spec.teacher.architecture import TINY as TINY_TEACHER
from sam3spec.teacher.architecture import TeacherArchitecture

PROMPT = "red circle"
# The open_clip package provides the student's text tower (and the teacher's BPE vocabulary).
NEEDED_MODULES = {"timm": "timm", "transformers": "transformers", "open_clip": "open_clip_torch"}


@dataclass(frozen=True)
class CheckConfig:
    """What one check runs.

    Attributes:
        preset: student preset.
        resolution: student input side (Phase 1's 504 px for the seed).
        batch: training micro-batch (Phase 1's 4).
        teacher: a small random teacher's shape, or None for SAM 3's (1008 px, 840M parameters).
        warmup: untimed calls after the first one.
        repeats: timed calls.
        inference_batches: batch sizes of the throughput figures.
        deadline_s: no figure starts after this many seconds from the start.
        compile_budget_s: the compiled step starts only with this much time left before the deadline.
    """

    preset: str
    resolution: int
    batch: int
    teacher: TeacherArchitecture | None
    warmup: int
    repeats: int
    inference_batches: tuple[int, ...] = (1, 8)
    deadline_s: float = 420.0
    compile_budget_s: float = 180.0


FULL = CheckConfig(SEED_PRESET, 504, 4, None, warmup=2, repeats=10)
TINY = CheckConfig(
    TINY_PRESET, 64, 2, TINY_TEACHER, warmup=0, repeats=2, deadline_s=120.0, compile_budget_s=0.0
)


def missing_modules() -> list[str]:
    """``"module (pip package): what is missing"`` for each package the check cannot import."""
    missing = []
    for module, package in NEEDED_MODULES.items():
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as error:
            missing.append(f"{module} (pip install {package}): module {error.name!r} not found")
    return missing


def timed(fn: Callable[[], Any], device: torch.device, config: CheckConfig) -> dict[str, float]:
    """:func:`~sam3spec.bench.measure.time_callable` of ``fn`` waiting for the GPU after each call,
    plus ``first_s``: the first call alone (compilation, cuDNN autotuning, allocator growth)."""

    def synchronised() -> None:
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    start = time.perf_counter()
    synchronised()
    first = time.perf_counter() - start
    return {**time_callable(synchronised, config.warmup, config.repeats), "first_s": first}


def throughput(stats: dict[str, float], batch: int) -> dict[str, float]:
    return {**stats, "batch": batch, "images_per_second": batch / (stats["median_ms"] / 1e3)}


def autocast(device: torch.device) -> Callable[[], Any]:
    """The student's precision: bf16 autocast, on the CPU too, so that the rehearsal runs the GPU
    check's dtypes (it cost the tiny CPU run ~10% more CPU time than float32)."""
    return lambda: torch.autocast(device.type, dtype=torch.bfloat16)


def student_inference(config: CheckConfig, device: torch.device) -> dict[str, Any]:
    """Images/s of the deployed student's image path at each of ``config.inference_batches``."""
    from sam3spec.bench.image import image_path
    from sam3spec.config import get_preset, override
    from sam3spec.info import example_inputs
    from sam3spec.models.build import build_student

    torch.manual_seed(0)
    student = build_student(override(get_preset(config.preset), {"image_size": config.resolution})).eval()
    student.reparameterize()
    student.to(device)
    context = autocast(device)
    figures: dict[str, Any] = {"resolution": config.resolution, "precision": "bf16 autocast"}
    for batch in config.inference_batches:
        inputs = example_inputs(student, config.resolution, batch)

        def run(inputs: dict = inputs) -> None:
            with context():
                image_path(student, inputs)

        figures[f"batch_{batch}"] = throughput(timed(run, device, config), batch)
    return figures


def teacher_inference(teacher, config: CheckConfig, device: torch.device) -> dict[str, Any]:
    """Images/s of the teacher's detector (one text-prompted forward) at each batch size."""
    figures: dict[str, Any] = {"resolution": teacher.image_size, "precision": str(teacher.dtype)}
    for batch in config.inference_batches:
        size = teacher.image_size
        pixels = torch.randn(batch, 3, size, size, device=device, dtype=teacher.dtype)
        tokens = {name: value.to(device) for name, value in teacher.tokenizer([PROMPT] * batch).items()}

        @torch.no_grad()
        def run(pixels: torch.Tensor = pixels, tokens: dict = tokens) -> None:
            teacher.detector(pixel_values=pixels, **tokens)

        figures[f"batch_{batch}"] = throughput(timed(run, device, config), batch)
    return figures


def teacher_batch(batch: int, size: int) -> dict[str, Any]:
    """A text-prompted batch as the distillation data gives :class:`TeacherTargets` (random images)."""
    return {
        "batch_size": batch,
        "teacher_image": torch.randint(0, 256, (batch, 3, size, size), dtype=torch.uint8),
        "prompt_type": ["text"] * batch,
        "text": [PROMPT] * batch,
        "points_xy": [torch.zeros(0, 2)] * batch,
        "prompt_boxes_xyxy": [torch.zeros(0, 4)] * batch,
    }


def training(
    bench, targets: Callable[[], Any], device: torch.device, config: CheckConfig, model=None
) -> dict:
    """Step time of :func:`~sam3spec.bench.training.train_step` with ``targets()`` moved to ``device``."""
    from sam3spec.bench.training import train_step

    context = autocast(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    stats = timed(lambda: train_step(bench, targets().to(device), model, context), device, config)
    stats = throughput(stats, config.batch)
    if device.type == "cuda":
        stats["peak_gpu_mb"] = torch.cuda.max_memory_allocated(device) / 2**20
    return stats


def ddp_training(bench, targets: Callable[[], Any], device: torch.device, config: CheckConfig) -> dict:
    """The eager step under DistributedDataParallel with one process (a copy of the model)."""
    import torch.distributed as distributed

    from sam3spec.distill.runtime import synchronise_batch_norm

    backend = "nccl" if device.type == "cuda" else "gloo"
    os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
    os.environ.setdefault("MASTER_PORT", str(free_port()))
    distributed.init_process_group(backend, rank=0, world_size=1)
    try:
        model = synchronise_batch_norm(copy.deepcopy(bench.model), device)  # as the trainer does
        optimizer = torch.optim.AdamW(
            [p for p in model.parameters() if p.requires_grad], lr=1e-4, foreach=True
        )
        wrapped = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None, find_unused_parameters=True
        )
        stats = training(replace(bench, model=model, optimizer=optimizer), targets, device, config, wrapped)
    finally:
        distributed.destroy_process_group()
    return {**stats, "backend": backend, "world_size": 1}


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def run_check(config: CheckConfig, out: Path, device: torch.device, teacher_dir: Path | None = None) -> int:
    """Measure every figure on ``device``, writing ``out/device_check.json``; returns the exit status
    (1 when a figure failed)."""
    from sam3spec.bench.training import phase1_bench
    from sam3spec.distill.targets import TeacherTargets

    if device.type != "cuda":
        reason = NO_GPU
    elif config.teacher is not None:
        reason = "tiny rehearsal: the spec is for the seed student and SAM 3's architecture"
    else:
        reason = None
    context = {
        "preset": config.preset,
        "resolution": config.resolution,
        "weights": "random" if teacher_dir is None else f"student random, teacher {teacher_dir}",
        "data": "synthetic",
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
    }
    check = CheckRecord(Path(out) / RESULTS_NAME, config.deadline_s, reason, context)
    check.check = {**asdict(config), "device": context["device"], "torch": torch.__version__}
    check.write()  # every figure "not reached" until measured
    check.measure("student_inference", lambda: student_inference(config, device))
    teacher = load_check_teacher(config, device, teacher_dir)
    check.check["teacher_resolution"] = teacher.image_size
    check.measure("teacher_inference", lambda: teacher_inference(teacher, config, device))

    width = teacher.detector.config.vision_config.fpn_hidden_size
    bench = phase1_bench(config.preset, config.resolution, config.batch, device, teacher_width=width)
    builder = TeacherTargets(teacher, bench.geometry, features=True)
    batch = teacher_batch(config.batch, teacher.image_size)
    cached = builder(batch)  # held on the CPU, as the target cache does
    check.measure("train_eager_cached", lambda: training(bench, lambda: cached, device, config))
    check.measure("train_eager_online", lambda: training(bench, lambda: builder(batch), device, config))
    check.measure("train_ddp_cached", lambda: ddp_training(bench, lambda: cached, device, config))
    # Compiled with inductor on CUDA only: on a CPU even tracing the tiny step took ~15 s of CPU time.
    compiled = torch.compile(bench.model)
    skip = None if device.type == "cuda" else f"{NO_GPU}: torch.compile (inductor) is timed on CUDA only"
    for targets, name in ((lambda: cached, "cached"), (lambda: builder(batch), "online")):
        check.measure(
            f"train_compiled_{name}",
            lambda targets=targets: training(bench, targets, device, config, compiled),
            budget_s=config.compile_budget_s if name == "cached" else 0.0,
            skip=skip,
        )
    print(f"device check: {check.path} written after {check.elapsed():.0f} s", file=sys.stderr)
    return 1 if check.failures else 0


def load_check_teacher(config: CheckConfig, device: torch.device, teacher_dir: Path | None):
    """SAM 3's architecture with random weights (or ``config.teacher``'s), or a local SAM 3 folder."""
    if teacher_dir is not None:
        from sam3spec.teacher.loading import load_teacher

        return load_teacher(teacher_dir, device=device, dtype=torch.bfloat16, with_tracker=False)
    from sam3spec.teacher.hf_adapter import random_teacher

    return random_teacher(config.teacher, device, torch.bfloat16)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help=f"folder for {RESULTS_NAME}")
    parser.add_argument(
        "--tiny",
        action="store_true",
        help="tiny student and teacher on the CPU (CUDA when present): a rehearsal",
    )
    parser.add_argument("--teacher", type=Path, help="a local SAM 3 folder instead of random weights")
    parser.add_argument(
        "--deadline", type=float, help="seconds after which no figure starts (default 420; tiny 120)"
    )
    args = parser.parse_args(argv)
    config = TINY if args.tiny else FULL
    if args.deadline is not None:
        config = replace(config, deadline_s=args.deadline)
    missing = missing_modules()
    if missing:
        print("device check: missing Python packages: " + "; ".join(missing), file=sys.stderr)
        print("  (offline machines: see docs/BENCHMARKS.md, 'GPU readiness check')", file=sys.stderr)
        return 3
    if args.teacher is not None and not args.teacher.is_dir():
        print(
            f"device check: --teacher {args.teacher} is not a folder (expected a local SAM 3 folder)",
            file=sys.stderr,
        )
        return 2
    if torch.cuda.is_available():
        device = torch.device("cuda", torch.cuda.current_device())
    elif args.tiny:
        device = torch.device("cpu")
        # Tiny sizes gain nothing from threads, and on a busy CI machine two threads that wait
        # for each other's cores made each call ~20x slower than one thread.
        torch.set_num_threads(1)
    else:
        print(
            "device check: no CUDA device; the full check times the seed student against SAM 3's 840M-parameter "
            "teacher on a GPU. --tiny rehearses it on the CPU.",
            file=sys.stderr,
        )
        return 2
    return run_check(config, args.out, device, args.teacher)


if __name__ == "__main__":
    raise SystemExit(main())
