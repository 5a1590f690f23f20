"""The CLI: info JSON, segment writing an overlay, report rendering, clear errors."""

import json

import numpy as np
from PIL import Image

from sam3spec.cli import main
from sam3spec.config import TINY_PRESET
from sam3spec.models.student import COMPONENTS


def test_info_json(capsys):
    assert main(["info", "--preset", TINY_PRESET, "--resolution", "128", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["preset"] == TINY_PRESET
    assert set(info["params"]) == {*COMPONENTS, "total"}
    assert info["params"]["total"] == sum(info["params"][name] for name in COMPONENTS)
    assert info["gmacs"]["128"] > 0


def test_info_unknown_preset(capsys):
    assert main(["info", "--preset", "nope", "--json"]) == 2
    assert "unknown preset 'nope'" in capsys.readouterr().err


def test_segment_writes_overlay(tmp_path, capsys):
    image = tmp_path / "in.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 80, 3), dtype=np.uint8)).save(image)
    out = tmp_path / "overlay.png"
    assert main(["segment", str(image), "--prompt", "red circle", "--out", str(out), "--threshold", "0"]) == 0
    assert Image.open(out).size == (80, 64)
    assert "instance(s) of 'red circle'" in capsys.readouterr().out


def test_segment_unreadable_image(tmp_path, capsys):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"nope")
    assert main(["segment", str(bad), "--prompt", "x", "--out", str(tmp_path / "o.png")]) == 2
    assert "cannot read image" in capsys.readouterr().err


def test_report_from_results(tmp_path):
    results = tmp_path / "phone.json"
    results.write_text(
        json.dumps(
            {
                "results": [
                    {"id": "runtime.image_latency_phone", "status": "pass", "measured": 80.0, "context": {}}
                ]
            }
        )
    )
    out = tmp_path / "report.md"
    assert main(["report", str(results), "--out", str(out)]) == 0
    text = out.read_text()
    assert "`runtime.image_latency_phone`" in text and "80 ms" in text
    assert "not measured (no gate measured it in this run)" in text


NOUNS = [
    "info",
    "segment",
    "track",
    "data",
    "teacher",
    "train",
    "eval",
    "quantize",
    "export",
    "bench",
    "prune",
    "report",
]
ALIASES = [
    ["distill"],
    ["pipeline"],
    ["compare"],
    ["visual-qa"],
    ["world", "generate"],
    ["video", "distill"],
    ["video", "eval"],
]


def test_help_lists_the_nouns_and_hides_the_old_spellings(capsys):
    import pytest

    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    listed = capsys.readouterr().out
    for noun in NOUNS:
        assert f"\n    {noun} " in listed, noun
    for alias in ALIASES:
        assert f"\n    {alias[0]} " not in listed, alias


def test_every_command_explains_itself(capsys):
    import pytest

    from sam3spec.cli import build_parser

    parser = build_parser()
    subcommands = {
        "data": ["generate", "verify"],
        "teacher": ["run", "cache", "train", "eval", "calibrate"],
        "train": ["stage", "pipeline", "video", "qat"],
        "eval": ["saco", "vos", "model", "compare", "video", "quant", "visual-qa"],
    }
    commands = [[noun, *([sub] if sub else [])] for noun in NOUNS for sub in subcommands.get(noun, [None])]
    for command in commands + ALIASES:
        with pytest.raises(SystemExit) as exit_info:
            parser.parse_args([*command, "--help"])
        assert exit_info.value.code == 0, command
        assert "usage: sam3spec " + " ".join(command) in capsys.readouterr().out, command


def test_old_spellings_run_the_same_commands():
    from sam3spec.cli import build_parser

    parser = build_parser()
    pairs = [
        (
            ["distill", "--stage", "p", "--data", "d", "--out", "o"],
            ["train", "stage", "--stage", "p", "--data", "d", "--out", "o"],
        ),
        (["world", "generate", "--out", "o"], ["data", "generate", "--out", "o"]),
        (
            ["video", "distill", "--world", "w", "--stage", "s", "--out", "o"],
            ["train", "video", "--data", "w", "--stage", "s", "--out", "o"],
        ),
        (
            ["compare", "--student", "s", "--world", "w"],
            ["eval", "compare", "--student", "s", "--world", "w"],
        ),
    ]
    for old, new in pairs:
        assert parser.parse_args(old).func is parser.parse_args(new).func, old
