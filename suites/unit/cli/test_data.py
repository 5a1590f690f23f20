"""CLI: ``data generate`` and ``data verify``."""

from __future__ import annotations

import json

from sam3spec.cli import main


def test_generate_then_verify(tmp_path, capsys):
    out = tmp_path / "world"
    assert (
        main(
            [
                "data",
                "generate",
                "--out",
                str(out),
                "--images",
                "5",
                "--videos",
                "2",
                "--seed",
                "1",
                "--size",
                "48",
                "--quiet",
            ]
        )
        == 0
    )
    assert "wrote" in capsys.readouterr().out
    assert len(list(out.rglob("sa_*.jpg"))) == 5
    report_path = tmp_path / "report.json"
    assert main(["data", "verify", str(out), "--json", str(report_path)]) == 0
    text = capsys.readouterr().out
    assert "0 problem(s)" in text
    report = json.loads(report_path.read_text())
    assert report["ok"] and report["totals"]["images"] == 5 and report["totals"]["videos"] == 2


def test_exit_codes(tmp_path, capsys):
    (tmp_path / "taken.txt").write_text("x")
    assert main(["data", "generate", "--out", str(tmp_path), "--images", "1", "--videos", "0"]) == 2
    assert "not empty" in capsys.readouterr().err
    assert main(["data", "generate", "--out", str(tmp_path / "w"), "--size", "33"]) == 2
    assert main(["data", "verify", str(tmp_path)]) == 2  # nothing recognisable
    assert main(["data", "verify", str(tmp_path / "missing")]) == 2
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "sa_000001.json").write_text("{not json")
    assert main(["data", "verify", str(broken)]) == 1
    assert "bad_json" in capsys.readouterr().out
