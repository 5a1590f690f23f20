"""The commands README.md and docs/*.md show, as a new user would type them: every ``sam3spec`` line
of a shell block parses, and the fast ones (random tiny weights, a generated world) run as written
from a folder outside the repository. A command changed here must change in the doc, and back."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from sam3spec.cli import build_parser

from .conftest import REPOSITORY, environment

DOCS = [
    "README.md",
    *sorted(p.relative_to(REPOSITORY).as_posix() for p in (REPOSITORY / "docs").glob("*.md")),
]
SHELL_BLOCK = re.compile(r"```(?:bash|sh)\n(.*?)```", re.S)
PYTHON_BLOCK = re.compile(r"```python\n(.*?)```", re.S)


def shell_lines(doc: str) -> list[str]:
    """The command lines of ``doc``'s shell blocks (continuations joined, comment lines dropped)."""
    lines = []
    for block in SHELL_BLOCK.findall((REPOSITORY / doc).read_text()):
        for line in block.replace("\\\n", " ").splitlines():
            if line.strip() and not line.strip().startswith("#"):
                lines.append(" ".join(line.split()))
    return lines


def arguments(line: str) -> list[str]:
    """The words after ``sam3spec`` (prefixes such as ``torchrun ... --no-python`` or ``VAR=1``
    dropped), without the comment and without optional ``[...]`` groups."""
    words = shlex.split(line, comments=True)
    words = words[words.index("sam3spec") + 1 :]
    kept, depth = [], 0
    for word in words:
        depth += word.startswith("[")
        if depth == 0:
            kept.append(word)
        depth -= word.endswith("]")
    return kept


DOCUMENTED = [
    (doc, line) for doc in DOCS for line in shell_lines(doc) if "sam3spec" in shlex.split(line, comments=True)
]


@pytest.mark.parametrize(("doc", "line"), DOCUMENTED, ids=[f"{d}:{i}" for i, (d, _) in enumerate(DOCUMENTED)])
def test_every_documented_command_line_parses(doc, line):
    try:
        build_parser().parse_args(arguments(line))
    except SystemExit as stop:
        pytest.fail(f"{doc}: `{line}` does not parse (exit {stop.code})")


# Run as written, in this order, in one folder outside the repository: each takes seconds.
RUNNABLE = [
    ("docs/DATA.md", "sam3spec data generate --out runs/world --images 200 --videos 10 --seed 0"),
    ("docs/DATA.md", "sam3spec data verify runs/world --json runs/world-report.json"),
    (
        "README.md",
        'sam3spec segment photo.png --prompt "red circle" --out overlay.png --model runs/concept-world/stage3/final',
    ),
    (
        "README.md",
        "sam3spec segment photo.png --box 10,10,80,90 --point 40,60 --point 5,5,0 --out overlay.png",
    ),
    (
        "README.md",
        "sam3spec info --preset efficientsam3-repvit_m2_3-mobileclip_s1 [--resolution 504 1008] [--json]",
    ),
    (
        "docs/EVAL.md",
        "sam3spec eval vos --gt-root sav_val/Annotations_6fps --pred-root my_masks --json vos.json",
    ),
    ("docs/EVAL.md", "sam3spec prune runs/concept-world --keep-last-n 1"),
]


@pytest.fixture(scope="module")
def user_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder outside the repository with what the documented commands name: ``photo.png`` and a
    random tiny student at ``runs/concept-world/stage3/final``."""
    import torch

    from sam3spec.checkpoint import save_pretrained
    from sam3spec.models.build import build_student

    folder = tmp_path_factory.mktemp("user")
    torch.manual_seed(0)
    save_pretrained(build_student("efficientsam3-tiny"), folder / "runs/concept-world/stage3/final")
    pixels = np.random.default_rng(0).integers(0, 256, (120, 160, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(folder / "photo.png")
    return folder


def run_line(line: str, folder: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "sam3spec.cli", *arguments(line)],
        cwd=folder,
        env=environment(),
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_fast_documented_commands_run_as_written_outside_the_repository(user_folder):
    for doc, line in RUNNABLE:
        written = line.split("#")[0].strip()
        assert any(documented.startswith(written) for documented in shell_lines(doc)), (
            f"{doc} no longer shows `{line}`"
        )
        if line.startswith("sam3spec eval vos"):  # its documented folders, from the world made above
            annotations = user_folder / "runs/world/sav/val/Annotations_6fps"
            shutil.copytree(annotations, user_folder / "sav_val/Annotations_6fps")
            shutil.copytree(annotations, user_folder / "my_masks")
        result = run_line(line, user_folder)
        assert result.returncode == 0, f"{doc}: `{line}` exited {result.returncode}: {result.stderr[-2000:]}"
    assert Image.open(user_folder / "overlay.png").size == (160, 120)
    assert (user_folder / "runs/world-report.json").is_file() and (user_folder / "vos.json").is_file()


def test_readme_python_example_runs_outside_the_repository(user_folder):
    (example,) = [
        block for block in PYTHON_BLOCK.findall((REPOSITORY / "README.md").read_text()) if "predict(" in block
    ]
    result = subprocess.run(
        [sys.executable, "-c", example],
        cwd=user_folder,
        env=environment(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-2000:]


def test_native_doc_finds_the_executorch_folder():
    # docs/NATIVE.md's first build line, with this interpreter for .venv/bin/python
    (line,) = [line for line in shell_lines("docs/NATIVE.md") if line.startswith("ET=")]
    (code,) = re.findall(r'-c "([^"]*)"', line)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    # CMAKE_PREFIX_PATH=$ET: CMake's find_package(executorch) looks for this file under it
    assert (Path(result.stdout.strip()) / "share/cmake/executorch-config.cmake").is_file()
