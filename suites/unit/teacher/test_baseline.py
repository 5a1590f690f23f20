"""``teacher run`` (:func:`sam3spec.teacher.baseline.run_baseline`): prompts are checked before the
model sees them, and an instance always has a mask."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from safetensors.torch import load_file

from sam3spec.cli import main
from sam3spec.teacher.baseline import run_baseline

IMAGE = np.random.default_rng(0).integers(0, 255, (40, 60, 3), dtype=np.uint8)
NAN = float("nan")


@pytest.mark.parametrize(
    ("prompt", "message"),
    [
        ({"box_xyxy": [0.1, NAN, 0.5, 0.6]}, r"box prompt \[0.1, nan, 0.5, 0.6\]: expected 4 finite numbers"),
        ({"box_xyxy": [0.5, 0.2, 0.1, 0.6]}, r"box prompt .*: inverted or empty; expected x0 y0 x1 y1"),
        ({"box_xyxy": [0.2, 0.2, 0.2, 0.6]}, r"inverted or empty"),
        ({"box_xyxy": [0.1, 0.2, 1.5, 0.6]}, r"box prompt \[0.1, 0.2, 1.5, 0.6\]: outside the image"),
        ({"box_xyxy": [10, 20, 30, 40]}, r"outside the image; expected .*normalised"),
        ({"point_xy": [NAN, 0.5]}, r"point prompt \[nan, 0.5\]: expected 2 finite numbers"),
        ({"point_xy": [0.5, -0.1]}, r"point prompt \[0.5, -0.1\]: outside the image"),
        ({"point_xy": [0.5]}, r"expected 2 finite numbers"),
        ({"text": "  "}, r"text prompt is empty"),
        ({}, r"empty prompt: give a text, a box or a point"),
        ({"text": "red circle", "threshold": NAN}, r"threshold nan: expected a score in \[0, 1\]"),
    ],
)
def test_bad_prompts_are_refused_before_the_model(tiny_teacher, tmp_path: Path, prompt, message) -> None:
    with pytest.raises(ValueError, match=message):
        run_baseline(tiny_teacher, IMAGE, tmp_path / "out", **prompt)
    assert not (tmp_path / "out").exists()  # nothing written


class FirstMaskEmpty:
    """The tiny teacher, with query 0's mask logits pushed below 0 (what a point prompt gave the
    shipped teacher: a high-scoring query with no pixels)."""

    def __init__(self, teacher) -> None:
        self.teacher = teacher

    def __getattr__(self, name: str):
        return getattr(self.teacher, name)

    def predict(self, *args, **kwargs):
        outputs = self.teacher.predict(*args, **kwargs)
        outputs.pred_masks[:, 0] = -20.0
        return outputs


def test_instances_without_mask_pixels_are_dropped(tiny_teacher, tmp_path: Path) -> None:
    summary = run_baseline(FirstMaskEmpty(tiny_teacher), IMAGE, tmp_path, point_xy=[0.5, 0.5], threshold=0.0)
    raw = load_file(str(tmp_path / "outputs.safetensors"))
    masks = (
        F.interpolate(raw["pred_masks"], size=IMAGE.shape[:2], mode="bilinear", align_corners=False)[0] > 0
    )
    non_empty = {int(q) for q in torch.nonzero(masks.flatten(1).any(1)).flatten()}
    listed = {instance["query"] for instance in summary["instances"]}
    assert 0 not in listed and listed == non_empty  # every query with pixels, and only those
    assert summary["dropped_empty"] == masks.shape[0] - len(non_empty) >= 1
    assert np.isfinite(summary["presence"])


def test_command_refuses_a_nan_box_in_one_line(tiny_teacher_dir: Path, tmp_path: Path, capsys) -> None:
    image = tmp_path / "image.png"
    Image.fromarray(IMAGE).save(image)
    out = tmp_path / "run"
    code = main(
        ["teacher", "run", str(image), "--box", "0.1", "nan", "0.5", "0.6", "--out", str(out)]
        + ["--teacher", str(tiny_teacher_dir)]
    )
    error = capsys.readouterr().err.strip()
    assert code == 2 and not out.exists()
    assert (
        error.startswith("error: box prompt [0.1, nan, 0.5, 0.6]: expected 4 finite numbers")
        and "\n" not in error
    )


def test_command_reads_images_through_the_loader(tiny_teacher_dir: Path, tmp_path: Path, capsys) -> None:
    (tmp_path / "broken.png").write_bytes(b"not a png")
    code = main(
        [
            "teacher",
            "run",
            str(tmp_path / "broken.png"),
            "--prompt",
            "red circle",
            "--out",
            str(tmp_path / "o"),
        ]
        + ["--teacher", str(tiny_teacher_dir)]
    )
    assert (
        code == 2 and f"cannot read image {tmp_path / 'broken.png'}: not an image" in capsys.readouterr().err
    )
    turned = np.zeros((20, 40, 3), np.uint8)
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(turned).save(tmp_path / "turned.png", exif=exif)
    out = tmp_path / "turned"
    assert (
        main(
            ["teacher", "run", str(tmp_path / "turned.png"), "--prompt", "x", "--out", str(out)]
            + ["--teacher", str(tiny_teacher_dir), "--dtype", "float32"]
        )
        == 0
    )
    assert Image.open(out / "overlay.png").size == (20, 40)  # shown upright: 20 wide, 40 tall
    assert json.loads((out / "summary.json").read_text())["dropped_empty"] >= 0
