"""``sam3spec teacher ...``: registered, thin, and working end to end on a tiny teacher and world."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

from sam3spec.cli import build_parser, main


def test_subcommands_are_registered() -> None:
    parser = build_parser()
    arguments = {
        "cache": ["--data", "d", "--out", "o"],
        "run": ["image.png", "--prompt", "x", "--out", "o"],
        "train": ["--out", "o"],
        "eval": ["--world", "w"],
        "calibrate": ["--world", "w"],
    }
    for command, rest in arguments.items():
        assert callable(parser.parse_args(["teacher", command, *rest]).func)
    for old, new in (("train-world", "train"), ("eval-world", "eval"), ("calibrate-world", "calibrate")):
        assert (
            parser.parse_args(["teacher", old, *arguments[new]]).func
            is parser.parse_args(["teacher", new, *arguments[new]]).func
        )  # the earlier spellings stay as hidden aliases


def test_train_world_flags_override_the_recipe() -> None:
    from sam3spec.cli.teacher import train_config
    from sam3spec.world.teacher.train import WorldTrainConfig

    parser = build_parser()
    assert train_config(parser.parse_args(["teacher", "train", "--out", "o"])) == WorldTrainConfig()
    tuned = train_config(
        parser.parse_args(
            [
                "teacher",
                "train",
                "--out",
                "o",
                "--init-from",
                "t",
                "--lr",
                "3e-4",
                "--warmup-steps",
                "50",
                "--phrases-per-image",
                "8",
                "--steps",
                "2000",
                "--seed",
                "1",
                "--threads",
                "1",
            ]
        )
    )
    assert (tuned.init_from, tuned.learning_rate, tuned.warmup_steps, tuned.phrases_per_image) == (
        "t",
        3e-4,
        50,
        8,
    )
    assert (tuned.steps, tuned.seed, tuned.threads) == (2000, 1, 1)


def test_run_writes_outputs_and_overlay(tiny_teacher_dir: Path, tmp_path: Path) -> None:
    image = tmp_path / "image.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (40, 60, 3), dtype=np.uint8)).save(image)
    out = tmp_path / "run"
    code = main(
        [
            "teacher",
            "run",
            str(image),
            "--prompt",
            "red circle",
            "--out",
            str(out),
            "--teacher",
            str(tiny_teacher_dir),
            "--dtype",
            "float32",
            "--threshold",
            "0",
        ]
    )
    assert code == 0
    summary = json.loads((out / "summary.json").read_text())
    assert len(summary["instances"]) == 8 and Image.open(out / "overlay.png").size == (60, 40)
    assert (
        main(
            [
                "teacher",
                "run",
                str(image),
                "--point",
                "0.5",
                "0.5",
                "--out",
                str(tmp_path / "click"),
                "--teacher",
                str(tiny_teacher_dir),
            ]
        )
        == 0
    )
    assert main(["teacher", "run", str(image), "--out", str(out), "--teacher", str(tiny_teacher_dir)]) == 2


def test_eval_world_prints_and_writes_metrics(
    tiny_teacher_dir: Path, tiny_world: Path, tmp_path: Path, capsys
) -> None:
    out = tmp_path / "metrics.json"
    code = main(
        [
            "teacher",
            "eval",
            "--world",
            str(tiny_world),
            "--teacher",
            str(tiny_teacher_dir),
            "--dtype",
            "float32",
            "--json",
            str(out),
        ]
    )
    assert code == 0 and "mIoU" in capsys.readouterr().out
    metrics = json.loads(out.read_text())
    assert {"mIoU", "presence_f1", "cgF1", "pmF1", "IL_MCC"} <= set(metrics) and metrics["num_pairs"] > 0
