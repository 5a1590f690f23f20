"""Results, the JSON store, ingestion and the markdown report."""

import json

import pytest

from sam3spec.report.markdown import render, write_report
from sam3spec.report.results import NOT_MEASURED, Result, ResultStore, evaluate, not_measured


def record(specs, store, spec_id, measured, **context):
    """What the plugin's ``gate.record`` does: evaluate against the spec, add to the store."""
    store.add(evaluate(specs[spec_id], measured, context))


def skip(specs, store, spec_id, reason):
    """What the plugin's ``gate.not_measured`` does."""
    store.add(not_measured(specs[spec_id], reason))


def test_unmeasured_targets_are_listed_as_not_measured_with_reasons(specs):
    store = ResultStore()
    record(specs, store, "demo.size", 45.0, preset="seed", weights="random")
    skip(specs, store, "demo.latency_phone", "needs a phone; ingest the native runner's JSON")
    text = render(specs, store, "demo")
    rows = {line.split("|")[1].strip(): line for line in text.splitlines() if line.startswith("| `")}
    assert "pass, goal not met" in rows["`demo.size`"]
    assert "preset=seed" in rows["`demo.size`"]
    assert "not measured (needs a phone; ingest the native runner's JSON)" in rows["`demo.latency_phone`"]
    assert "not measured (no gate measured it in this run)" in rows["`demo.accuracy`"]
    assert "pass" not in rows["`demo.accuracy`"] and "pass" not in rows["`demo.latency_phone`"]
    assert "**1 pass, 0 fail, 2 not measured** of 3 spec entries" in text


def test_a_failed_result_is_rendered_as_fail(specs):
    store = ResultStore()
    record(specs, store, "demo.size", 51.0)
    assert store.results["demo.size"].status == "fail"
    assert "**FAIL**" in render(specs, store, "demo")


def test_ingest_results_measured_elsewhere(specs, tmp_path):
    phone = ResultStore()
    record(specs, phone, "demo.latency_phone", 80.0, device="iPhone 15 Pro")
    phone.to_json(tmp_path / "phone.json")
    store = ResultStore()
    skip(specs, store, "demo.latency_phone", "no phone here")
    assert store.ingest(tmp_path / "phone.json") == 1
    result = store.results["demo.latency_phone"]
    assert result.status == "pass" and result.measured == 80.0
    # a later not-measured never hides a measured figure
    skip(specs, store, "demo.latency_phone", "no phone here")
    assert store.results["demo.latency_phone"].measured == 80.0
    assert "from phone.json" in render(specs, store, "demo")


def test_ingest_rejects_other_json(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"hello": 1}))
    with pytest.raises(ValueError, match="bad.json: not a sam3spec results file"):
        ResultStore().ingest(bad)


def test_not_measured_needs_a_reason():
    with pytest.raises(ValueError, match="needs a reason"):
        Result("demo.size", NOT_MEASURED)


def test_write_report_writes_markdown_and_json(specs, tmp_path):
    store = ResultStore()
    record(specs, store, "demo.accuracy", 0.9)
    path = write_report(specs, store, tmp_path / "r" / "demo.md", "demo")
    assert path.read_text().startswith("# demo")
    data = json.loads(path.with_suffix(".json").read_text())
    assert data["results"][0]["id"] == "demo.accuracy"
    assert not list((tmp_path / "r").glob(".*.tmp"))
