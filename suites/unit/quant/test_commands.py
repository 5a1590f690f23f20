"""``sam3spec quantize``: PTQ output folder, errors (and ``eval quant``'s missing world)."""

from __future__ import annotations

import json

import torch

from sam3spec.checkpoint import save_pretrained
from sam3spec.cli import main


def test_quantize_writes_checkpoint_and_plan(tiny_student, tmp_path):
    save_pretrained(tiny_student, tmp_path / "student")
    out = tmp_path / "q"
    assert (
        main(["quantize", "--model", str(tmp_path / "student"), "--recipe", "8da8w", "--out", str(out)]) == 0
    )
    info = json.loads((out / "quantization.json").read_text())
    assert info["recipe"] == "8da8w" and info["packed_bytes"] < info["float_bytes"]
    assert (out / "model.safetensors").is_file() and (out / "config.json").is_file()
    state = torch.load(out / "quantized_state.pt", weights_only=True)
    assert any(type(v) is not torch.Tensor for v in state.values())


def test_quantize_errors(tiny_student, tmp_path, capsys):
    save_pretrained(tiny_student, tmp_path / "student")
    assert (
        main(
            [
                "quantize",
                "--model",
                str(tmp_path / "student"),
                "--recipe",
                "int3",
                "--out",
                str(tmp_path / "o"),
            ]
        )
        == 2
    )
    assert "unknown recipe" in capsys.readouterr().err
    # the comparison needs images: a world or SA-Co/Gold
    assert main(["eval", "quant", "--model", str(tmp_path / "student")]) == 2
    assert "--world WORLD or --saco-gold DIR" in capsys.readouterr().err
    assert (
        main(
            [
                "quantize",
                "--model",
                str(tmp_path / "nothing"),
                "--recipe",
                "8da4w",
                "--out",
                str(tmp_path / "o"),
            ]
        )
        == 2
    )
