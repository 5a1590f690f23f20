"""The markdown performance report: one table per stage, every spec entry a row.

Row: ``id | target | goal | measured | status | context``. A spec that no gate measured in the
run is shown as **not measured** with the reason — never as passed. Tables a gate attached to
explain its figures (:meth:`ResultStore.add_table`, e.g. Stage 3's diagnosis) follow.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

from tabulate import tabulate

from sam3spec.report.results import (
    FAIL,
    NOT_MEASURED,
    PASS,
    Result,
    ResultStore,
    atomic_write_text,
    machine_context,
)
from sam3spec.report.specs import Spec

NO_GATE_REASON = "no gate measured it in this run"
CONTEXT_KEYS = ("preset", "weights", "data", "resolution", "device", "note")


def format_value(value: float | None, unit: str | None) -> str:
    """Human formatting: millions for parameter counts, 4 significant digits otherwise."""
    if value is None:
        return ""
    suffix = f" {unit}" if unit else ""
    if abs(value) >= 1e6:
        return f"{value / 1e6:.2f}M{suffix}"
    if float(value).is_integer():
        return f"{int(value)}{suffix}"
    return f"{value:.4g}{suffix}"


def _status_text(spec: Spec, result: Result | None) -> str:
    if result is None:
        return f"not measured ({NO_GATE_REASON})"
    if result.status == NOT_MEASURED:
        return f"not measured ({result.reason})"
    text = "**FAIL**" if result.status == FAIL else "pass"
    goal = spec.meets_goal(result.measured) if result.measured is not None else None
    if goal is not None:
        text += ", goal met" if goal else ", goal not met"
    return text


def _context_text(result: Result | None, common: dict[str, str]) -> str:
    if result is None:
        return ""
    parts = [f"{key}={result.context[key]}" for key in CONTEXT_KEYS if result.context.get(key) is not None]
    for key in ("machine", "commit"):
        if result.context.get(key) not in (None, common.get(key)):
            parts.append(f"{key}={result.context[key]}")
    if "ingested_from" in result.context:
        parts.append(f"from {Path(result.context['ingested_from']).name}")
    return ", ".join(parts)


def render(specs: dict[str, Spec], store: ResultStore, title: str, stages: list[str] | None = None) -> str:
    """Render the report for ``stages`` (default: every stage that has specs) as markdown."""
    chosen = [spec for spec in specs.values() if stages is None or spec.stage in stages]
    common = {key: str(value) for key, value in machine_context().items()}
    counts: Counter[str] = Counter()
    lines = [f"# {title}", ""]
    lines.append(
        f"Generated {datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M UTC')} on {common['machine']}, "
        f"commit {common['commit']}, torch {common['torch']}."
    )
    lines.append("")
    tables: list[str] = []
    for stage in dict.fromkeys(spec.stage for spec in chosen):
        rows = []
        for spec in (s for s in chosen if s.stage == stage):
            result = store.results.get(spec.id)
            status = result.status if result else NOT_MEASURED
            counts[status] += 1
            rows.append(
                [
                    f"`{spec.id}`",
                    spec.target_text(),
                    spec.goal_text(),
                    format_value(result.measured if result else None, spec.unit),
                    _status_text(spec, result),
                    _context_text(result, common),
                ]
            )
        table = tabulate(
            rows, headers=["id", "target", "goal", "measured", "status", "context"], tablefmt="github"
        )
        tables += [f"## {stage}", "", table, ""]
    lines.append(
        f"**{counts[PASS]} pass, {counts[FAIL]} fail, {counts[NOT_MEASURED]} not measured** "
        f"of {len(chosen)} spec entries."
    )
    lines.append("")
    lines += tables
    for title, table in store.tables.items():
        lines += [f"## {title}", "", table.rstrip("\n"), ""]
    extra = sorted(set(store.results) - set(specs))
    if extra:
        lines += ["## results without a spec entry", ""] + [f"- `{name}`" for name in extra] + [""]
    return "\n".join(lines)


def write_report(
    specs: dict[str, Spec], store: ResultStore, path: str | Path, title: str, stages: list[str] | None = None
) -> Path:
    """Write ``path`` (.md) and the JSON results beside it (same stem, .json), atomically."""
    path = Path(path)
    store.to_json(path.with_suffix(".json"))
    atomic_write_text(path, render(specs, store, title, stages))
    return path
