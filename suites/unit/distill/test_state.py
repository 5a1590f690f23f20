"""Training checkpoints: optimizer round trip through safetensors + JSON, atomicity, pruning."""

from __future__ import annotations

import json

import torch
from safetensors.torch import load_file

from sam3spec.checkpoint import load_student, write_student
from sam3spec.distill.state import (
    latest_checkpoint,
    list_checkpoints,
    optimizer_from_flat,
    optimizer_to_flat,
    read_training_state,
    restore_rng,
    rng_tensors,
    save_checkpoint,
)


def test_optimizer_round_trip_is_exact():
    model = torch.nn.Linear(3, 2)
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.1)
    for _ in range(3):
        model(torch.randn(4, 3)).sum().backward()
        optimizer.step()
    tensors, meta = optimizer_to_flat(optimizer)
    meta = json.loads(json.dumps(meta))  # what training.json holds
    fresh = torch.optim.AdamW(torch.nn.Linear(3, 2).parameters(), lr=0.1)
    fresh.load_state_dict(optimizer_from_flat(tensors, meta))
    for key, value in optimizer.state_dict()["state"].items():
        for name, tensor in value.items():
            assert torch.equal(fresh.state_dict()["state"][key][name], tensor)


def test_rng_round_trip():
    state = rng_tensors()
    first = torch.rand(3)
    restore_rng(state)
    assert torch.equal(torch.rand(3), first)


def test_checkpoints_are_complete_pruned_and_loadable(tmp_path, tiny_student):
    directory = tmp_path / "checkpoints"

    def weights(folder):
        write_student(tiny_student, folder)

    for step in (2, 4, 6):
        save_checkpoint(directory, step, weights, {"x": torch.tensor([step])}, {"key": "k"}, keep_last_n=2)
    assert [p.name for p in list_checkpoints(directory)] == ["step_000004", "step_000006"]
    latest = latest_checkpoint(directory)
    assert latest.name == "step_000006"
    tensors, meta = read_training_state(latest)
    assert tensors["x"].item() == 6 and meta == {"step": 6, "key": "k"}
    assert set(load_file(str(latest / "model.safetensors"))) == set(tiny_student.state_dict())
    assert load_student(latest).config == tiny_student.config  # a checkpoint is a student folder


def test_stale_temporary_folder_is_ignored_and_removed(tmp_path, tiny_student):
    directory = tmp_path / "checkpoints"
    save_checkpoint(directory, 2, lambda folder: write_student(tiny_student, folder), {}, {}, keep_last_n=3)
    stale = directory / ".step_000004.abc.tmp"
    stale.mkdir()
    (stale / "model.safetensors").write_bytes(b"half written")
    (directory / "latest.json").write_text(
        json.dumps({"step": 4, "path": "step_000004"})
    )  # points at nothing
    assert latest_checkpoint(directory).name == "step_000002"
    assert not stale.exists()
