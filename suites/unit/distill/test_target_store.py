"""The stage-target teacher cache (``teacher cache --stage``): ranks, resume, losses, refusals."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from sam3spec.config import override
from sam3spec.distill import RunOptions, distill
from sam3spec.distill.store import TargetStore, TeacherCacheMismatch, dequantize, quantize
from sam3spec.distill.store_build import build_target_store
from sam3spec.teacher import shards
from sam3spec.world.stages import PHASE1_WORLD

LIMIT = 12  # the (image, phrase) pairs of 2 images: 2 shards of one image each
SETTINGS = {
    "resolution": 64,
    "batch_size": 2,
    "prompts_per_image": 2,
    "grad_accum": 1,
    "epochs": 1,
    "checkpoint_every": 50,
    "log_every": 1,
    "prompt_draws": 1,
    "warmup_steps": 2,
}


def stage(**changes):
    return override(PHASE1_WORLD, {**SETTINGS, **changes})


def options(world: Path, teacher: Path, out: Path, **changes) -> RunOptions:
    return RunOptions(
        data=world, out=out, teacher=str(teacher), limit=LIMIT, progress=False, tensorboard=False, **changes
    )


def shard_bytes(directory: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted((directory / "shards").glob("*.safetensors"))}


@pytest.fixture(scope="module")
def reference(distill_world, stand_in_teacher, stand_in_teacher_dir, tmp_path_factory) -> Path:
    """The cache written by one process (one image per shard)."""
    out = tmp_path_factory.mktemp("store") / "one"
    build_target_store(
        stage(), options(distill_world, stand_in_teacher_dir, out), stand_in_teacher, out, 1, progress=False
    )
    return out


def test_two_ranks_in_turn_cover_every_sample_once(
    reference, distill_world, stand_in_teacher, stand_in_teacher_dir, tmp_path
):
    out = tmp_path / "ranks"
    run = options(distill_world, stand_in_teacher_dir, out)
    first = build_target_store(stage(), run, stand_in_teacher, out, 1, rank=1, world_size=2, progress=False)
    assert first["computed"] == first["shards"] // 2 and "index" not in first
    assert not (out / "index.json").exists()  # rank 0's shards are missing: no index yet
    with pytest.raises(FileNotFoundError, match="unfinished"):
        TargetStore(out)
    second = build_target_store(stage(), run, stand_in_teacher, out, 1, rank=0, world_size=2, progress=False)
    index = second["index"]
    assert index["samples"] == index["cached_samples"] == LIMIT
    listed = [
        sample
        for number in range(index["shards"])
        for item in shards.read_sidecar(out, number)["items"]
        for sample in item["samples"]
    ]
    assert sorted(listed) == list(range(LIMIT))  # every sample exactly once
    arrays = load_file(str(out / "index.safetensors"))
    for number in range(index["shards"]):
        for item in shards.read_sidecar(out, number)["items"]:
            assert all(int(arrays["shard"][sample]) == number for sample in item["samples"])
    assert shard_bytes(out) == shard_bytes(reference)
    assert torch.equal(arrays["shard"], load_file(str(reference / "index.safetensors"))["shard"])
    assert index["bytes_per_sample"] == pytest.approx(index["total_bytes"] / LIMIT)
    assert index["bytes_per_sample"] > 0 and index["sa1b_bytes"] == pytest.approx(
        11e6 * index["bytes_per_sample"]
    )


def test_an_interrupted_shard_is_not_visible_and_is_redone(
    reference, distill_world, stand_in_teacher, stand_in_teacher_dir, tmp_path, monkeypatch
):
    out = tmp_path / "killed"
    run = options(distill_world, stand_in_teacher_dir, out)
    real_save, calls = shards.save_file, []

    def crash_on_second_shard(tensors, path, metadata=None):
        calls.append(path)
        if len(calls) == 2:  # killed mid-write: a partial temporary file, no shard, no sidecar
            Path(path).write_bytes(b"partial")
            raise KeyboardInterrupt
        real_save(tensors, path, metadata=metadata)

    monkeypatch.setattr(shards, "save_file", crash_on_second_shard)
    with pytest.raises(KeyboardInterrupt):
        build_target_store(stage(), run, stand_in_teacher, out, 1, progress=False)
    monkeypatch.setattr(shards, "save_file", real_save)
    assert shards.shard_done(out, 0, ["group:0"]) and not shards.shard_done(out, 1, ["group:1"])
    assert [path.name for path in (out / "shards").glob("shard_00001*")] == [
        "shard_00001.safetensors.rank0.tmp"
    ]
    with pytest.raises(FileNotFoundError, match="unfinished"):
        TargetStore(out)
    counts = build_target_store(stage(), run, stand_in_teacher, out, 1, progress=False)
    assert counts["skipped"] == 1 and counts["computed"] == counts["shards"] - 1
    assert not list((out / "shards").glob("*.tmp"))
    assert shard_bytes(out) == shard_bytes(reference)


def test_training_from_the_cache_gives_the_online_losses(distill_world, tmp_path):
    """With the trained concept-world teacher (a random teacher's queries are near ties, so the
    matching flips with any rounding), the logged losses of training from the cache equal those of
    the teacher run on every batch, up to the fp16 storage."""
    from sam3spec.teacher.loading import load_teacher
    from sam3spec.world.teacher import shipped_teacher_path

    teacher = shipped_teacher_path()
    cache = tmp_path / "cache"
    build_target_store(
        stage(), options(distill_world, teacher, cache), load_teacher(teacher), cache, 1, progress=False
    )
    common = {"max_steps": 2, "threads": torch.get_num_threads()}
    stored = distill(
        stage(), options(distill_world, teacher, tmp_path / "stored", teacher_cache=cache, **common)
    )
    online = distill(
        stage(), options(distill_world, teacher, tmp_path / "online", cache_targets=False, **common)
    )
    assert stored["steps"] == online["steps"] == 2
    rows = [
        [json.loads(line) for line in (tmp_path / run / "train_log.jsonl").read_text().splitlines()]
        for run in ("stored", "online")
    ]
    terms = [name for name in rows[1][0] if name not in ("step", "epoch", "lr", "text_prompts", "samples")]
    assert {"loss", "fpn_feature", "encoder_feature", "mask_bce", "logit", "presence"} <= set(terms)
    for cached, fresh in zip(*rows, strict=True):
        for name in terms:  # fp16 storage of masks and features
            assert cached[name] == pytest.approx(fresh[name], rel=1e-3, abs=1e-4), name


def test_a_cache_made_at_another_teacher_resolution_is_refused(
    reference, distill_world, stand_in_teacher_dir, tmp_path, capsys
):
    from sam3spec.cli import main

    with pytest.raises(TeacherCacheMismatch, match="teacher resolution"):
        distill(
            stage(teacher_resolution=112),
            options(distill_world, stand_in_teacher_dir, tmp_path / "api", teacher_cache=reference),
        )
    code = main(
        [
            "train",
            "stage",
            "--stage",
            "phase1-world",
            "--data",
            str(distill_world),
            "--teacher",
            str(stand_in_teacher_dir),
            "--teacher-cache",
            str(reference),
            "--out",
            str(tmp_path / "cli"),
            "--limit",
            str(LIMIT),
            "--quiet",
            "--no-tensorboard",
            *[f"--set={key}={value}" for key, value in {**SETTINGS, "teacher_resolution": 112}.items()],
        ]
    )
    error = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(error) == 1
    assert "teacher resolution" in error[0] and "null, but" in error[0] and "needs 112" in error[0]


def test_other_student_grid_or_data_is_refused(reference, distill_world, stand_in_teacher_dir, tmp_path):
    with pytest.raises(TeacherCacheMismatch, match="student grid"):
        distill(
            stage(resolution=96),
            options(distill_world, stand_in_teacher_dir, tmp_path / "a", teacher_cache=reference),
        )
    run = options(distill_world, stand_in_teacher_dir, tmp_path / "b", teacher_cache=reference)
    run.limit = LIMIT - 2
    with pytest.raises(TeacherCacheMismatch, match="samples 12"):
        distill(stage(), run)


def test_int8_features_keep_one_percent_of_each_channel():
    generator = torch.Generator().manual_seed(0)
    features = torch.randn(16, 9, 9, generator=generator) * torch.logspace(-3, 2, 16)[:, None, None]
    stored = quantize(features, "int8")
    assert stored[""].dtype == torch.int8 and stored[".scale"].shape == (16,)
    error = (dequantize(stored[""], stored[".scale"]) - features).abs().amax(dim=(1, 2))
    assert bool((error <= features.abs().amax(dim=(1, 2)) / 254 + 1e-9).all())
