"""Commands that write a tree (``track``, ``eval visual-qa``, ``data generate``), run as a user
would: an empty result is a valid output, an unreadable image is skipped, a folder of someone
else's files is refused, and Ctrl-C leaves nothing behind (exit 130, one line)."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image


def _images(folder: Path, count: int, side: int = 64, suffix: str = ".png") -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    paths = [folder / f"{index:05d}{suffix}" for index in range(count)]
    for path in paths:
        Image.fromarray(rng.integers(0, 256, (side, side, 3), dtype=np.uint8)).save(path)
    return paths


def test_track_with_nothing_detected_writes_an_empty_valid_output(sam3spec, tmp_path, leftovers):
    _images(tmp_path / "clip", 6, suffix=".jpg")
    # threshold 1: no score reaches it, so no instance is ever kept
    result = sam3spec("track", "clip", "--prompt", "red circle", "--threshold", "1", "--out", "out/tracked")
    assert result.code == 0, result.stderr
    assert "no instance of 'red circle' found" in result.stdout
    out = tmp_path / "out" / "tracked"
    tracks = json.loads((out / "tracks.json").read_text())
    assert tracks["objects"] == {} and tracks["frames"] == 6
    assert (out / "overlay.mp4").stat().st_size > 0
    assert (out / "masks" / "clip").is_dir() and not any((out / "masks" / "clip").iterdir())
    assert leftovers(out.parent) == []


def test_track_refuses_a_folder_of_other_files(sam3spec, tmp_path):
    _images(tmp_path / "clip", 2, suffix=".jpg")
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep")
    sam3spec("track", "clip", "--prompt", "x", "--out", "mine").failed(2, "--out mine", "tracks.json")
    sam3spec("track", "clip", "--prompt", " ", "--out", "o").failed(2, "--prompt is empty")
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep" and not (tmp_path / "o").exists()


@pytest.fixture(scope="module")
def student_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import torch

    from sam3spec.checkpoint import save_pretrained
    from sam3spec.models.build import build_student

    torch.manual_seed(0)
    return save_pretrained(build_student("efficientsam3-tiny"), tmp_path_factory.mktemp("qa") / "student")


def test_visual_qa_skips_an_unreadable_image(sam3spec, tmp_path, student_checkpoint, leftovers):
    _images(tmp_path / "photos", 2)
    (tmp_path / "photos" / "00001.png").write_bytes(b"not a png")  # sorted between the two photos
    _images(tmp_path / "more", 1)
    (tmp_path / "qa").mkdir()
    (tmp_path / "qa" / "notes.txt").write_text("someone else's folder")
    common = ["eval", "visual-qa", "--student", student_checkpoint, "--prompt", "circle"]
    sam3spec(*common, "--image-dir", "photos", "--out", "qa").failed(2, "--out qa", "index.html")
    assert sorted(p.name for p in (tmp_path / "qa").iterdir()) == ["notes.txt"]

    result = sam3spec(*common, "--image-dir", "photos", "--out", "page")
    assert result.code == 0, result.stderr
    assert "warning: skipped photos/00001.png" in result.stderr
    page = (tmp_path / "page" / "index.html").read_text()
    assert page.count("<tr>") == 1 + 1 and "skipped (unreadable): 00001.png" in page
    assert "1 image(s) (1 unreadable, skipped)" in result.stdout

    # a run with no readable image fails and leaves the previous page as it was
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "a.png").write_bytes(b"")
    before = sorted(p.relative_to(tmp_path).as_posix() for p in (tmp_path / "page").rglob("*"))
    sam3spec(*common, "--image-dir", "broken", "--out", "page").failed(2, "no readable image")
    assert sorted(p.relative_to(tmp_path).as_posix() for p in (tmp_path / "page").rglob("*")) == before
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize(
    ("sent", "status", "last_line"),
    [(signal.SIGINT, 130, "sam3spec: interrupted"), (signal.SIGTERM, 143, "sam3spec: terminated")],
    ids=["ctrl-c", "sigterm"],
)
def test_ctrl_c_or_kill_in_data_generate_leaves_nothing(
    sam3spec_started, tmp_path, leftovers, sent, status, last_line
):
    process = sam3spec_started(
        "data", "generate", "--out", "world", "--images", "5000", "--size", "48", "--quiet"
    )
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and process.poll() is None:  # wait until images are being written
        if any(True for _ in tmp_path.glob("*world*/sa1b/*/*.jpg")):
            break
        time.sleep(0.2)
    assert process.poll() is None, process.communicate()
    process.send_signal(sent)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == status, stderr
    assert "Traceback" not in stderr
    assert [line for line in stderr.splitlines() if line.strip()][-1] == last_line
    assert not (tmp_path / "world").exists() and leftovers(tmp_path) == []
