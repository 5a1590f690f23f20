"""Score calibration: the offset is chosen by cgF1 on training pairs, stored, and applied on load."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from sam3spec.cli import main
from sam3spec.teacher.loading import TeacherLoadError, load_teacher, update_teacher_meta
from sam3spec.world.evaluate import image_outputs, world_eval_samples
from sam3spec.world.teacher.calibration import PairOutputs, collect_outputs, fit_offset, score_at


def _square(x: int, y: int) -> np.ndarray:
    mask = np.zeros((8, 8), bool)
    mask[y : y + 3, x : x + 3] = True
    return mask


def _pairs() -> list[PairOutputs]:
    """A positive pair whose only query has the exact mask at logit -0.5 (score 0.38 < 0.5 at
    offset 0: a miss), and a negative pair with a query at logit -1.5 (a false positive from
    offset 1.5 on). Presence 1 in both."""
    found = PairOutputs(_square(0, 0)[None], np.array([-0.5]), 1.0, _square(0, 0)[None])
    negative = PairOutputs(_square(4, 4)[None], np.array([-1.5]), 1.0, np.zeros((0, 8, 8), bool))
    return [found, negative]


def test_fit_offset_maximises_cgf1_not_miou() -> None:
    pairs = _pairs()
    calibration = fit_offset(pairs, offsets=(0.0, 0.5, 1.0, 2.0))
    table = {row["offset"]: row for row in calibration.table}
    # Offset 0: the instance is missed (mIoU 0, no detection on either image: IL_MCC 0).
    assert table[0.0]["mIoU"] == 0 and table[0.0]["cgF1"] == 0
    # 0.5 and 1.0: found with IoU 1, the negative image stays empty: cgF1 100 (tie -> smaller offset).
    assert table[0.5]["cgF1"] == table[1.0]["cgF1"] == 100.0 and table[0.5]["mIoU"] == 1.0
    # 2.0: mIoU is still 1 (matched mIoU ignores false positives) but the negative image now has
    # a detection (IL_MCC 0): cgF1 would never pick it, mIoU alone would.
    assert table[2.0]["mIoU"] == 1.0 and table[2.0]["cgF1"] == 0
    assert calibration.offset == 0.5 and calibration.pairs == 2
    assert score_at(pairs, 0.5)["cgF1"] == 100.0
    with pytest.raises(ValueError, match="no \\(image, phrase\\) pairs"):
        fit_offset([], offsets=(0.0,))
    with pytest.raises(ValueError, match="at least one offset"):
        fit_offset(pairs, offsets=())


def test_collect_outputs_keeps_raw_logits_of_queries_that_can_pass(tiny_teacher, tiny_world: Path) -> None:
    samples = list(world_eval_samples(tiny_world, 2, split="train"))
    image, texts, _ = samples[0]
    _, logits, presence = image_outputs(tiny_teacher, image, texts)
    try:
        tiny_teacher.score_offset = 0.75
        collected = collect_outputs(tiny_teacher, samples[:1], max_offset=3.0)
    finally:
        tiny_teacher.score_offset = 0.0
    assert len(collected) == len(texts)
    for index, pair in enumerate(collected):
        can_pass = presence[index] / (1 + np.exp(-(logits[index] + 3.0))) >= 0.5
        np.testing.assert_allclose(pair.logits, logits[index][can_pass], atol=1e-5)  # the 0.75 removed
        assert pair.masks.shape[0] == int(can_pass.sum())


def test_train_split_reads_the_silver_annotations(tiny_world: Path) -> None:
    train = list(world_eval_samples(tiny_world, split="train"))
    held_out = list(world_eval_samples(tiny_world, split="eval"))
    assert len(train) == 8 and len(held_out) == 2  # the tiny world's 8 / 2 images
    with pytest.raises(ValueError, match="split must be"):
        next(world_eval_samples(tiny_world, split="val"))


def test_score_offset_from_teacher_json_shifts_query_logits(
    tiny_teacher_dir: Path, tiny_teacher, tmp_path: Path, pixels: torch.Tensor
) -> None:
    folder = tmp_path / "teacher"
    shutil.copytree(tiny_teacher_dir, folder)
    update_teacher_meta(folder, {"score_offset": 0.75})
    shifted = load_teacher(folder, dtype=torch.float32)
    assert shifted.score_offset == 0.75 and tiny_teacher.score_offset == 0.0
    embeddings = tiny_teacher.encode_image(tiny_teacher.preprocess(pixels))
    plain = tiny_teacher.predict(embeddings, text=["red circle", "blue star"])
    moved = shifted.predict(embeddings, text=["red circle", "blue star"])
    torch.testing.assert_close(moved.pred_logits, plain.pred_logits + 0.75)
    torch.testing.assert_close(moved.pred_masks, plain.pred_masks)
    torch.testing.assert_close(moved.presence_logits, plain.presence_logits)
    update_teacher_meta(folder, {"score_offset": "high"})
    with pytest.raises(TeacherLoadError, match="teacher.json has score_offset 'high'"):
        load_teacher(folder, dtype=torch.float32)
    with pytest.raises(TeacherLoadError, match="not found"):
        update_teacher_meta(tmp_path, {"score_offset": 1.0})


def test_calibrate_world_writes_the_best_offset(
    tiny_teacher_dir: Path, tiny_world: Path, tmp_path: Path, capsys
) -> None:
    folder = tmp_path / "teacher"
    shutil.copytree(tiny_teacher_dir, folder)
    code = main(
        [
            "teacher",
            "calibrate",
            "--world",
            str(tiny_world),
            "--teacher",
            str(folder),
            "--dtype",
            "float32",
            "--images",
            "4",
            "--offsets",
            "0",
            "1",
            "--write",
        ]
    )
    assert code == 0
    out = capsys.readouterr().out
    meta = json.loads((folder / "teacher.json").read_text())
    assert meta["kind"] == "test" and meta["score_offset"] in (0.0, 1.0)
    assert [row["offset"] for row in meta["calibration"]["table"]] == [0.0, 1.0]
    assert meta["calibration"]["objective"] == "cgF1" and f"offset {meta['score_offset']:+.2f}" in out
    missing = tmp_path / "plain"
    shutil.copytree(tiny_teacher_dir / "detector", missing)  # transformers layout: no teacher.json
    assert (
        main(["teacher", "calibrate", "--world", str(tiny_world), "--teacher", str(missing), "--write"]) == 2
    )
