"""CLI: ``world generate`` and ``data verify`` through ``register`` (as sam3spec.cli wires them)."""

from __future__ import annotations

import argparse
import json

from sam3spec.data.commands import register


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="sam3spec")
    register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    return args.func(args)


def test_generate_then_verify(tmp_path, capsys):
    out = tmp_path / "world"
    assert (
        main(
            [
                "world",
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
    assert main(["world", "generate", "--out", str(tmp_path), "--images", "1", "--videos", "0"]) == 2
    assert "not empty" in capsys.readouterr().err
    assert main(["world", "generate", "--out", str(tmp_path / "w"), "--size", "33"]) == 2
    assert main(["data", "verify", str(tmp_path)]) == 2  # nothing recognisable
    assert main(["data", "verify", str(tmp_path / "missing")]) == 2
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "sa_000001.json").write_text("{not json")
    assert main(["data", "verify", str(broken)]) == 1
    assert "bad_json" in capsys.readouterr().out
