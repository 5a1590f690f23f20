"""What a training ``--data`` root holds (data root, plain SA-1B folder, plain SA-Co folder) and the
weight syntax of several roots."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from sam3spec.data.sources import DataSource, TrainingDataError, data_sources, training_files


def test_each_layout_is_recognised(tiny_world: Path, plain_layouts, tmp_path: Path) -> None:
    world = training_files(tiny_world)
    silver = next((tiny_world / "saco" / "train").glob("*.json"))
    assert world.saco == (((silver,), tiny_world / "sa1b" / "train"),) and world.sa1b is None

    saco = training_files(plain_layouts.saco)  # images beside the file, as `data verify` reads them
    assert saco.saco == (((plain_layouts.saco / silver.name,), plain_layouts.saco),)
    assert training_files(plain_layouts.sa1b).sa1b == plain_layouts.sa1b

    nested = tmp_path / "nested"
    shutil.copytree(plain_layouts.sa1b, nested / "sa_000" / "part")
    assert training_files(nested).sa1b == nested

    # A data root without SA-Co train files trains on sa1b/train only, never the held-out sa1b/eval.
    root = tmp_path / "root"
    shutil.copytree(tiny_world / "sa1b", root / "sa1b")
    assert training_files(root).sa1b == root / "sa1b" / "train"


def test_gold_triples_count_once_and_nothing_found_is_an_error(plain_layouts, tmp_path: Path) -> None:
    silver = next(plain_layouts.saco.glob("*.json"))
    gold = tmp_path / "gold"
    shutil.copytree(plain_layouts.saco, gold, ignore=shutil.ignore_patterns("*.json"))
    for annotator in "abc":
        shutil.copy(silver, gold / f"gold_demo_merged_{annotator}_release_test.json")
    found = training_files(gold)
    assert [len(files) for files, _ in found.saco] == [3]

    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.json").write_text(json.dumps({"what": "not data"}))
    with pytest.raises(TrainingDataError, match="no training samples"):
        training_files(tmp_path / "empty")
    with pytest.raises(TrainingDataError, match="no such folder"):
        training_files(tmp_path / "absent")


def test_roots_and_weights_parse() -> None:
    assert DataSource.parse("/data/silver:0.3") == DataSource(Path("/data/silver"), 0.3)
    assert DataSource.parse("/data/sa1b") == DataSource(Path("/data/sa1b"), 1.0)
    assert DataSource.parse("c:/data/x:2") == DataSource(Path("c:/data/x"), 2.0)
    assert DataSource.parse("/data/a:b") == DataSource(Path("/data/a:b"))  # not a number: part of the path
    with pytest.raises(ValueError, match="must be > 0"):
        DataSource.parse("/data/silver:0")
    assert data_sources("/x") == [DataSource(Path("/x"))]
    with pytest.raises(TrainingDataError):
        data_sources([])
