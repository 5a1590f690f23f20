"""The image stages on the layouts real data comes in: a concept world copied into a plain SA-1B
folder and a plain SA-Co folder (no ``world.json``), several roots mixed by weight, the stage chosen
by name only, and an ``--init`` checkpoint that must fit the stage's student."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path

import pytest
import torch

from sam3spec.checkpoint import CheckpointError, save_pretrained
from sam3spec.cli import main
from sam3spec.config import TINY_PRESET, override
from sam3spec.data.sources import DataSource, TrainingDataError
from sam3spec.data.vocabulary import default_vocabulary
from sam3spec.distill import RunOptions, get_stage
from sam3spec.distill.data import data_units, image_groups, training_dataset
from sam3spec.distill.stage_data import stage_dataset
from sam3spec.world.stages import PHASE1_WORLD, STAGE3_WORLD

TINY_PLAN = {"student": TINY_PRESET, "resolution": 64, "batch_size": 2, "grad_accum": 1, "warmup_steps": 2}


def plan_stage(name: str, **changes):
    """One of the plan's stages with the tiny student at 64 px."""
    return override(get_stage(name), {**TINY_PLAN, **changes})


def texts(dataset, epochs: int) -> list[tuple[str, str, bool]]:
    """``(prompt type, text, targets known)`` of every sample over ``epochs`` epochs."""
    drawn = []
    for epoch in range(epochs):
        dataset.set_epoch(epoch)
        for index in range(len(dataset)):
            sample = dataset[index]
            drawn.append((sample["prompt_type"], sample["text"], sample["targets_known"]))
    return drawn


def test_sa1b_text_prompts_come_from_the_vocabulary_at_the_stage_share(plain_layouts, tmp_path) -> None:
    stage = plan_stage("phase1")  # the plan's mix: text 50 / point 25 / box 25
    own = ("red thing", "blue thing")
    drawn = texts(stage_dataset(stage, RunOptions(plain_layouts.sa1b, tmp_path, vocabulary=own)), 25)
    text = [(phrase, known) for kind, phrase, known in drawn if kind == "text"]
    assert 0.4 < len(text) / len(drawn) < 0.6  # 200 draws, every image has instances
    assert {phrase for phrase, _ in text} == set(own)
    assert not any(known for _, known in text)  # the teacher decides what each phrase names
    shipped = texts(stage_dataset(stage, RunOptions(plain_layouts.sa1b, tmp_path)), 3)
    assert {phrase for kind, phrase, _ in shipped if kind == "text"} <= set(default_vocabulary())
    assert any(kind == "text" for kind, _, _ in shipped)
    none = texts(stage_dataset(stage, RunOptions(plain_layouts.sa1b, tmp_path, vocabulary=())), 3)
    assert not any(kind == "text" for kind, _, _ in none)


def test_phase1_on_an_sa1b_folder_trains_and_logs_its_text_share(
    plain_layouts, tiny_teacher_dir, tmp_path, capsys
) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out = tmp_path / "phase1"
    args = ["train", "stage", "--stage", "phase1", "--data", str(plain_layouts.sa1b), "--out", str(out)]
    args += ["--teacher", str(tiny_teacher_dir), "--quiet", "--threads", str(torch.get_num_threads())]
    args += ["--limit", "6"]  # 3 steps of 2
    for key, value in {**TINY_PLAN, "log_every": 1}.items():
        args += ["--set", f"{key}={value}"]
    assert main(args) == 0
    # The prompts the run trained on: the 6 samples' draw 0 (cached targets hold one draw).
    dataset = stage_dataset(plan_stage("phase1"), RunOptions(plain_layouts.sa1b, tmp_path, limit=6))
    expected = sum(kind == "text" for kind, _, _ in texts(dataset, 1))
    assert 0 < expected < 6
    printed = capsys.readouterr().out
    assert f"phase1 epoch 1/1: text prompts {expected / 6:.1%} of 6 samples (stage mix: text 50%)" in printed
    rows = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]
    assert [row["samples"] for row in rows] == [2, 2, 2]
    assert sum(row["text_prompts"] for row in rows) == expected
    summary = json.loads((out / "summary.json").read_text())
    assert summary["text_prompt_share_by_epoch"] == [pytest.approx(expected / 6)]
    events = EventAccumulator(str(out / "tensorboard"))
    events.Reload()
    assert [event.value for event in events.Scalars("epoch/text_prompt_share")] == [
        pytest.approx(expected / 6)
    ]


@pytest.fixture
def stage3_init(tmp_path) -> Path:
    """A fresh student of ``stage3-world`` at 64 px, saved as the stage's ``--init``."""
    from sam3spec.models.build import build_student

    torch.manual_seed(0)
    config = override(STAGE3_WORLD, {"resolution": 64}).student_config()
    return save_pretrained(build_student(config), tmp_path / "init")


STAGE3_SETTINGS = {"resolution": 64, "batch_size": 4, "epochs": 1, "precise_bn_batches": 1}


def stage3_args(data: Path, init: Path, out: Path) -> list[str]:
    args = ["train", "stage", "--stage", "stage3-world", "--data", str(data), "--init", str(init)]
    args += ["--out", str(out), "--quiet", "--no-tensorboard", "--threads", str(torch.get_num_threads())]
    for key, value in STAGE3_SETTINGS.items():
        args += ["--set", f"{key}={value}"]
    return args


def test_stage3_trains_on_saco_folders_mixed_by_weight(plain_layouts, stage3_init, tmp_path) -> None:
    from sam3spec.distill import distill

    # Two roots whose files have the same names: their images must stay apart.
    again = tmp_path / "again"
    shutil.copytree(plain_layouts.saco, again)
    data = [DataSource(plain_layouts.saco), DataSource(again, 0.5)]
    options = RunOptions(data, tmp_path / "stage3", init=stage3_init, max_steps=1, progress=False)
    options.tensorboard = False
    assert distill(override(STAGE3_WORLD, STAGE3_SETTINGS), options)["steps"] == 1


def test_stage3_without_usable_labels_fails_with_one_line(
    plain_layouts, stage3_init, tmp_path, capsys
) -> None:
    assert main(stage3_args(plain_layouts.sa1b, stage3_init, tmp_path / "sa1b")) == 2
    error = capsys.readouterr().err.strip()
    assert "is SA-1B (no phrases)" in error and len(error.splitlines()) == 1
    assert main(stage3_args(plain_layouts.negatives, stage3_init, tmp_path / "negatives")) == 2
    error = capsys.readouterr().err.strip()
    assert "no usable samples" in error and "negatives" in error and len(error.splitlines()) == 1
    assert not (tmp_path / "sa1b" / "final").exists() and not (tmp_path / "negatives" / "final").exists()


def test_stage3_on_an_saco_folder_from_the_command_line(plain_layouts, stage3_init, tmp_path) -> None:
    out = tmp_path / "stage3"
    assert main([*stage3_args(plain_layouts.saco, stage3_init, out), "--debug"]) == 0
    rows = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]
    assert len(rows) == 3 and any(row["mask_dice"] > 0 for row in rows)  # real instance targets
    assert all(row["text_prompts"] == row["samples"] > 0 for row in rows)  # Stage 3: text prompts only
    assert (out / "final" / "model.safetensors").is_file()


def test_several_data_options_mix(tmp_path) -> None:
    from sam3spec.cli.train import data_option

    assert data_option(["/data/a"]) == Path("/data/a")
    assert data_option(["/data/a", "/data/b:0.3"]) == [
        DataSource(Path("/data/a")),
        DataSource(Path("/data/b"), 0.3),
    ]


def test_every_silver_file_of_a_data_root_trains(tiny_world, tmp_path) -> None:
    root = tmp_path / "root"
    shutil.copytree(tiny_world / "sa1b" / "train", root / "sa1b" / "train")
    silver = next((tiny_world / "saco" / "train").glob("*.json"))
    (root / "saco" / "train").mkdir(parents=True)
    shutil.copy(silver, root / "saco" / "train" / "silver_a_merged_train.json")
    shutil.copy(silver, root / "saco" / "train" / "silver_b_merged_train.json")
    pairs = len(json.loads(silver.read_text())["images"])
    dataset = training_dataset(root, 64, get_stage("stage3").prompts)
    assert len(dataset) == 2 * pairs and not dataset.faults.problems


def test_roots_mix_by_weight_without_repeats_inside_a_pass(plain_layouts) -> None:
    prompts = get_stage("phase1").prompts
    dataset = training_dataset(
        [DataSource(plain_layouts.sa1b), DataSource(plain_layouts.saco, 0.25)], 64, prompts
    )
    images, pairs = [span.stop - span.start for span in dataset.sources]
    assert images == 8 and len(dataset) == images + pairs
    groups = image_groups(dataset)
    total = images + pairs
    share = [round(total / 1.25), round(total * 0.25 / 1.25)]
    seen_images, seen_pairs = Counter(), []
    for epoch in range(3):
        units = data_units(dataset, groups, 0, epoch, 1)
        counts = Counter("sa1b" if unit[0] < images else "saco" for unit in units)
        assert counts == {"sa1b": share[0], "saco": share[1]}
        seen_images.update(unit[0] for unit in units if unit[0] < images)
        seen_pairs += [unit[0] for unit in units if unit[0] >= images]
    # Each root is gone through pass after pass: no sample twice before every other was seen once.
    assert set(seen_images.values()) <= {3 * share[0] // images, 3 * share[0] // images + 1}
    assert len(set(seen_pairs)) == len(seen_pairs)  # 3 x share[1] <= pairs: one pass, no repeats
    for unit in data_units(dataset, groups, 0, 0, 4):  # units of several prompts stay in one image
        assert len({dataset[index]["image_id"].split("/")[0] for index in unit}) == 1
    assert dataset[0]["image_id"].startswith("0/") and dataset[images]["file_name"].startswith("1/")


def test_the_stage_is_chosen_by_name_not_by_the_data_folder(
    tiny_world, tiny_teacher_dir, tmp_path, capsys
) -> None:
    """A folder holding a world.json no longer turns `phase2` into `phase2-world`: the plan's Phase 2
    builds the seed student, which a tiny Phase 1 checkpoint does not fit."""
    from sam3spec.models.build import build_student

    tiny = override(PHASE1_WORLD, {"resolution": 64}).student_config()
    save_pretrained(build_student(tiny), tmp_path / "phase1" / "final")
    args = [
        "train",
        "stage",
        "--stage",
        "phase2",
        "--data",
        str(tiny_world),
        "--out",
        str(tmp_path / "phase2"),
    ]
    assert main([*args, "--teacher", str(tiny_teacher_dir), "--debug", "--quiet", "--no-tensorboard"]) == 2
    captured = capsys.readouterr()
    assert "stage phase2: student efficientsam3-repvit_m2_3-mobileclip_s1 at 504 px" in captured.out
    assert "--schedule world" in captured.err  # a hint, not a switch
    error = captured.err.strip().splitlines()[-1]
    assert (
        "does not fit the student of stage 'phase2'" in error
        and "unexpected" in error
        and "--allow-partial" in error
    )


def test_an_init_for_another_student_needs_allow_partial(tmp_path) -> None:
    from sam3spec.distill import runtime
    from sam3spec.distill.tasks import ImageTask, Setup
    from sam3spec.models.build import build_student

    stage = plan_stage("phase2")
    other = override(stage.student_config(), {"detr.num_queries": 8})
    init = save_pretrained(build_student(other), tmp_path / "other")

    def setup(allow_partial: bool, out: Path) -> Setup:
        options = RunOptions(tmp_path, out, init=init, allow_partial=allow_partial)
        out.mkdir()
        return Setup(
            stage, options, runtime.Processes(), torch.device("cpu"), runtime.Precision(None, False), "k"
        )

    with pytest.raises(
        CheckpointError,
        match=r"0 unexpected, 2 shape-mismatched, 0 missing key\(s\) \(first: detr_decoder.query_embed",
    ):
        ImageTask.build_student(setup(False, tmp_path / "strict"))
    student = ImageTask.build_student(setup(True, tmp_path / "partial"))
    report = json.loads((tmp_path / "partial" / "init_report.json").read_text())
    assert report["allow_partial"] and report["mismatched"] and student.config.detr.num_queries == 16


def test_label_stages_refuse_sa1b_before_training(plain_layouts, tmp_path) -> None:
    with pytest.raises(TrainingDataError, match="SA-1B"):
        stage_dataset(plan_stage("stage3"), RunOptions(plain_layouts.sa1b, tmp_path))


def test_a_plan_stage_without_teacher_warns_that_it_distils_the_world_teacher(
    plain_layouts, tiny_teacher_dir, tmp_path, capsys, monkeypatch
) -> None:
    import sam3spec.distill.trainer as trainer

    monkeypatch.setattr(trainer, "distill", lambda stage, options: {"steps": 0, "images_per_second": 0.0})
    args = ["train", "stage", "--stage", "phase1", "--data", str(plain_layouts.sa1b), "--out", str(tmp_path)]
    assert main(args) == 0
    assert (
        "warning: no --teacher: phase1 distils the shipped concept-world teacher" in capsys.readouterr().err
    )
    assert main([*args, "--teacher", str(tiny_teacher_dir)]) == 0
    assert "warning" not in capsys.readouterr().err
    stage3 = [
        "train",
        "stage",
        "--stage",
        "stage3",
        "--data",
        str(plain_layouts.saco),
        "--out",
        str(tmp_path),
        "--init",
        str(tmp_path),  # not read: distill is replaced above
    ]
    assert main(stage3) == 0  # trained on labels: no teacher to name
    assert "warning" not in capsys.readouterr().err
