"""Compare mode's mechanics on a random tiny student (the accuracy figures themselves need a trained one)."""

from __future__ import annotations

from sam3spec.eval.quant_compare import CompareRow, compare, drop_percent, format_table
from sam3spec.world.inputs import world_images


def test_world_images_reads_eval_split(small_world):
    pairs = world_images(small_world)
    assert pairs and all(len(p.phrases) == len(p.instances) for p in pairs)
    assert all(p.image.ndim == 3 and p.image.dtype.name == "uint8" for p in pairs)


def test_compare_rows(tiny_student, small_world):
    rows = compare(tiny_student, world_images(small_world, limit=1), recipes=["8da8w"], log=lambda _: None)
    assert [row.name for row in rows] == ["float", "8da8w"]
    assert rows[1].size_mb < rows[0].size_mb
    for row in rows:
        assert {"mIoU", "presence_f1", "cgF1"} <= set(row.metrics)
    assert rows[0].miou_drop_percent is None and rows[1].miou_drop_percent is not None


def test_drop_and_warning_line():
    assert drop_percent(0.5, 0.49) == 2.0000000000000018 or abs(drop_percent(0.5, 0.49) - 2.0) < 1e-9
    assert drop_percent(0.0, 0.3) == 0.0
    metrics = {"mIoU": 0.4, "presence_f1": 0.9, "cgF1": 30.0}
    rows = [
        CompareRow("float", "float", 10.0, metrics, 5.0),
        CompareRow("bad", "eager", 3.0, {**metrics, "mIoU": 0.38}, 6.0, 5.0),
        CompareRow("good", "eager", 3.0, metrics, 6.0, 0.0),
    ]
    text = format_table(rows)
    assert "WARNING: bad loses 5.00% mIoU" in text and "WARNING: good" not in text
