"""The isolated worker runs where its caller runs: relative paths handed to it mean the same file."""

from __future__ import annotations

import json

from sam3spec.bench.measure import run_isolated


def test_the_worker_keeps_the_callers_working_folder(tmp_path, monkeypatch):
    modules = tmp_path / "modules"
    modules.mkdir()
    (modules / "cwd_probe.py").write_text(
        "import json, os, pathlib, sys\n"
        "print(json.dumps({'cwd': os.getcwd(), 'found': pathlib.Path(sys.argv[1]).is_file()}))\n"
    )
    work = tmp_path / "work"
    work.mkdir()
    (work / "model.pte").write_bytes(b"x")
    monkeypatch.setenv("PYTHONPATH", str(modules))
    monkeypatch.chdir(work)
    result = run_isolated("cwd_probe", ["model.pte"])
    assert result == json.loads(json.dumps({"cwd": str(work), "found": True}))
