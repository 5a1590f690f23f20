"""Bad input to the other commands, run as a user would (a fresh process, working directory outside
the repository): the exit status, one line naming the argument or file, no traceback, nothing
half-written; ``--debug`` / ``SAM3SPEC_DEBUG=1`` for the traceback."""

from __future__ import annotations

import json
import os

import pytest


def test_argument_errors_are_one_line(sam3spec, tmp_path):
    result = sam3spec("data", "generate", "--out", "world", "--images", "0")
    result.failed(2, "--images: expected an integer >= 1, got '0'")
    assert len([line for line in result.stderr.splitlines() if line.strip()]) == 1  # no usage block
    sam3spec("data", "generate", "--out", "world", "--videos", "-1").failed(
        2, "--videos: expected an integer >= 0"
    )
    assert not (tmp_path / "world").exists()


def test_prune_keeps_at_least_one_checkpoint(sam3spec, tmp_path):
    (tmp_path / "run" / "checkpoints").mkdir(parents=True)
    sam3spec("prune", "run", "--keep-last-n", "0").failed(2, "--keep-last-n: expected an integer >= 1")


@pytest.mark.parametrize(
    ("content", "named"),
    [
        (b"", "empty file (0 bytes)"),
        (os.urandom(4096), "not an ExecuTorch program"),
        (b"\x40\x00\x00\x00ET1", "not an ExecuTorch program"),
    ],
    ids=["empty", "random-bytes", "truncated"],
)
def test_bench_refuses_what_is_not_a_program(sam3spec, tmp_path, content, named):
    # random bytes used to abort the process (exit 134) inside ExecuTorch's loader
    (tmp_path / "model.pte").write_bytes(content)
    sam3spec("bench", "--pte", "model.pte", "--json", "bench.json").failed(2, "--pte model.pte", named)
    assert not (tmp_path / "bench.json").exists()


def test_bench_missing_program(sam3spec):
    sam3spec("bench", "--pte", "absent.pte").failed(2, "--pte absent.pte: no such file")


def test_report_with_malformed_results(sam3spec, tmp_path):
    (tmp_path / "results.json").write_text("{not json")
    (tmp_path / "other.json").write_text(json.dumps({"results": [{"id": 3}]}))
    for name in ("results.json", "other.json"):
        sam3spec("report", name, "--out", "reports/report.md").failed(2, name, "not a sam3spec results file")
    assert not (tmp_path / "reports").exists()


def test_export_path_errors_fail_before_the_work(sam3spec, tmp_path):
    (tmp_path / "file.txt").write_text("a file, not a folder")
    base = ["export", "--preset", "efficientsam3-tiny", "--random-weights", "--out"]
    sam3spec(*base, "file.txt/model.pte").failed(2, "--out file.txt/model.pte")
    sam3spec(*base, "model.onnx").failed(2, "--out model.onnx: expected a path ending in .pte")
    (tmp_path / "locked").mkdir(mode=0o500)
    if os.access(tmp_path / "locked", os.W_OK):  # root writes anywhere: the permission case is moot
        return
    sam3spec(*base, "locked/model.pte").failed(2, "--out locked/model.pte", "not writable")


def test_train_stage_with_a_bad_data_folder_writes_nothing(sam3spec, tmp_path):
    sam3spec("train", "stage", "--stage", "phase1", "--data", "absent", "--out", "runs/a").failed(
        2, "--data absent: no such folder"
    )
    (tmp_path / "empty").mkdir()
    sam3spec("distill", "--stage", "phase1", "--data", "empty", "--out", "runs/b").failed(
        2, "--data empty: no training samples"
    )
    assert not (tmp_path / "runs").exists()  # no run folder with a stage.json and nothing else


def test_debug_shows_the_traceback(sam3spec):
    arguments = ("report", "absent.json", "--out", "r.md")
    plain = sam3spec(*arguments)
    plain.failed(2, "absent.json")
    for result in (sam3spec("--debug", *arguments), sam3spec(*arguments, env={"SAM3SPEC_DEBUG": "1"})):
        assert result.code == 2 and "Traceback" in result.stderr
        assert result.last_line == plain.last_line  # the one-line message still ends the output


def test_quantize_and_qat_name_a_missing_checkpoint_folder(sam3spec, tmp_path):
    # used to read "absent/config.json: missing", as if the folder were there
    sam3spec("quantize", "--model", "absent", "--recipe", "8da4w", "--out", "q").failed(
        2, "--model absent: no such checkpoint folder"
    )
    sam3spec("train", "qat", "--model", "absent", "--data", "w", "--recipe", "8da4w", "--out", "q").failed(
        2, "--model absent: no such checkpoint folder"
    )
    assert not (tmp_path / "q").exists()
