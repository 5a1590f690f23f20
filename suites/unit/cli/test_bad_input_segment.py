"""Bad input to ``sam3spec segment``, run as a user would (a fresh process, working directory outside
the repository): exit 2, one line naming the argument or file, no traceback, no output file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

WIDTH, HEIGHT = 80, 64


@pytest.fixture
def photo(tmp_path: Path) -> Path:
    path = tmp_path / "photo.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (HEIGHT, WIDTH, 3), dtype=np.uint8)).save(path)
    return path


# Refused before the model loads (argument types and prompt checks): each case takes a second.
QUICK = [
    (["--prompt", ""], "--prompt is empty"),
    (["--prompt", "   "], "--prompt is empty"),
    ([], "no prompt"),
    (["--prompt", "x", "--preset", "nope"], "--preset: unknown preset 'nope'"),
    (["--prompt", "x", "--model", "missing-checkpoint"], "--model missing-checkpoint"),
    (["--prompt", "x", "--threshold", "nan"], "--threshold: expected a number in [0, 1]"),
    (["--prompt", "x", "--threshold", "1.5"], "--threshold: expected a number in [0, 1]"),
    (["--box", "nan,1,20,20"], "--box: expected x0,y0,x1,y1"),
    (["--box", "30,10,20,40"], "--box: expected x0 < x1 and y0 < y1"),  # inverted
    (["--box", "1,2,3"], "--box: expected x0,y0,x1,y1"),
    (["--box", "10,10,500,40"], "--box 10,10,500,40: outside the 80 x 64 image"),
    (["--point", "90,10"], "--point 90,10: outside the 80 x 64 image"),
    (["--point", "10,10,2"], "--point: expected label 1 (positive) or 0 (negative)"),
    (["--point", "inf,3"], "--point: expected x,y"),
]


@pytest.mark.parametrize(("arguments", "named"), QUICK, ids=[" ".join(a) or "none" for a, _ in QUICK])
def test_refused_in_one_line(sam3spec, photo, tmp_path, arguments, named):
    result = sam3spec("segment", photo.name, *arguments, "--out", "out/overlay.png")
    result.failed(2, named)
    assert not (tmp_path / "out").exists()


def test_unreadable_image_and_unknown_extension(sam3spec, tmp_path, photo):
    (tmp_path / "broken.png").write_bytes(b"not a png")
    sam3spec("segment", "broken.png", "--prompt", "x", "--out", "o.png").failed(2, "broken.png")
    sam3spec("segment", photo.name, "--prompt", "x", "--out", "o.overlay").failed(2, "--out o.overlay")
    assert not (tmp_path / "o.png").exists()


def test_bad_checkpoint(sam3spec, photo, tmp_path):
    checkpoint = tmp_path / "checkpoint"
    checkpoint.mkdir()
    (checkpoint / "config.json").write_text("{not json")
    sam3spec("segment", photo.name, "--prompt", "x", "--model", "checkpoint", "--out", "o.png").failed(
        2, "config.json"
    )
    assert not (tmp_path / "o.png").exists()


def test_prompt_longer_than_the_context_is_refused(sam3spec, photo, tmp_path):
    long = " ".join(["red circle"] * 40)
    line = sam3spec("segment", photo.name, "--prompt", long, "--out", "o.png").failed(2, "--prompt")
    assert "at most 32" in line  # the tiny preset's context, start and end tokens included
    assert not (tmp_path / "o.png").exists()


def test_box_and_point_prompts_into_a_missing_folder(sam3spec, photo, tmp_path):
    result = sam3spec(
        "segment",
        photo.name,
        "--box",
        "10,10,60,50",
        "--point",
        "30,30",
        "--point",
        "5,5,0",
        "--threshold",
        "0",
        "--out",
        "new/folder/overlay.png",
    )
    assert result.code == 0, result.stderr
    assert "1 box(es) + 2 point(s)" in result.stdout
    assert Image.open(tmp_path / "new/folder/overlay.png").size == (WIDTH, HEIGHT)
