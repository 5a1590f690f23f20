"""Video distillation (memory only, frozen rest verified, memory-only checkpoints that load onto a
full student), J&F with / without memory, and the ``sam3spec track`` command."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file, save_file

from sam3spec.cli import main
from sam3spec.config import TINY_PRESET, get_preset, override
from sam3spec.data.video_io import read_frames, write_empty_mp4
from sam3spec.distill import RunOptions, distill
from sam3spec.models.build import build_student
from sam3spec.video.checkpoint import MEMORY_WEIGHTS, load_memory
from sam3spec.world.evaluate import world_video_split
from sam3spec.world.manifest import object_phrases
from sam3spec.world.stages import VIDEO_WORLD

MEMORY = ("memory_resampler.", "memory_attention.")


@pytest.fixture(scope="module")
def trained(video_world, tmp_path_factory):
    out = tmp_path_factory.mktemp("video_run")
    summary = distill(
        VIDEO_WORLD,
        RunOptions(
            video_world,
            out,
            max_steps=4,
            limit=2,
            threads=1,
            progress=False,
            phrases=object_phrases(video_world),
        ),
    )
    return out, summary


def test_only_memory_trains_and_checkpoint_holds_only_it(trained):
    out, summary = trained
    assert summary["steps"] == 4 and summary["frozen_unchanged"]
    log = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]
    assert len(log) == 4 and all(torch.isfinite(torch.tensor(row["loss"])) for row in log)
    assert {"mask_dice", "mask_bce", "box_l1", "box_giou", "iou_token", "presence", "logit"} <= set(log[0])
    state = load_file(str(out / "final" / MEMORY_WEIGHTS))
    assert state and all(key.startswith(MEMORY) for key in state)
    torch.manual_seed(0)
    fresh = build_student(override(get_preset(TINY_PRESET), {"image_size": 160}))
    assert summary["trainable_parameters"] == sum(
        v.numel() for k, v in fresh.state_dict().items() if k.startswith(MEMORY)
    )
    assert float(state["memory_attention.gate"].abs()) > 0  # the gate opened: the memory is used


def test_a_resumed_memory_run_equals_an_uninterrupted_one(video_world, tmp_path):
    """The one trainer's checkpoints hold the memory and the training state: a run resumed from its
    step-2 checkpoint logs the same steps and ends on the same memory, bit for bit."""
    import shutil
    from dataclasses import replace

    stage = replace(VIDEO_WORLD, stage=replace(VIDEO_WORLD.stage, checkpoint_every=2, keep_last_n=5))
    settings = dict(
        max_steps=4,
        limit=2,
        threads=1,
        progress=False,
        tensorboard=False,
        phrases=object_phrases(video_world),
    )
    distill(stage, RunOptions(video_world, tmp_path / "whole", **settings))
    cut = tmp_path / "cut"
    shutil.copytree(tmp_path / "whole", cut)
    for later in ("checkpoints/step_000004", "final"):
        shutil.rmtree(cut / later)
    (cut / "checkpoints" / "latest.json").write_text(json.dumps({"step": 2, "path": "step_000002"}))
    with pytest.raises(FileExistsError, match="--resume"):
        distill(stage, RunOptions(video_world, cut, **settings))
    summary = distill(stage, RunOptions(video_world, cut, resume=True, **settings))
    assert summary["steps"] == 4 and summary["frozen_unchanged"]
    logs = [(run / "train_log.jsonl").read_text() for run in (tmp_path / "whole", cut)]
    assert logs[0] == logs[1] and len(logs[0].splitlines()) == 4
    state = [load_file(str(run / "final" / MEMORY_WEIGHTS)) for run in (tmp_path / "whole", cut)]
    assert state[0].keys() == state[1].keys() and all(torch.equal(state[0][k], state[1][k]) for k in state[0])


def test_memory_checkpoint_loads_onto_a_full_student(trained, tmp_path):
    out, _ = trained
    torch.manual_seed(1)
    student = build_student(TINY_PRESET)
    other = {k: v.clone() for k, v in student.state_dict().items() if not k.startswith(MEMORY)}
    load_memory(student, out / "final")
    state = load_file(str(out / "final" / MEMORY_WEIGHTS))
    for key, value in student.state_dict().items():
        expected = state[key] if key.startswith(MEMORY) else other[key]
        assert torch.equal(value, expected), key
    bad = dict(state, **{"iou_head.0.weight": torch.zeros(1)})
    (tmp_path / "bad").mkdir()
    save_file(bad, str(tmp_path / "bad" / MEMORY_WEIGHTS))
    with pytest.raises(ValueError, match="outside the memory"):
        load_memory(student, tmp_path / "bad")
    with pytest.raises(FileNotFoundError, match="memory.safetensors"):
        load_memory(student, tmp_path)


def test_jf_with_closed_gate_equals_without_memory(video_world, tmp_path):
    from sam3spec.eval.video import evaluate_memory

    torch.manual_seed(0)
    student = build_student(override(get_preset(TINY_PRESET), {"image_size": 160})).eval()
    result = evaluate_memory(student, world_video_split(video_world), tmp_path, threshold=0.2, limit=1)
    assert result.with_memory["num_objects"] > 0
    assert result.gain == 0.0  # gate 0: memory cannot change a single pixel
    assert (tmp_path / "video_eval.json").is_file()


def test_track_command(video_world, tmp_path, capsys):
    video = next((video_world / "sav" / "train").glob("sav_*.mp4"))
    code = main(
        ["track", str(video), "--prompt", "red circle", "--out", str(tmp_path / "out"), "--threshold", "0.15"]
    )
    assert code == 0
    written = read_frames(tmp_path / "out" / "overlay.mp4")
    assert len(written) == len(read_frames(video))
    tracks = json.loads((tmp_path / "out" / "tracks.json").read_text())
    for object_id in tracks["objects"]:
        assert (tmp_path / "out" / "masks" / video.stem / f"{int(object_id):03d}").is_dir()
    write_empty_mp4(tmp_path / "empty.mp4")
    assert (
        main(["track", str(tmp_path / "empty.mp4"), "--prompt", "red circle", "--out", str(tmp_path / "e")])
        == 2
    )
    assert "zero frames" in capsys.readouterr().err


def _masklet(root, visible):
    import numpy as np
    from PIL import Image

    folder = root / "sav_1" / "000"
    folder.mkdir(parents=True)
    for index, shown in enumerate(visible):
        mask = np.zeros((8, 8), np.uint8)
        mask[2:4, 2:4] = 255 if shown else 0
        Image.fromarray(mask).save(folder / f"{index * 4:05d}.png")


def test_reappearance_frames(tmp_path):
    from sam3spec.eval.video import reappearance_frames

    _masklet(tmp_path, [True, True, False, False, True, True, False, True])  # back at frames 4 and 7
    assert reappearance_frames(tmp_path) == [("sav_1", "000", "00016"), ("sav_1", "000", "00028")]


def test_frame_categories_window(tmp_path):
    from sam3spec.eval.video import frame_categories

    # hidden at 1, back at 2; the window (2 here) covers 3 and 4; hidden again at 6, back at 7
    _masklet(tmp_path, [True, False, True, True, True, True, False, True, True])
    kinds = [kind for _, kind in sorted(frame_categories(tmp_path, window=2).items())]
    assert kinds == [
        "visible",
        "absent",
        "reappearance",
        "after_reappearance",
        "after_reappearance",
        "visible",
        "absent",
        "reappearance",
        "after_reappearance",
    ]


def test_reentry_margin_weighs_frames():
    from sam3spec.eval.video import VideoEvalResult

    summary = {"J": 0.0, "F": 0.0, "J&F": 0.0, "num_objects": 1}
    result = VideoEvalResult(
        summary,
        summary,
        {
            "reappearance": {"frames": 1, "J_with": 10.0, "J_without": 0.0},
            "after_reappearance": {"frames": 3, "J_with": 50.0, "J_without": 30.0},
            "visible": {"frames": 10, "J_with": 60.0, "J_without": 45.0},
            "absent": {"frames": 2, "J_with": 0.0, "J_without": 100.0},
        },
    )
    assert result.reentry_gain == pytest.approx((10.0 + 3 * 20.0) / 4)
    assert result.visible_gain == pytest.approx(15.0)
    assert result.reentry_margin == pytest.approx(17.5 - 15.0)
    assert "reappearance 10.0 vs 0.0 (1 frames)" in result.describe()
