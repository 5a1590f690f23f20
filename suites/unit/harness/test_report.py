"""Results, the JSON store, ingestion and the markdown report."""

import json

import pytest

from harness.plugin import Gate
from harness.report import render, write_report
from harness.results import NOT_MEASURED, Result, ResultStore
from harness.specs import load_spec_file

SPECS = """
- id: demo.size
  what: size of the program
  metric: mb
  op: "<"
  value: 50
  goal: 40
  unit: MB
  source: test
  measured_on: any
- id: demo.latency_phone
  what: latency on a phone
  metric: ms
  op: "<"
  value: 100
  source: test
  measured_on: device
- id: demo.accuracy
  what: accuracy
  metric: ratio
  op: ">="
  value: 0.85
  source: test
  measured_on: any
"""


@pytest.fixture
def specs(tmp_path):
    path = tmp_path / "demo.yaml"
    path.write_text(SPECS)
    return {spec.id: spec for spec in load_spec_file(path)}


def test_unmeasured_targets_are_listed_as_not_measured_with_reasons(specs):
    store = ResultStore()
    gate = Gate(specs, store)
    gate.check("demo.size", 45.0, preset="seed", weights="random")
    gate.not_measured("demo.latency_phone", "needs a phone; ingest the native runner's JSON")
    text = render(specs, store, "demo")
    rows = {line.split("|")[1].strip(): line for line in text.splitlines() if line.startswith("| `")}
    assert "pass, goal not met" in rows["`demo.size`"]
    assert "preset=seed" in rows["`demo.size`"]
    assert "not measured (needs a phone; ingest the native runner's JSON)" in rows["`demo.latency_phone`"]
    assert "not measured (no gate measured it in this run)" in rows["`demo.accuracy`"]
    assert "pass" not in rows["`demo.accuracy`"] and "pass" not in rows["`demo.latency_phone`"]
    assert "**1 pass, 0 fail, 2 not measured** of 3 spec entries" in text


def test_failed_check_raises_naming_the_spec_and_is_recorded(specs):
    store = ResultStore()
    with pytest.raises(AssertionError, match="demo.size .*does not meet < 50 MB"):
        Gate(specs, store).check("demo.size", 51.0)
    assert store.results["demo.size"].status == "fail"
    assert "**FAIL**" in render(specs, store, "demo")


def test_check_each_records_every_spec_before_raising(specs):
    from harness.plugin import SpecFailure

    store = ResultStore()
    with pytest.raises(SpecFailure, match="demo.size .*does not meet < 50 MB") as caught:
        Gate(specs, store).check_each(("demo.size", 51.0, {}), ("demo.accuracy", 0.9, {"note": "n"}))
    assert "demo.accuracy" not in str(caught.value)
    assert store.results["demo.size"].status == "fail"
    assert store.results["demo.accuracy"].status == "pass"
    assert len(Gate(specs, ResultStore()).check_each(("demo.accuracy", 0.9, {}))) == 1


def test_unknown_spec_id_is_an_error(specs):
    with pytest.raises(KeyError, match="unknown spec id 'demo.nope'"):
        Gate(specs, ResultStore()).check("demo.nope", 1.0)


def test_ingest_results_measured_elsewhere(specs, tmp_path):
    phone = ResultStore()
    Gate(specs, phone).record("demo.latency_phone", 80.0, device="iPhone 15 Pro")
    phone.to_json(tmp_path / "phone.json")
    store = ResultStore()
    Gate(specs, store).not_measured("demo.latency_phone", "no phone here")
    assert store.ingest(tmp_path / "phone.json") == 1
    result = store.results["demo.latency_phone"]
    assert result.status == "pass" and result.measured == 80.0
    # a later not-measured never hides a measured figure
    Gate(specs, store).not_measured("demo.latency_phone", "no phone here")
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
    Gate(specs, store).check("demo.accuracy", 0.9)
    path = write_report(specs, store, tmp_path / "r" / "demo.md", "demo")
    assert path.read_text().startswith("# demo")
    data = json.loads(path.with_suffix(".json").read_text())
    assert data["results"][0]["id"] == "demo.accuracy"
    assert not list((tmp_path / "r").glob(".*.tmp"))
