"""Spec loading and validation: every shipped spec loads; malformed files name file, entry, field."""

from pathlib import Path

import pytest

from sam3spec.report.specs import SPECS_DIR, SpecError, load_spec_file, load_specs

GOOD = """
- id: demo.size
  what: a size
  metric: mb
  op: "<"
  value: 50
  source: test
  measured_on: any
"""


def write(tmp_path: Path, text: str, name: str = "demo.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_shipped_specs_load_and_cover_every_plan_target():
    specs = load_specs(SPECS_DIR)
    # every target of the plan's final table (docs/PLAN.md 10) and design has an entry
    for spec_id in [
        "student.params.total",
        "student.memory.tokens",
        "phase2.miou_ratio",
        "quant.miou_drop_pct",
        "quant.size_ratio",
        "export.pte_size_total",
        "export.vision_program_mb",
        "runtime.image_latency_phone",
        "video.fps_phone",
        "runtime.peak_memory_phone",
        "runtime.npu_share",
        "stage3.miou_ratio",
    ]:
        assert spec_id in specs
    assert specs["export.pte_size_total"].passes(49.9)
    assert not specs["export.pte_size_total"].passes(50.0)
    assert specs["export.vision_program_mb"].passes(30.0)
    assert not specs["export.vision_program_mb"].passes(30.01)
    assert specs["student.params.total"].passes(100.7e6 * 1.049)
    assert not specs["student.params.total"].passes(100.7e6 * 1.051)


def test_good_file(tmp_path):
    (spec,) = load_spec_file(write(tmp_path, GOOD))
    assert spec.stage == "demo" and spec.target_text() == "< 50"


@pytest.mark.parametrize(
    "mutation, message",
    [
        (('  op: "<"', '  op: "~"'), "entry 0 ('demo.size'): field 'op'"),
        (("  value: 50", "  value: fifty"), "field 'value' must be a number"),
        (("  source: test\n", ""), "missing field 'source'"),
        (("  measured_on: any", "  measured_on: phone"), "field 'measured_on'"),
        (("id: demo.size", "id: other.size"), "field 'id' must be a string starting with 'demo.'"),
        (("  metric: mb", "  metric: mb\n  colour: red"), "unknown field(s) ['colour']"),
        (('  op: "<"', "  op: within"), "field 'tolerance' is required"),
    ],
)
def test_malformed_entry_names_file_entry_and_field(tmp_path, mutation, message):
    path = write(tmp_path, GOOD.replace(*mutation))
    with pytest.raises(SpecError) as error:
        load_spec_file(path)
    assert str(path) in str(error.value)
    assert message in str(error.value)


def test_not_a_list_and_bad_yaml(tmp_path):
    with pytest.raises(SpecError, match="expected a YAML list"):
        load_spec_file(write(tmp_path, "id: x\n"))
    with pytest.raises(SpecError, match="not valid YAML"):
        load_spec_file(write(tmp_path, "- [unclosed\n"))


def test_duplicate_ids_across_files(tmp_path):
    write(tmp_path, GOOD)
    with pytest.raises(SpecError, match="duplicate id"):
        load_spec_file(write(tmp_path, GOOD + GOOD, "demo.yaml"))


def test_nan_never_passes(tmp_path):
    (spec,) = load_spec_file(write(tmp_path, GOOD))
    assert not spec.passes(float("nan"))
