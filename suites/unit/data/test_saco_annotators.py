"""Gold annotator files that ask different pairs are reported with the pair ids that differ."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

from sam3spec.data import SACoDataset


def gold(path: Path, ids: list[int]) -> Path:
    images = [
        {
            "id": i,
            "file_name": f"{i}.jpg",
            "text_input": "x",
            "width": 4,
            "height": 4,
            "is_instance_exhaustive": 1,
        }
        for i in ids
    ]
    path.write_text(json.dumps({"images": images, "annotations": [], "categories": [{"id": 1}]}))
    return path


def test_differing_annotator_files_name_the_pair_ids(tmp_path: Path) -> None:
    files = [
        gold(tmp_path / "a.json", [1, 2, 3]),
        gold(tmp_path / "b.json", [1, 2, 3]),
        gold(tmp_path / "c.json", [1, 3, 9]),
    ]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dataset = SACoDataset(files, tmp_path)
    (problem,) = list(dataset.faults)
    assert problem.path == str(files[2])
    assert "lacks pair ids [2]" in problem.detail and "has extra pair ids [9]" in problem.detail
