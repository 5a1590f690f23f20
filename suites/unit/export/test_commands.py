"""``sam3spec export`` / ``bench`` argument handling (the real exports run in the export gate)."""

from __future__ import annotations

from sam3spec.cli import main


def test_export_needs_a_source(tmp_path, capsys):
    assert main(["export", "--out", str(tmp_path / "m.pte")]) == 2
    assert "--model DIR, or --preset NAME --random-weights" in capsys.readouterr().err
    assert main(["export", "--preset", "efficientsam3-tiny", "--out", str(tmp_path / "m.pte")]) == 2


def test_export_rejects_unknown_recipe_and_preset(tmp_path, capsys):
    out = str(tmp_path / "m.pte")
    assert (
        main(
            ["export", "--preset", "efficientsam3-tiny", "--random-weights", "--recipe", "int3", "--out", out]
        )
        == 2
    )
    assert "known: fp32, 8da4w, 8da8w" in capsys.readouterr().err
    assert main(["export", "--preset", "nope", "--random-weights", "--out", out]) == 2
    assert "unknown preset" in capsys.readouterr().err


def test_bench_missing_file(tmp_path, capsys):
    assert main(["bench", "--pte", str(tmp_path / "none.pte")]) == 2
    assert "none.pte: no such file" in capsys.readouterr().err
