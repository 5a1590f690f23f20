"""The library never imports the test harness; the measurement helpers sit at the bottom layer.

``harness/`` (the pytest plugin) is not installed with the package, so an import of it from
``sam3spec/`` would work in a checkout and fail for every user of the wheel. Imports inside
functions count, and so does a module name handed to ``run_isolated`` / ``import_module``.
"""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[3] / "sam3spec"
# a string that is exactly a harness module path, e.g. run_isolated("harness.bench_image", ...)
HARNESS_MODULE = re.compile(r"harness(\.\w+)*")


def imported_modules(path: Path) -> list[tuple[int, str]]:
    """Every ``(line, module)`` that ``path`` imports, at any depth (relative imports resolved
    against the package only as far as their leading dots say: they can never reach harness)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
        elif (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and HARNESS_MODULE.fullmatch(node.value)
        ):
            found.append((node.lineno, node.value))
    return found


def test_no_module_under_sam3spec_imports_harness():
    offenders = [
        f"{path.relative_to(PACKAGE.parent)}:{line}: {module}"
        for path in sorted(PACKAGE.rglob("*.py"))
        for line, module in imported_modules(path)
        if module.split(".")[0] == "harness"
    ]
    assert not offenders, "sam3spec must not import the test harness:\n" + "\n".join(offenders)


def test_the_check_sees_imports_inside_functions(tmp_path):
    source = tmp_path / "lazy.py"
    source.write_text(
        "def f():\n    from harness.plugin import Gate\n\n"
        "def g():\n    return run_isolated('harness.bench_image', [])\n"
    )
    assert [module for _, module in imported_modules(source)] == ["harness.plugin", "harness.bench_image"]


def test_measurement_helpers_import_only_the_standard_library():
    # psutil (a declared dependency, imported inside current_rss_mb) is the one exception.
    allowed = set(sys.stdlib_module_names) | {"__future__", "psutil"}
    outside = [
        f"line {line}: {module}"
        for line, module in imported_modules(PACKAGE / "bench" / "measure.py")
        if module.split(".")[0] not in allowed
    ]
    assert not outside, outside
