"""The conformance specs, the results measured against them, and the markdown report.

* :mod:`sam3spec.report.specs`: load and validate ``specs/*.yaml`` (:func:`load_specs`,
  :class:`Spec`, :class:`SpecError`; :data:`SPECS_DIR` is the repository's ``specs/``);
* :mod:`sam3spec.report.results`: one :class:`Result` per spec id with its machine context, and
  the JSON :class:`ResultStore` that merges results measured elsewhere (``ingest``);
* :mod:`sam3spec.report.markdown`: :func:`render` / :func:`write_report`, one table per stage.

Used by the pytest plugin (``harness/plugin.py``) and by ``sam3spec report``. Needs PyYAML and
tabulate, not torch (the machine context reads torch's version only when it is installed).
"""

from __future__ import annotations

from sam3spec.report.markdown import render, write_report
from sam3spec.report.results import (
    FAIL,
    NOT_MEASURED,
    PASS,
    Result,
    ResultStore,
    evaluate,
    machine_context,
    not_measured,
)
from sam3spec.report.specs import SPECS_DIR, Spec, SpecError, load_spec_file, load_specs

__all__ = [
    "FAIL",
    "NOT_MEASURED",
    "PASS",
    "SPECS_DIR",
    "Result",
    "ResultStore",
    "Spec",
    "SpecError",
    "evaluate",
    "load_spec_file",
    "load_specs",
    "machine_context",
    "not_measured",
    "render",
    "write_report",
]
