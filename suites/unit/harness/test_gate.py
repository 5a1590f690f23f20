"""The ``gate`` fixture's object: records against spec entries, asserts, names every miss."""

import pytest

from harness.plugin import Gate, SpecFailure
from sam3spec.report import ResultStore, render


def test_failed_check_raises_naming_the_spec_and_is_recorded(specs):
    store = ResultStore()
    with pytest.raises(AssertionError, match="demo.size .*does not meet < 50 MB"):
        Gate(specs, store).check("demo.size", 51.0)
    assert store.results["demo.size"].status == "fail"
    assert "**FAIL**" in render(specs, store, "demo")


def test_check_each_records_every_spec_before_raising(specs):
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


def test_record_and_not_measured_carry_the_test_id(specs):
    store = ResultStore()
    gate = Gate(specs, store, nodeid="suites/gates/test_demo.py::test_size")
    gate.record("demo.size", 45.0, preset="seed")
    gate.not_measured("demo.accuracy", "no data here")
    assert store.results["demo.size"].context["test"] == "suites/gates/test_demo.py::test_size"
    assert store.results["demo.size"].context["preset"] == "seed"
    assert store.results["demo.accuracy"].reason == "no data here"
