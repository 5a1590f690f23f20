"""The house drawn from imports: no circles, the concept world and the command line on top, the
test harness outside.

Every import counts, including those inside functions (they still make one module depend on
another; only ``if TYPE_CHECKING:`` blocks are left out), and so does a module name handed to
``run_isolated`` / ``import_module`` as a string. ``harness/`` (the pytest plugin) is not installed
with the package, so an import of it from ``sam3spec/`` would work in a checkout and fail for
every user of the wheel.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[3] / "sam3spec"
MODULE_STRING = re.compile(r"(sam3spec|harness)(\.\w+)+")
TOP = ("sam3spec.world", "sam3spec.cli")  # may import anything; no product package imports them


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path) -> list[tuple[int, str]]:
    """``(line, module)`` of every import of ``path`` at any depth, relative imports resolved."""
    package = module_name(path).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    found = []

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and getattr(child.test, "id", None) == "TYPE_CHECKING":
                continue
            if isinstance(child, ast.Import):
                found.extend((child.lineno, alias.name) for alias in child.names)
            elif isinstance(child, ast.ImportFrom):
                base = ".".join(package[: len(package) - child.level + 1]) if child.level else ""
                module = ".".join(part for part in (base, child.module or "") if part)
                found.extend((child.lineno, f"{module}.{alias.name}") for alias in child.names)
            elif isinstance(child, ast.Constant) and isinstance(child.value, str):
                if MODULE_STRING.fullmatch(child.value):
                    found.append((child.lineno, child.value))
            visit(child)

    visit(ast.parse(path.read_text(), filename=str(path)))
    return found


def graph() -> dict[str, set[str]]:
    """Module -> the sam3spec modules it imports (``from a.b import c`` counts as ``a.b.c`` when
    that is a module, else ``a.b``)."""
    modules = {module_name(path): path for path in PACKAGE.rglob("*.py")}
    edges: dict[str, set[str]] = defaultdict(set)
    for name, path in modules.items():
        for _, imported in imported_modules(path):
            while imported and imported not in modules:
                imported = imported.rpartition(".")[0]
            if imported and imported != name:
                edges[name].add(imported)
    return {name: edges[name] for name in modules}


def package_of(module: str) -> str:
    """``sam3spec.distill.trainer`` -> ``sam3spec.distill``; a top-level module is its own package."""
    return ".".join(module.split(".")[:2])


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one node (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def connect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in sorted(edges.get(node, ())):
            if target not in index:
                connect(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    for node in sorted(edges):
        if node not in index:
            connect(node)
    return found


def test_no_circle_between_modules():
    assert cycles(graph()) == []


def test_no_circle_between_packages():
    packages: dict[str, set[str]] = defaultdict(set)
    for module, targets in graph().items():
        packages[package_of(module)] |= {
            package_of(t) for t in targets if package_of(t) != package_of(module)
        }
    assert cycles(packages) == []


def test_product_packages_import_neither_the_world_nor_the_command_line():
    offenders = [
        f"{module} imports {target}"
        for module, targets in graph().items()
        if not module.startswith(TOP)
        for target in targets
        if target.startswith(TOP)
    ]
    assert not offenders, "\n".join(offenders)


def test_no_module_under_sam3spec_imports_harness():
    offenders = [
        f"{path.relative_to(PACKAGE.parent)}:{line}: {module}"
        for path in sorted(PACKAGE.rglob("*.py"))
        for line, module in imported_modules(path)
        if module.split(".")[0] == "harness"
    ]
    assert not offenders, "sam3spec must not import the test harness:\n" + "\n".join(offenders)


def test_the_checks_see_imports_inside_functions_and_module_strings(tmp_path):
    source = PACKAGE / "_layers_probe.py"  # must sit inside the package for relative imports
    try:
        source.write_text(
            "from typing import TYPE_CHECKING\n"
            "if TYPE_CHECKING:\n    from sam3spec.cli import main\n"
            "def f():\n    from harness.plugin import Gate\n    from .world import generate\n\n"
            "def g():\n    return run_isolated('sam3spec.bench.image', [])\n"
        )
        modules = [module for _, module in imported_modules(source)]
    finally:
        source.unlink()
    assert modules == [
        "typing.TYPE_CHECKING",
        "harness.plugin.Gate",
        "sam3spec.world.generate",
        "sam3spec.bench.image",
    ]
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_measurement_helpers_import_only_the_standard_library():
    # psutil (a declared dependency, imported inside current_rss_mb) is the one exception.
    allowed = set(sys.stdlib_module_names) | {"__future__", "psutil"}
    outside = [
        f"line {line}: {module}"
        for line, module in imported_modules(PACKAGE / "bench" / "measure.py")
        if module.split(".")[0] not in allowed
    ]
    assert not outside, outside


def test_the_command_line_imports_no_torch():
    code = "import sys, sam3spec.cli as cli; cli.build_parser(); print('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"
