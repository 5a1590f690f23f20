"""Loading and validating the YAML conformance specs in ``specs/``.

A spec file is a YAML list of entries; each entry is one promise of the plan::

    - id: export.pte_size_total          # "<stage>.<name>", stage = the file's stem
      what: all methods of the XNNPACK .pte, seed preset
      metric: pte_size_mb
      op: "<"                             # < <= > >= == within
      value: 50
      tolerance: 0.05                     # only for "within": relative half-width
      goal: 40                            # optional stretch target
      unit: MB                            # optional
      source: plan 5.4 final report
      measured_on: any                    # any | cpu | gpu | device

A malformed file raises :class:`SpecError` naming the file, the entry and the field.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

OPS = ("<", "<=", ">", ">=", "==", "within")
MEASURED_ON = ("any", "cpu", "gpu", "device")
REQUIRED = ("id", "what", "metric", "op", "value", "source", "measured_on")
OPTIONAL = ("goal", "unit", "tolerance")

SPECS_DIR = Path(__file__).resolve().parents[2] / "specs"  # the repository's specs/, beside sam3spec/


class SpecError(ValueError):
    """A spec file or entry that does not follow the schema."""


@dataclass(frozen=True)
class Spec:
    """One promise: ``measured <op> value`` (or within ``value * (1 +- tolerance)``)."""

    id: str
    what: str
    metric: str
    op: str
    value: float
    source: str
    measured_on: str
    goal: float | None = None
    unit: str | None = None
    tolerance: float | None = None
    file: str = ""

    @property
    def stage(self) -> str:
        return self.id.split(".", 1)[0]

    def passes(self, measured: float) -> bool:
        """Whether ``measured`` meets the target (NaN never does)."""
        return _compare(measured, self.op, self.value, self.tolerance)

    def meets_goal(self, measured: float) -> bool | None:
        """Whether ``measured`` meets the stretch goal (same direction as ``op``); None if no goal."""
        if self.goal is None:
            return None
        op = {"within": "=="}.get(self.op, self.op)
        if op == "==":
            return _compare(measured, "within", self.goal, self.tolerance or 0.0)
        return _compare(measured, op, self.goal, None)

    def target_text(self) -> str:
        unit = f" {self.unit}" if self.unit else ""
        if self.op == "within":
            return f"{_fmt(self.value)}{unit} ± {self.tolerance:.0%}"
        return f"{self.op} {_fmt(self.value)}{unit}"

    def goal_text(self) -> str:
        if self.goal is None:
            return ""
        unit = f" {self.unit}" if self.unit else ""
        return f"{_fmt(self.goal)}{unit}"


def _compare(measured: float, op: str, value: float, tolerance: float | None) -> bool:
    if measured is None or (isinstance(measured, float) and math.isnan(measured)):
        return False
    if op == "<":
        return measured < value
    if op == "<=":
        return measured <= value
    if op == ">":
        return measured > value
    if op == ">=":
        return measured >= value
    if op == "==":
        return measured == value
    if op == "within":
        return abs(measured - value) <= abs(value) * (tolerance or 0.0)
    raise SpecError(f"unknown op {op!r}")


def _fmt(number: float) -> str:
    if isinstance(number, float) and number.is_integer() and abs(number) >= 1e5:
        return f"{number / 1e6:.2f}M" if abs(number) >= 1e6 else f"{int(number)}"
    if isinstance(number, int) and abs(number) >= 1e6:
        return f"{number / 1e6:.2f}M"
    return f"{number:g}"


def _entry(raw: Any, file: str, index: int) -> Spec:
    where = f"{file}: entry {index}"
    if not isinstance(raw, dict):
        raise SpecError(f"{where}: expected a mapping, got {type(raw).__name__}")
    if "id" in raw:
        where = f"{file}: entry {index} ({raw['id']!r})"
    for name in REQUIRED:
        if name not in raw:
            raise SpecError(f"{where}: missing field {name!r}")
    unknown = sorted(set(raw) - set(REQUIRED) - set(OPTIONAL))
    if unknown:
        raise SpecError(f"{where}: unknown field(s) {unknown}; allowed: {list(REQUIRED + OPTIONAL)}")
    stage = Path(file).stem
    if not isinstance(raw["id"], str) or not raw["id"].startswith(stage + "."):
        raise SpecError(f"{where}: field 'id' must be a string starting with {stage + '.'!r}")
    for name in ("what", "metric", "source"):
        if not isinstance(raw[name], str) or not raw[name].strip():
            raise SpecError(f"{where}: field {name!r} must be a non-empty string")
    if raw["op"] not in OPS:
        raise SpecError(f"{where}: field 'op' is {raw['op']!r}; expected one of {list(OPS)}")
    if raw["measured_on"] not in MEASURED_ON:
        raise SpecError(
            f"{where}: field 'measured_on' is {raw['measured_on']!r}; expected one of {list(MEASURED_ON)}"
        )
    for name in ("value", "goal", "tolerance"):
        if name in raw and (isinstance(raw[name], bool) or not isinstance(raw[name], (int, float))):
            raise SpecError(f"{where}: field {name!r} must be a number, got {raw[name]!r}")
    if raw["op"] == "within" and "tolerance" not in raw:
        raise SpecError(f"{where}: field 'tolerance' is required when op is 'within'")
    if "unit" in raw and not isinstance(raw["unit"], str):
        raise SpecError(f"{where}: field 'unit' must be a string")
    return Spec(
        id=raw["id"],
        what=raw["what"],
        metric=raw["metric"],
        op=raw["op"],
        value=raw["value"],
        source=raw["source"],
        measured_on=raw["measured_on"],
        goal=raw.get("goal"),
        unit=raw.get("unit"),
        tolerance=raw.get("tolerance"),
        file=file,
    )


def load_spec_file(path: str | Path) -> list[Spec]:
    """Parse and validate one spec file.

    Raises:
        SpecError: naming the file, the entry and the field that is wrong.
    """
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        raise SpecError(f"{path}: not valid YAML: {error}") from error
    if not isinstance(raw, list):
        raise SpecError(f"{path}: expected a YAML list of spec entries, got {type(raw).__name__}")
    specs = [_entry(item, str(path), index) for index, item in enumerate(raw)]
    seen: set[str] = set()
    for spec in specs:
        if spec.id in seen:
            raise SpecError(f"{path}: duplicate id {spec.id!r}")
        seen.add(spec.id)
    return specs


def load_specs(directory: str | Path = SPECS_DIR) -> dict[str, Spec]:
    """All spec entries of ``directory/*.yaml``, by id (ids are unique across files)."""
    directory = Path(directory)
    if not directory.is_dir():
        raise SpecError(f"spec directory {directory} does not exist")
    specs: dict[str, Spec] = {}
    for path in sorted(directory.glob("*.yaml")):
        for spec in load_spec_file(path):
            if spec.id in specs:
                raise SpecError(f"{path}: id {spec.id!r} also defined in {specs[spec.id].file}")
            specs[spec.id] = spec
    return specs
