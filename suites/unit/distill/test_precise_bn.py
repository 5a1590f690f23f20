"""Precise BN (``distill/precise_bn.py``): the running statistics become the average of the batch
statistics over the given micro-batches (``merge`` of them per forward); weights, momentum and mode
are left as they were; in a run, only the final weights' BatchNorm buffers change; frozen
statistics (from the first step or from a later epoch) stay the same in every later checkpoint, and
a run resumed on either side of the freeze ends bit for bit where the uninterrupted run does."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file

from sam3spec.distill import RunOptions, distill
from sam3spec.distill.adapters import StudentGeometry
from sam3spec.distill.data import training_dataset
from sam3spec.distill.precise_bn import batch_norm_layers, recalibrate_batch_norm
from sam3spec.distill.runtime import Processes
from sam3spec.distill.state import latest_checkpoint
from sam3spec.distill.task import DistillModel
from sam3spec.world.stages import PHASE1_WORLD

from .conftest import RESOLUTION
from .test_trainer import LIMIT, cli_args, free_port, stage, subprocess_env

BATCHES = [[0, 1], [2, 3], [4, 5]]


def distill_model(student) -> DistillModel:
    geometry = StudentGeometry.of(student.config, RESOLUTION)
    return DistillModel(student, None, geometry, (0, 1, 2, 3), aux=False)


def test_running_statistics_are_the_mean_of_the_batch_statistics(distill_world, tiny_student, tokenizer):
    dataset = training_dataset(distill_world, RESOLUTION, PHASE1_WORLD.prompts, seed=0)
    model = distill_model(tiny_student).eval()
    layer = batch_norm_layers(model)[0]
    momentum = layer.momentum
    weights = {name: value.clone() for name, value in model.state_dict().items() if "running" not in name}
    seen: list[torch.Tensor] = []
    hook = layer.register_forward_hook(lambda module, args, output: seen.append(args[0].detach().clone()))
    used = recalibrate_batch_norm(
        model, dataset, BATCHES, tokenizer, torch.device("cpu"), Processes(), progress=False
    )
    hook.remove()
    assert used == len(BATCHES) == len(seen)
    # momentum None: the cumulative average of each batch's mean and (unbiased) variance
    mean = torch.stack([batch.mean((0, 2, 3)) for batch in seen]).mean(0)
    variance = torch.stack([batch.transpose(0, 1).flatten(1).var(1) for batch in seen]).mean(0)
    torch.testing.assert_close(layer.running_mean, mean, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(layer.running_var, variance, rtol=1e-4, atol=1e-5)
    assert layer.momentum == momentum and not model.training
    for name, value in model.state_dict().items():
        if name in weights and "num_batches_tracked" not in name:
            assert torch.equal(value, weights[name]), name


def test_merged_micro_batches_are_one_forward_each(distill_world, tiny_student, tokenizer):
    dataset = training_dataset(distill_world, RESOLUTION, PHASE1_WORLD.prompts, seed=0)
    model = distill_model(tiny_student)
    layer = batch_norm_layers(model)[0]
    sizes: list[int] = []  # images per forward
    hook = layer.register_forward_hook(lambda module, args, output: sizes.append(args[0].shape[0]))
    cpu = torch.device("cpu")
    used = recalibrate_batch_norm(
        model, dataset, BATCHES, tokenizer, cpu, Processes(), progress=False, merge=2
    )
    hook.remove()
    # 3 micro-batches at merge 2: one forward of the first two, one of the third; all 3 counted
    assert used == 3 and len(sizes) == 2
    merged = {name: value.clone() for name, value in model.state_dict().items() if "running" in name}
    recalibrate_batch_norm(
        model, dataset, [[0, 1, 2, 3], [4, 5]], tokenizer, cpu, Processes(), progress=False
    )
    for name, value in model.state_dict().items():
        if name in merged:
            torch.testing.assert_close(value, merged[name], rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="merge must be >= 1"):
        recalibrate_batch_norm(model, dataset, BATCHES, tokenizer, cpu, Processes(), progress=False, merge=0)


def test_no_batch_leaves_the_statistics_alone(distill_world, tiny_student, tokenizer):
    dataset = training_dataset(distill_world, RESOLUTION, PHASE1_WORLD.prompts, seed=0)
    model = distill_model(tiny_student)
    layer = batch_norm_layers(model)[0]
    with torch.no_grad():
        layer.running_mean.fill_(0.25)
    assert recalibrate_batch_norm(model, dataset, [], tokenizer, torch.device("cpu"), Processes()) == 0
    assert torch.all(layer.running_mean == 0.25)


def test_a_run_changes_only_the_final_batch_norm_buffers(distill_world, stand_in_teacher_dir, tmp_path):
    out = tmp_path / "run"
    options = RunOptions(
        data=distill_world,
        out=out,
        teacher=stand_in_teacher_dir,
        limit=LIMIT,
        progress=False,
        tensorboard=False,
    )
    distill(stage(epochs=1, precise_bn_batches=3, freeze_batch_norm=False), options)
    assert json.loads((out / "summary.json").read_text())["precise_bn_batches"] == 3
    trained = load_file(latest_checkpoint(out / "checkpoints") / "model.safetensors")
    final = load_file(out / "final" / "model.safetensors")
    assert set(trained) == set(final)
    changed = {name for name in final if not torch.equal(final[name], trained[name])}
    assert changed and all(
        name.rsplit(".", 1)[-1] in ("running_mean", "running_var", "num_batches_tracked") for name in changed
    )


def test_frozen_batch_norm_keeps_the_start_statistics_while_the_weights_train(
    distill_world, stand_in_teacher_dir, tmp_path
):
    out = tmp_path / "frozen"
    options = RunOptions(
        data=distill_world,
        out=out,
        teacher=stand_in_teacher_dir,
        limit=LIMIT,
        progress=False,
        tensorboard=False,
    )
    frozen = stage(
        epochs=1, freeze_batch_norm=True, freeze_batch_norm_epoch=0, precise_bn_batches=2, precise_bn_merge=2
    )
    distill(frozen, options)
    assert json.loads((out / "summary.json").read_text())["precise_bn_batches"] == 2
    first = load_file(sorted((out / "checkpoints").glob("step_*"))[0] / "model.safetensors")
    final = load_file(out / "final" / "model.safetensors")
    statistics = [
        name for name in final if name.endswith(("running_mean", "running_var", "num_batches_tracked"))
    ]
    assert statistics and all(torch.equal(first[name], final[name]) for name in statistics)
    # the 2 micro-batches went through as one merged forward
    assert all(int(final[name]) == 1 for name in statistics if name.endswith("num_batches_tracked"))
    assert any(not torch.equal(first[name], final[name]) for name in final if name not in statistics)


def statistics_of(checkpoint) -> dict[str, torch.Tensor]:
    weights = load_file(checkpoint / "model.safetensors")
    return {name: value for name, value in weights.items() if name.endswith(("running_mean", "running_var"))}


def test_statistics_frozen_from_a_later_epoch_and_resumed_on_either_side(
    distill_world, stand_in_teacher_dir, tmp_path
):
    # 2 epochs of 8 steps, checkpoints every 2: the statistics train in epoch 0 (steps 1-8), are
    # re-estimated over 2 micro-batches at epoch 1's start and frozen (steps 9-16).
    frozen_from_1 = stage(
        freeze_batch_norm=True, freeze_batch_norm_epoch=1, precise_bn_batches=2, keep_last_n=20
    )
    out = tmp_path / "run"
    options = RunOptions(
        data=distill_world,
        out=out,
        teacher=stand_in_teacher_dir,
        limit=LIMIT,
        progress=False,
        tensorboard=False,
    )
    distill(frozen_from_1, options)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["steps"] == 16 and summary["batch_norm_frozen"] and summary["precise_bn_batches"] == 2
    checkpoints = out / "checkpoints"
    step_2, step_8 = statistics_of(checkpoints / "step_000002"), statistics_of(checkpoints / "step_000008")
    assert any(not torch.equal(step_2[name], step_8[name]) for name in step_2)  # training-mode in epoch 0
    frozen = statistics_of(checkpoints / "step_000010")
    assert any(not torch.equal(step_8[name], frozen[name]) for name in frozen)  # re-estimated at epoch 1
    for later in ("step_000016", "../final"):
        assert all(
            torch.equal(frozen[name], value) for name, value in statistics_of(checkpoints / later).items()
        )
    reference = load_file(out / "final" / "model.safetensors")

    # Resume from step 6 (before the freeze: it re-estimates them) and from step 12 (after it: they
    # come with the checkpoint); both end on the uninterrupted run's final weights, bit for bit.
    for resume_from in (6, 12):
        run = tmp_path / f"resumed_{resume_from}"
        shutil.copytree(out, run)
        shutil.rmtree(run / "final")
        for later in (run / "checkpoints").glob("step_*"):
            if int(later.name.split("_")[1]) > resume_from:
                shutil.rmtree(later)
        resumed = RunOptions(
            data=distill_world,
            out=run,
            teacher=stand_in_teacher_dir,
            limit=LIMIT,
            resume=True,
            progress=False,
            tensorboard=False,
        )
        distill(frozen_from_1, resumed)
        final = load_file(run / "final" / "model.safetensors")
        assert all(torch.equal(final[name], reference[name]) for name in reference), resume_from


def test_two_gloo_processes_freeze_the_same_statistics(distill_world, stand_in_teacher_dir, tmp_path):
    # Precise BN under torchrun: AllReduceBatchNorm sums the statistics of both ranks inside the
    # forward, so the ranks must pass the same batches in lock step; both end bit-identical.
    run = tmp_path / "ddp"
    args = cli_args(
        distill_world,
        stand_in_teacher_dir,
        run,
        epochs=1,
        freeze_batch_norm=True,
        freeze_batch_norm_epoch=0,
        precise_bn_batches=2,
    )
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        "2",
        "--master_port",
        str(free_port()),
        "-m",
        "sam3spec.cli",
        *args,
    ]
    result = subprocess.run(
        command, env={**subprocess_env(), "OMP_NUM_THREADS": "1"}, capture_output=True, text=True, timeout=240
    )
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads((run / "summary.json").read_text())
    assert summary["processes"] == 2 and summary["precise_bn_batches"] == 2
    first, second = summary["rank_weight_digests"]
    assert first == second
