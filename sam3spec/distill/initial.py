"""The student a stage starts from: the stage's preset at its resolution, pretrained towers and an
``init`` checkpoint loaded into it, and what each load did, printed and written into the run folder.

* ``pretrained_report.json``: one entry per pretrained tower file (RepViT backbone, MobileCLIP
  text tower): keys loaded, missing (left at their initialisation), unexpected, ignored, adapted.
* ``init_report.json``: what the ``init`` checkpoint gave (missing, unexpected, mis-shaped keys),
  and for a stage that checks it, the config fields where the checkpoint's student differs.

A checkpoint made for another student (a key the stage's student lacks or holds at another shape,
a key outside ``new_allowed`` missing, a differing config field where checked) is refused unless
``options.allow_partial``: the stage is chosen by name, and its preset by the stage, never by the
checkpoint.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from sam3spec.atomic import atomic_write_json
from sam3spec.checkpoint import CheckpointError, config_to_dict, load_weights, read_config

if TYPE_CHECKING:
    from sam3spec.distill.tasks import Setup

PRETRAINED_REPORT = "pretrained_report.json"
INIT_REPORT = "init_report.json"


def report_pretrained(student: nn.Module, out: str | Path, main: bool = True) -> list[dict[str, Any]]:
    """Print each pretrained tower's :class:`~sam3spec.models.weights.LoadReport` (``student.load_reports``)
    and write them to ``out/pretrained_report.json`` (main process); returns the entries (none: nothing
    written)."""
    entries = []
    for report in getattr(student, "load_reports", []):
        print(f"pretrained weights {report}")
        entries.append(
            {
                "source": report.source,
                "loaded": len(report.loaded),
                "missing": report.missing,
                "unexpected": report.unexpected,
                "ignored": report.ignored,
                "adapted": report.adapted,
            }
        )
    if entries and main:
        Path(out).mkdir(parents=True, exist_ok=True)
        atomic_write_json({"towers": entries}, Path(out) / PRETRAINED_REPORT)
    return entries


def config_differences(init: Path, wanted: Any) -> list[str]:
    """``field: checkpoint vs stage`` for every leaf of the student config that differs."""

    def leaves(data: Any, prefix: str = "") -> dict[str, Any]:
        if isinstance(data, dict):
            return {k: v for key, value in data.items() for k, v in leaves(value, f"{prefix}{key}.").items()}
        return {prefix.rstrip("."): data}

    have, want = leaves(config_to_dict(read_config(init))), leaves(config_to_dict(wanted))
    return [
        f"{key}: checkpoint {have.get(key)!r} vs stage {want.get(key)!r}"
        for key in sorted(set(have) | set(want))
        if have.get(key) != want.get(key)
    ]


def initial_student(
    setup: Setup, new_allowed: tuple[str, ...] | None = None, check_config: bool = False
) -> nn.Module:
    """The stage's student, pretrained towers and ``options.init`` loaded, reported (module docstring).

    Args:
        setup: the run's set-up (stage, options, processes).
        new_allowed: key prefixes the checkpoint may lack (they start fresh); None: any key.
        check_config: also refuse a checkpoint whose student config differs from the stage's.

    Raises:
        CheckpointError: the checkpoint does not fit the stage's student and ``allow_partial`` is off.
    """
    from sam3spec.models.build import build_student

    stage, options, main = setup.stage, setup.options, setup.processes.main
    wanted = stage.student_config()
    torch.manual_seed(stage.seed)
    student = build_student(wanted, options.pretrained_backbone, options.pretrained_text)
    report_pretrained(student, options.out, main)
    if options.init is None:
        return student
    differences = config_differences(Path(options.init), wanted) if check_config else []
    report = load_weights(student, options.init, strict=False)
    print(f"init from {options.init}: {report.summary()}")
    if main:
        atomic_write_json(
            {
                "from": str(options.init),
                "summary": report.summary(),
                "missing": report.missing,
                "unexpected": report.unexpected,
                "mismatched": report.mismatched,
                "config_differences": differences,
                "allow_partial": options.allow_partial,
            },
            Path(options.out) / INIT_REPORT,
        )
    # Keys the student lacks or holds at another shape, or frozen weights the checkpoint does not
    # give, mean the checkpoint was made for another student (another preset or size).
    missing = (
        [] if new_allowed is None else [key for key in report.missing if not key.startswith(new_allowed)]
    )
    problems = report.unexpected + report.mismatched + missing + differences
    if problems and not options.allow_partial:
        counts = (
            f"{len(report.unexpected)} unexpected, {len(report.mismatched)} shape-mismatched, "
            f"{len(report.missing if new_allowed is None else missing)} missing key(s)"
            + (f", {len(differences)} config difference(s)" if check_config else "")
        )
        raise CheckpointError(
            f"--init {options.init} does not fit the student of stage {stage.name!r} ({stage.student} at "
            f"{stage.resolution} px): {counts} (first: {', '.join(problems[:3])}); run the stage made for "
            "that checkpoint, or pass --allow-partial to load what fits"
        )
    return student
