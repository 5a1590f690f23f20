"""Every ``sam3spec`` command of docs/REAL_JOB.md parses with the command line as it is: each
subcommand and option spelled as the guide spells it (the rehearsal, ``suites/mission``, runs
them; this keeps the guide from drifting in CI)."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from sam3spec.cli import build_parser

GUIDE = Path(__file__).resolve().parents[3] / "docs" / "REAL_JOB.md"


def guide_commands() -> list[list[str]]:
    blocks = re.findall(r"```bash\n(.*?)```", GUIDE.read_text(), re.DOTALL)
    lines = [line.split("  #")[0].strip() for block in blocks for line in block.splitlines()]
    return [shlex.split(line)[1:] for line in lines if line.startswith("sam3spec ")]


def test_the_guide_has_every_step() -> None:
    steps = {
        " ".join(argv[:2]) if argv[0] in {"teacher", "train", "eval", "data"} else argv[0]
        for argv in guide_commands()
    }
    expected = {
        "data verify",
        "teacher cache",
        "train stage",
        "train video",
        "eval model",
        "quantize",
        "export",
        "report",
    }
    assert expected <= steps


@pytest.mark.parametrize("argv", guide_commands(), ids=lambda argv: " ".join(argv[:3]))
def test_each_guide_command_parses(argv: list[str]) -> None:
    build_parser().parse_args(argv)  # SystemExit (2) on an unknown option or a missing argument
