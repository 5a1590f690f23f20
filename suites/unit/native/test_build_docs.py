"""The documented way to find the executorch wheel's CMake package (``ET=$(python -c ...)`` in
docs/NATIVE.md and beside the native sources) runs and points at the package."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
DOCUMENTED = ["docs/NATIVE.md", "native/CMakeLists.txt", "native/android/README.md"]
LINE = re.compile(r'ET=\$\((?:\S*python\S*) -c "([^"]+)"\)')


@pytest.mark.parametrize("document", DOCUMENTED)
def test_the_documented_executorch_prefix_command_runs(document):
    found = LINE.findall((ROOT / document).read_text())
    assert found, f"no ET=$(python -c ...) line in {document}"
    for code in found:
        printed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
        assert printed.returncode == 0, printed.stderr
        prefix = Path(printed.stdout.strip())
        assert (prefix / "share" / "cmake" / "executorch-config.cmake").is_file(), prefix
