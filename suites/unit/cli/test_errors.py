"""The error policy of :func:`sam3spec.cli.main`, in process: bad input exits 2, a failed run 1,
Ctrl-C 130, each with one line on stderr; ``--debug`` adds the traceback."""

from __future__ import annotations

import errno

import pytest

import sam3spec.report as report
from sam3spec.cli import errors, main


@pytest.fixture
def report_raises(monkeypatch, tmp_path):
    """``report_raises(error)``: ``sam3spec report`` raises ``error`` while writing; returns its argv."""
    results = tmp_path / "results.json"
    results.write_text('{"results": []}')

    def arrange(error: BaseException) -> list[str]:
        def write_report(*args, **kwargs):
            raise error

        monkeypatch.setattr(report, "write_report", write_report)
        return ["report", str(results), "--out", str(tmp_path / "r.md")]

    return arrange


def _lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


def test_ctrl_c_is_one_line_and_130(report_raises, capsys):
    assert main(report_raises(KeyboardInterrupt())) == 130
    assert _lines(capsys.readouterr().err) == ["sam3spec: interrupted"]


def test_a_failed_run_is_one_line_and_1(report_raises, capsys):
    assert main(report_raises(RuntimeError("the kernel said no\n  at line 3"))) == 1
    (line,) = _lines(capsys.readouterr().err)
    assert line.startswith("error: RuntimeError: the kernel said no at line 3 (run `sam3spec --debug")


def test_bad_input_is_one_line_and_2(report_raises, capsys):
    assert main(report_raises(KeyError("unknown preset 'x'"))) == 2
    assert _lines(capsys.readouterr().err) == ["error: unknown preset 'x'"]
    unwritable = OSError(errno.EROFS, "Read-only file system", "/mnt/r.md")
    assert main(report_raises(unwritable)) == 2
    assert _lines(capsys.readouterr().err) == ["error: [Errno 30] Read-only file system: '/mnt/r.md'"]


def test_debug_flag_and_variable_add_the_traceback(report_raises, capsys, monkeypatch):
    arguments = report_raises(ValueError("bad results"))
    assert main(["--debug", *arguments]) == 2
    err = capsys.readouterr().err
    assert "Traceback" in err and _lines(err)[-1] == "error: bad results"
    monkeypatch.setenv(errors.DEBUG_ENV, "1")
    assert main(arguments) == 2
    assert "Traceback" in capsys.readouterr().err
    monkeypatch.setenv(errors.DEBUG_ENV, "0")
    assert main(arguments) == 2
    assert "Traceback" not in capsys.readouterr().err


def test_the_train_stage_smoke_flag_is_not_the_debug_flag():
    from sam3spec.cli import build_parser

    parsed = build_parser().parse_args(
        ["train", "stage", "--stage", "p", "--data", "d", "--out", "o", "--debug"]
    )
    assert parsed.debug is True and parsed.show_traceback is False
