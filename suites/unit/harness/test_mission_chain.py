"""The full-size rehearsal's machinery (``harness/mission.py``, ``suites/mission``) at toy sizes:
a command's own peak memory, finished commands not run twice, a failed one run again, the folders
in the layouts real data comes in, every ``mission.*`` spec checked by the suite, and the suite
kept out of the CI run (``-m "not slow"``)."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

from harness.mission import Chain, write_layouts
from harness.plugin import OTHER_MARKERS
from sam3spec.report import SPECS_DIR, load_spec_file

ROOT = Path(__file__).resolve().parents[3]
ALLOCATE = "import sys; block = bytearray(200 * 2**20); open(sys.argv[1], 'a').write('run\\n')"


def test_a_command_records_its_own_peak_memory_and_runs_once(tmp_path) -> None:
    runs = tmp_path / "runs.txt"
    chain = Chain(tmp_path / "chain")
    record = chain.run("allocate", [sys.executable, "-c", ALLOCATE, str(runs)])
    assert record.ok and 200 < record.peak_rss_mb < 300  # the child's 200 MiB, not this process's
    assert Path(record.log).read_text().startswith("$ ")
    assert 0 < record.cpu_seconds < record.seconds + 1 and len(record.load) == 2
    again = Chain(tmp_path / "chain")  # a rerun reads records.json and skips what finished
    assert again.run("allocate", [sys.executable, "-c", ALLOCATE, str(runs)]) == record
    assert runs.read_text() == "run\n"


def test_a_failed_command_is_run_again_and_stops_what_needs_it(tmp_path) -> None:
    chain = Chain(tmp_path)
    failed = chain.run("broken", [sys.executable, "-c", "raise SystemExit('no such folder: /data')"])
    assert failed.returncode == 1 and not failed.ok
    with pytest.raises(pytest.fail.Exception, match="(?s)broken did not finish.*no such folder"):
        chain.require("broken")
    with pytest.raises(pytest.fail.Exception, match=r"(?s)never did not finish.*\(not run\)"):
        chain.require("never")
    assert chain.run("broken", [sys.executable, "-c", "pass"]).ok


def test_the_folders_have_the_released_layouts(tmp_path) -> None:
    layouts = write_layouts(tmp_path)
    data = tmp_path / "data"
    assert not list(data.rglob("world.json"))
    assert {path.suffix for path in layouts.sa1b.iterdir()} == {".jpg", ".json"}
    assert [path.name for path in layouts.saco.glob("*.json")] == ["silver_world_merged_train.json"]
    videos = sorted(path.relative_to(layouts.sav).as_posix() for path in layouts.sav.rglob("*.*"))
    assert videos and all(re.fullmatch(r"sav_000/sav_\d{6}(\.mp4|_manual\.json)", name) for name in videos)
    gold = sorted(path.name for path in layouts.gold.glob("*.json"))
    assert gold == [f"gold_world_merged_{a}_release_test.json" for a in "abc"]
    assert {path.suffix for path in layouts.images.iterdir()} == {".jpg"}
    phrases = layouts.vocabulary.read_text().splitlines()
    assert phrases and all(phrases)


def test_every_mission_spec_is_checked_and_ci_leaves_the_suite_out() -> None:
    ids = {spec.id for spec in load_spec_file(SPECS_DIR / "mission.yaml")}
    suite = (ROOT / "suites" / "mission" / "test_mission.py").read_text()
    named = set(re.findall(r'"(mission\.\w+)"', suite))
    assert named == ids
    # CI runs `-m "not slow"`; the suite's tests carry both markers, both registered.
    assert '-m "not slow"' in (ROOT / "scripts" / "test.sh").read_text()
    assert "pytestmark = [pytest.mark.mission, pytest.mark.slow]" in suite
    assert {"mission", "slow"} <= set(OTHER_MARKERS)
