"""Bad data never kills a run: ten planted faults -> exactly ten problems; loaders skip, count,
warn once per file, and a DataLoader over the corpus yields the good samples only."""

from __future__ import annotations

import json
import warnings

import pytest

from sam3spec.data import SA1BDataset, SACoDataset, SAVDataset, make_loader
from sam3spec.data.faults import FAULT_KINDS, DataFault, DataFaultWarning, FaultLog, Problem, Skipped
from sam3spec.data.loader import collate_samples, good_batches, pin_memory_for
from sam3spec.data.transforms import ResizeNormalize, TransformConfig
from sam3spec.data.verify import verify
from sam3spec.world import WorldConfig, generate_world
from sam3spec.world.faults import plant_faults

CONFIG = WorldConfig(image_size=48, video_min_frames=12, video_max_frames=16)


@pytest.fixture(scope="module")
def faulty(tmp_path_factory):
    root = tmp_path_factory.mktemp("faulty")
    summary = generate_world(root, 12, 5, seed=11, config=CONFIG, progress=False)
    planted = plant_faults(root)
    return summary.paths, planted


def test_ten_planted_faults_give_exactly_ten_problems(faulty):
    paths, planted = faulty
    assert len(planted) == 10
    assert {p.kind for p in planted} == {
        "truncated_image",
        "malformed_rle",
        "missing_json",
        "size_mismatch",
        "empty_video",
        "unreadable_video",
    }
    report = verify(paths.root)
    assert len(report.problems) == 10, report.format()
    assert {p.key for p in report.problems} == {p.key for p in planted}
    assert not report.ok


def _drain(dataset, num_workers=0, batch_size=3):
    loader = make_loader(dataset, batch_size=batch_size, num_workers=num_workers, shuffle=True, seed=0)
    seen, problems = [], FaultLog(warn=False)
    for batch in good_batches(loader, problems):
        seen.extend(batch.get("image_id", batch.get("video_id")))
    return seen, problems


def test_dataloaders_complete_with_good_samples_only(faulty):
    paths, planted = faulty
    planted_keys = {p.key for p in planted}
    transform = ResizeNormalize(TransformConfig(size=32))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataFaultWarning)
        sa1b = SA1BDataset(paths.sa1b_train, transform=transform)
        seen, problems = _drain(sa1b)
        assert sorted(seen) == [f"sa_{i:06d}" for i in range(5, 11)]  # images 1-4 are the faulty ones
        assert len(problems) == 4 and {p.key for p in problems} <= planted_keys

        saco = SACoDataset([paths.saco_train], paths.sa1b_train, transform=transform)
        data = json.loads(paths.saco_train.read_text())
        bad_pairs = {e["id"] for e in data["images"] if e["file_name"] in ("sa_000001.jpg", "sa_000004.jpg")}
        bad_annotations = {int(p.where.split()[-1]) for p in planted if p.path == str(paths.saco_train)}
        bad_pairs |= {a["image_id"] for a in data["annotations"] if a["id"] in bad_annotations}
        seen, problems = _drain(saco)
        assert sorted(int(i) for i in seen) == sorted(
            e["id"] for e in data["images"] if e["id"] not in bad_pairs
        )
        assert len(problems) == 4  # truncated + resized JPEG, corrupt RLE, wrong-size RLE

        gold = SACoDataset(paths.saco_eval, paths.sa1b_eval, transform=transform)
        assert [p.kind for p in gold.faults.problems] == ["missing_json"]
        assert len(list(good_batches(make_loader(gold, batch_size=4)))) > 0

        sav = SAVDataset(paths.sav_train, context_frames=2, transform=transform)
        seen, problems = _drain(sav, batch_size=2)
        assert seen == ["sav_000004"] and len(problems) == 3


def test_worker_processes_carry_problems_to_the_main_process(faulty):
    paths, _ = faulty
    dataset = SA1BDataset(paths.sa1b_train, transform=ResizeNormalize(TransformConfig(size=32)))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", DataFaultWarning)
        seen, _ = _drain(dataset, num_workers=2)
        list(good_batches(make_loader(dataset, batch_size=4)))  # a second epoch, in process
    assert len(seen) == 6
    assert len(dataset.faults) == 4  # recorded in the main process's copy via the batches
    messages = [str(w.message) for w in caught if issubclass(w.category, DataFaultWarning)]
    assert len(messages) == 4 and len(set(messages)) == 4  # one warning per bad file, ever


def test_skipped_items_and_fault_log():
    log = FaultLog()
    problem = Problem("x.jpg", "truncated_image")
    with pytest.warns(DataFaultWarning, match="x.jpg"):
        assert log.record(problem)
    assert not log.record(Problem("x.jpg", "truncated_image", detail="other text"))  # same identity
    assert len(log) == 1 and problem in log and log.counts_by_kind() == {"truncated_image": 1}
    batch = collate_samples([Skipped(0, (problem,)), Skipped(1, (problem,))])
    assert batch == {"batch_size": 0, "skipped": [problem, problem]}
    with pytest.raises(ValueError):
        DataFault([])
    assert set(FAULT_KINDS) >= {"truncated_image", "malformed_rle", "missing_json", "empty_video"}


def test_pin_memory_only_on_cuda():
    assert pin_memory_for("cuda:0") and not pin_memory_for("cpu") and not pin_memory_for("mps")
