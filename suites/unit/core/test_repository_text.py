"""The repository speaks of the software, not of how it was built: no tracked file refers to
development rounds, issue numbers or files outside the repository. Decisions and their
measurements live in docs/DECISIONS.md by topic; the plan the specs encode in docs/PLAN.md."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
# Case-insensitive: "session 12", "sessions 10-18", "session 7's", "issue 5", "issue #5", "issue-4",
# "../shared/"; case-sensitive: the names of the planning files that live outside the repository.
HISTORY = re.compile(r"\bsessions? \d+|\bissues? ?#?\d+|\bissue-\d+|\.\./shared\b", re.IGNORECASE)
OUTSIDE_FILES = re.compile(r"\bMISSION(\.md|'s)?\b|\bENVIRONMENT\.md\b|\bdocs/NOTES\.md\b")
VENDORED = ("native/third_party/",)  # third-party code, kept verbatim
THIS_FILE = Path(__file__).resolve().relative_to(ROOT).as_posix()  # its examples are the pattern's tests
BINARY = (".png", ".jpg", ".safetensors", ".pte", ".mp4")


def tracked_files() -> list[Path]:
    listed = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True)
    if listed.returncode != 0:  # not a git checkout (an sdist): every file under the root
        return [
            p for p in ROOT.rglob("*") if p.is_file() and ".git" not in p.parts and ".venv" not in p.parts
        ]
    return [ROOT / name for name in listed.stdout.splitlines()]


def offending_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if HISTORY.search(line) or OUTSIDE_FILES.search(line)]


def test_no_tracked_file_refers_to_rounds_issues_or_outside_files():
    found = []
    for path in tracked_files():
        relative = path.relative_to(ROOT).as_posix()
        if (
            relative.startswith(VENDORED)
            or relative.endswith(BINARY)
            or relative == THIS_FILE
            or not path.is_file()
        ):
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        found += [f"{relative}: {line.strip()[:120]}" for line in offending_lines(text)]
    assert not found, "\n".join(found)


def test_the_pattern_catches_what_it_should():
    caught = [
        "measured in session 12",
        "sessions 10-18",
        "the issue-4 teacher",
        "Issue #7 asks",
        "../shared/x",
        "MISSION.md 7",
        "MISSION's stages",
        "see ENVIRONMENT.md",
    ]
    kept = [
        "session state inside the module",
        "a known issue with PyAV",
        "the mission of the plan",
        "docs/DECISIONS.md",
        "issues 404 errors",
    ]
    assert all(offending_lines(text) for text in caught)
    assert not any(offending_lines(text) for text in kept[:4])
