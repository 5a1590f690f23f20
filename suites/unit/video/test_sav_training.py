"""The video stage on SA-V as released: a plain ``sav_train/sav_NNN/`` folder (no ``world.json``,
no phrases), each masklet prompted by its box in its first visible annotated frame, frames of any
aspect ratio (48 x 80 here), clear errors for folders that are not SA-V or give no sample, the
plan's schedule, and an ``--init`` that must fit the stage's student."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from sam3spec.checkpoint import CheckpointError, save_pretrained
from sam3spec.cli import main
from sam3spec.config import TINY_PRESET, override
from sam3spec.data import rle
from sam3spec.data.sources import TrainingDataError
from sam3spec.data.video_io import encode_mp4
from sam3spec.distill import RunOptions, distill
from sam3spec.distill.adapters import StudentGeometry
from sam3spec.distill.targets import ground_truth_targets
from sam3spec.models.build import build_student
from sam3spec.video.data import FeatureBank
from sam3spec.video.stage import VIDEO

HEIGHT, WIDTH, FRAMES = 48, 80, 12  # 3 annotated frames (0, 4, 8)
# Masklet 0: a rectangle visible from the first annotated frame; masklet 1 appears at the second.
BOXES = {
    0: [(8, 20, 30, 50), (10, 24, 32, 54), (12, 28, 34, 58)],
    1: [None, (30, 4, 44, 20), (28, 6, 42, 22)],
}


def masks_of(k: int) -> np.ndarray:
    """``[2, H, W]`` bool masks of annotated frame ``k`` (rows y0..y1, columns x0..x1)."""
    masks = np.zeros((2, HEIGHT, WIDTH), dtype=bool)
    for n, boxes in BOXES.items():
        if boxes[k] is not None:
            y0, x0, y1, x1 = boxes[k]
            masks[n, y0:y1, x0:x1] = True
    return masks


def write_sav(folder: Path, name: str, masklet: list[list[dict]]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 255, (FRAMES, HEIGHT, WIDTH, 3), dtype=np.uint8)
    encode_mp4(folder / f"{name}.mp4", frames)
    record = {"video_id": name, "video_height": HEIGHT, "video_width": WIDTH, "masklet": masklet}
    (folder / f"{name}_manual.json").write_text(json.dumps(record))
    (folder / f"{name}_auto.json").write_text(json.dumps({**record, "masklet": []}))


@pytest.fixture(scope="module")
def sav_train(tmp_path_factory) -> Path:
    """SA-V's released layout: ``sav_train/sav_000/sav_00000{1,2}.mp4`` + ``_manual.json`` + ``_auto.json``."""
    root = tmp_path_factory.mktemp("sav") / "sav_train"
    masklet = [[rle.encode(mask) for mask in masks_of(k)] for k in range(3)]
    for name in ("sav_000001", "sav_000002"):
        write_sav(root / "sav_000", name, masklet)
    return root


def tiny(stage=VIDEO, **changes):
    """The plan's video stage on the tiny student at 64 px, student context, batch 2."""
    fields = {"student": TINY_PRESET, "resolution": 64, "batch_size": 2, "grad_accum": 1, "warmup_steps": 2}
    return replace(stage, stage=override(stage.stage, {**fields, **changes}), context_source="student")


@pytest.fixture(scope="module")
def student():
    torch.manual_seed(0)
    return build_student(tiny().stage.student_config()).eval()


def test_non_square_frames_are_letterboxed_with_their_masks_and_boxes(student, sav_train) -> None:
    geometry = StudentGeometry.of(student.config)
    bank = FeatureBank(student, sav_train, prompt="box", mask_size=geometry.mask_target_size)
    record = bank.records[0]
    assert record.size == (HEIGHT, WIDTH) and record.masks.shape[:2] == (3, 2)
    assert record.prompted() == [(0, 0), (1, 1)]  # (masklet, first visible annotated frame)
    batch = bank.batch([(0, 2, 0), (0, 2, 1)], 8, student.config.memory.context_level)
    targets = ground_truth_targets(batch, geometry)
    side, size = geometry.mask_target_size[0], student.config.image_size
    for row, n in enumerate((0, 1)):
        y0, x0, y1, x1 = BOXES[n][2]
        # Letterboxed: the longer side (80) fills the input, the frame's rows fill round(48 * S / 80)
        # of its S rows, the padding is below the frame.
        rows = round(HEIGHT * size / WIDTH) / size
        expected = torch.tensor([x0 / WIDTH, y0 / HEIGHT * rows, x1 / WIDTH, y1 / HEIGHT * rows])
        assert torch.allclose(targets.boxes_xyxy[row, 0], expected, atol=1e-6)
        probs = targets.mask_probs[row, 0]  # [side, side]: the mask's centre is the box's
        centres = (torch.arange(side) + 0.5) / side
        centre = torch.stack([(probs.sum(0) * centres).sum(), (probs.sum(1) * centres).sum()]) / probs.sum()
        assert torch.allclose(centre, (expected[:2] + expected[2:]) / 2, atol=1 / side)
        mask, scale = probs > 0.5, side / WIDTH
        assert not bool(mask[round(HEIGHT * scale) + 1 :].any())  # nothing on the padding rows
    # Box prompts: the first visible frame's box; the stream starts there (no earlier context).
    rows = round(HEIGHT * size / WIDTH) / size
    prompt = torch.tensor([4 / WIDTH, 30 / HEIGHT * rows, 20 / WIDTH, 44 / HEIGHT * rows])
    assert torch.allclose(batch["prompt_boxes_xyxy"][1, 0], prompt, atol=1e-6)
    assert batch["valid"][0].tolist() == [False] * 6 + [True] * 2  # frames 0 and 1
    assert batch["valid"][1].tolist() == [False] * 7 + [True]  # frame 1 only: masklet 1 starts there
    assert [len(masks) for masks in batch["target_masks"]] == [1, 1]  # the prompted masklet alone


def test_the_video_stage_trains_on_a_plain_sav_folder(sav_train, tmp_path) -> None:
    summary = distill(tiny(), RunOptions(sav_train, tmp_path / "run", max_steps=2, threads=1, progress=False))
    assert summary["steps"] == 2 and summary["frozen_unchanged"] and summary["prompt"] == "box"
    assert summary["videos"] == 2 and summary["videos_skipped"] == 0
    log = [json.loads(line) for line in (tmp_path / "run" / "train_log.jsonl").read_text().splitlines()]
    assert all(np.isfinite(row["loss"]) and row["mask_dice"] > 0 for row in log)
    # final/ is a whole student (the next stage's --init, eval, export) that carries the memory.
    from sam3spec.checkpoint import load_student
    from sam3spec.video.checkpoint import load_memory, memory_state

    final = load_student(tmp_path / "run" / "final", verbose=False)
    trained = memory_state(final)
    load_memory(final, tmp_path / "run" / "final")
    assert trained and all(torch.equal(trained[k], v) for k, v in memory_state(final).items())


def test_folders_without_usable_sa_v_fail_with_one_line(sav_train, tmp_path, capsys) -> None:
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.json").write_text("{}")
    (tmp_path / "val" / "JPEGImages_24fps" / "sav_000001").mkdir(parents=True)
    cases = [
        (["--stage", "video", "--data", str(tmp_path / "missing")], "no such folder"),
        (["--stage", "video", "--data", str(tmp_path / "other")], "no SA-V train videos"),
        (["--stage", "video", "--data", str(tmp_path / "val")], "val / test layout"),
        (["--stage", "video-world", "--data", str(sav_train)], "world.json"),
    ]
    for args, message in cases:
        code = main(["train", "video", *args, "--out", str(tmp_path / "out")])
        error = capsys.readouterr().err.strip().splitlines()
        assert code == 2 and message in error[-1] and error[-1].startswith("error: "), (args, error)
    assert not (tmp_path / "out").exists()
    empty = tmp_path / "empty" / "sav_000"
    blank = [[rle.encode(np.zeros((HEIGHT, WIDTH), dtype=bool))] * 2 for _ in range(3)]
    write_sav(empty, "sav_000003", blank)
    with pytest.raises(TrainingDataError, match="no usable masklets in 1 SA-V video"):
        distill(tiny(), RunOptions(empty.parent, tmp_path / "run", max_steps=1, progress=False))


def test_the_plan_video_stage_follows_the_plan() -> None:
    """docs/PLAN.md 4.3: 5 epochs, lr 1e-4, warm-up 200, batch 1 x gradient accumulation 4, T = 8,
    SA-V prompted without phrases, the seed student at 504 px."""
    stage = VIDEO.stage
    assert (stage.epochs, stage.batch_size, stage.grad_accum) == (5, 1, 4)
    assert (stage.learning_rate, stage.warmup_steps, VIDEO.context_frames) == (1e-4, 200, 8)
    assert VIDEO.prompt == "box" and (stage.student, stage.resolution) == (
        "efficientsam3-repvit_m2_3-mobileclip_s1",
        504,
    )


def test_an_init_for_another_student_needs_allow_partial(sav_train, tmp_path) -> None:
    other = override(tiny().stage.student_config(), {"image_size": 96})  # same keys, another resolution
    init = save_pretrained(build_student(other), tmp_path / "other")
    options = RunOptions(sav_train, tmp_path / "strict", init=init, max_steps=1, threads=1, progress=False)
    with pytest.raises(CheckpointError, match=r"1 config difference\(s\) \(first: image_size: checkpoint 96"):
        distill(tiny(), options)
    partial = replace(options, out=tmp_path / "partial", allow_partial=True)
    assert distill(tiny(), partial)["steps"] == 1
    report = json.loads((tmp_path / "partial" / "init_report.json").read_text())
    assert report["allow_partial"] and report["config_differences"] == [
        "image_size: checkpoint 96 vs stage 64"
    ]
