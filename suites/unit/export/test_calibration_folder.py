"""``--calibration DIR`` / ``--vocabulary FILE``: export and quantize on the user's own images.

The real lowering runs in the export gate; here the export command's inputs are caught before
lowering (what it would calibrate on, check parity on, and put in the text table), and the
quantize command runs for real (eager, tiny student).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from sam3spec.checkpoint import save_pretrained
from sam3spec.cli import main
from sam3spec.export.folder_inputs import ImageFolderInputs

PHRASES = ["person", "red car", "traffic light"]


@pytest.fixture
def photos(tmp_path: Path) -> Path:
    """Three images of different shapes (one in a subfolder, as MetaCLIP's are) and a non-image."""
    folder = tmp_path / "photos"
    rng = np.random.default_rng(0)
    for name, (height, width) in {"a.jpg": (48, 80), "b.png": (96, 64), "sub/c.jpeg": (50, 50)}.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 255, (height, width, 3), dtype=np.uint8)).save(path)
    (folder / "notes.txt").write_text("not an image")
    return folder


@pytest.fixture
def vocabulary(tmp_path: Path) -> Path:
    path = tmp_path / "vocabulary.txt"
    path.write_text("# my app's phrases\n" + "\n".join(PHRASES) + "\n\n  Person \n")
    return path


def test_folder_inputs(photos: Path) -> None:
    inputs = ImageFolderInputs(photos, tuple(PHRASES))(128)
    assert len(inputs.calibration) == 3 and all(i.shape == (3, 128, 128) for i in inputs.calibration)
    assert inputs.phrases == PHRASES and {phrase for _, phrase in inputs.parity} <= set(PHRASES)
    assert len(inputs.parity) == 6 and "(3 images)" in inputs.source
    assert len(ImageFolderInputs(photos, ("x",), max_images=2)(128).calibration) == 2


def test_export_calibrates_on_the_folder(photos, vocabulary, tmp_path, monkeypatch) -> None:
    import sam3spec.export.pipeline as pipeline

    seen = {}

    def capture(student, out, recipe, inputs, **kwargs):
        seen.update(inputs=inputs, **kwargs)
        return {}

    monkeypatch.setattr(pipeline, "export_student", capture)
    command = [
        "export",
        "--preset",
        "efficientsam3-tiny",
        "--random-weights",
        "--out",
        str(tmp_path / "m.pte"),
    ]
    assert main([*command, "--calibration", str(photos), "--vocabulary", str(vocabulary)]) == 0
    assert len(seen["inputs"].calibration) == 3 and str(photos.resolve()) in seen["inputs"].source
    assert seen["vocabulary"] == PHRASES and seen["inputs"].phrases == PHRASES  # the text table's phrases
    assert "--calibration" in seen["command"] and "--vocabulary" in seen["command"]


def test_export_calibration_errors(photos, vocabulary, tmp_path, capsys) -> None:
    command = [
        "export",
        "--preset",
        "efficientsam3-tiny",
        "--random-weights",
        "--out",
        str(tmp_path / "m.pte"),
    ]
    assert main([*command, "--calibration", str(photos)]) == 2
    assert "--calibration needs --vocabulary" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main([*command, "--calibration", str(tmp_path / "empty"), "--vocabulary", str(vocabulary)]) == 2
    assert "no .jpg / .jpeg / .png images" in capsys.readouterr().err
    assert main([*command, "--vocabulary", str(tmp_path / "none.txt")]) == 2
    assert "none.txt: no such file" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main([*command, "--calibration", str(photos), "--world", str(tmp_path)])


def test_quantize_checks_parity_on_the_folder(tiny_student, photos, vocabulary, tmp_path, capsys) -> None:
    save_pretrained(tiny_student, tmp_path / "student")
    command = [
        "quantize",
        "--model",
        str(tmp_path / "student"),
        "--recipe",
        "8da8w",
        "--out",
        str(tmp_path / "q"),
    ]
    assert main([*command, "--calibration", str(photos), "--vocabulary", str(vocabulary)]) == 0
    parity = json.loads((tmp_path / "q" / "quantization.json").read_text())["parity"]
    assert "(3 images)" in parity["inputs"] and parity["samples"] == 6
    assert parity["reference"] == "float eager student" and 0.5 < parity["image_cosine"] <= 1.0
    assert "parity vs float eager student" in capsys.readouterr().out
    assert main([*command, "--calibration", str(photos)]) == 2
    assert "--calibration needs --vocabulary" in capsys.readouterr().err
