"""``sam3spec prune``: the dry run deletes nothing; --apply deletes exactly what it listed; the newest
and final checkpoints, export artefacts and anything outside the run directory survive."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from sam3spec.cli import main
from sam3spec.prune import apply_prune, plan_prune


def touch(path: Path, size: int = 10) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x" * size)
    return path


def snapshot(root: Path) -> dict[str, int]:
    out = {}
    for directory, _, files in os.walk(root, followlinks=False):
        for name in files:
            path = Path(directory) / name
            out[str(path.relative_to(root))] = path.lstat().st_size
    return out


@pytest.fixture()
def run_dir(tmp_path: Path) -> Path:
    run = tmp_path / "run"
    outside = touch(tmp_path / "outside" / "precious.bin", 7)
    for stage in ("phase1", "phase2"):
        for step in (100, 200, 300):
            touch(run / stage / "checkpoints" / f"step_{step:06d}" / "model.safetensors", step)
            touch(run / stage / "checkpoints" / f"step_{step:06d}" / "training.json", 3)
        (run / stage / "checkpoints" / "latest.json").write_text(
            json.dumps({"step": 300, "path": "step_000300"})
        )
        touch(run / stage / "checkpoints" / ".step_000400.tmp" / "model.safetensors", 5)
        touch(run / stage / "final" / "model.safetensors", 50)
        touch(run / stage / "tensorboard" / "events.out.tfevents.1", 20)
        touch(run / stage / "teacher_targets" / "shard_000.safetensors", 40)
        touch(run / stage / "summary.json", 2)
    touch(run / "export" / "student.pte", 60)
    touch(run / "report.md", 4)
    touch(run / "vis" / "step_100.png", 9)
    touch(run / "vis" / "model.pte", 9)  # an export artefact inside a prunable folder: kept
    os.symlink(tmp_path / "outside", run / "phase1" / "tensorboard" / "linked_dir")
    os.symlink(outside, run / "vis" / "linked_file.bin")
    os.symlink(tmp_path / "outside", run / "cache")  # a whole category folder that points outside
    return run


def test_dry_run_deletes_nothing_and_lists_every_file(
    run_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = snapshot(run_dir.parent)
    assert main(["prune", str(run_dir)]) == 0
    assert snapshot(run_dir.parent) == before
    printed = capsys.readouterr().out
    plan = plan_prune(run_dir)
    for item in plan.items:
        assert str(item.path.relative_to(run_dir)) in printed
    assert f"{plan.total_bytes:,d} bytes" in printed


def test_apply_deletes_exactly_the_plan(run_dir: Path) -> None:
    plan = plan_prune(run_dir)
    listed = {str(item.path.relative_to(run_dir.parent)) for item in plan.items}
    before = snapshot(run_dir.parent)
    freed = apply_prune(plan)
    after = snapshot(run_dir.parent)
    assert set(before) - set(after) == listed
    assert freed == sum(before[p] for p in listed)
    for stage in ("phase1", "phase2"):
        kept = run_dir / stage / "checkpoints"
        assert (kept / "step_000300" / "model.safetensors").is_file()  # newest / latest.json
        assert not (kept / "step_000100").exists() and not (kept / "step_000200").exists()
        assert not (kept / ".step_000400.tmp").exists()
        assert (run_dir / stage / "final" / "model.safetensors").is_file()
        assert (run_dir / stage / "summary.json").is_file()
    assert (run_dir / "export" / "student.pte").is_file() and (run_dir / "report.md").is_file()
    assert (run_dir / "vis" / "model.pte").is_file()
    assert (run_dir.parent / "outside" / "precious.bin").read_bytes() == b"x" * 7


def test_categories_and_keep_last_n(run_dir: Path) -> None:
    plan = plan_prune(run_dir, ("checkpoints",), keep_last_n=2)
    names = {item.path.relative_to(run_dir).parts[2] for item in plan.items}
    assert names == {"step_000100", ".step_000400.tmp"}
    assert {item.category for item in plan_prune(run_dir, ("tensorboard",)).items} == {"tensorboard"}
    assert plan_prune(run_dir, ("cache",)).items and all(
        "teacher_targets" in item.path.parts for item in plan_prune(run_dir, ("cache",)).items
    )


def test_cli_apply_and_errors(run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["prune", str(run_dir), "--tensorboard", "--apply"]) == 0
    assert not (run_dir / "phase2" / "tensorboard").exists()
    assert (run_dir / "phase2" / "teacher_targets").is_dir()
    assert main(["prune", str(tmp_path / "missing")]) == 2
    assert "missing" in capsys.readouterr().err
