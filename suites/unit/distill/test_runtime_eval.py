"""Runtime choices, the student behind the teacher protocol, the CLI helpers, a tiny main job."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
import torch

from sam3spec.cli import main
from sam3spec.cli.common import parse_overrides
from sam3spec.cli.train import default_init, resolve_stage
from sam3spec.config import override
from sam3spec.distill import runtime
from sam3spec.eval.student_view import StudentTeacherView
from sam3spec.teacher.protocol import Teacher
from sam3spec.world import WorldConfig
from sam3spec.world.evaluate import ratios
from sam3spec.world.pipeline import PipelineConfig, run_pipeline
from sam3spec.world.stages import PHASE1_WORLD, PHASE2_WORLD, STAGE3_WORLD


def test_precision_choices():
    cpu, cuda, mps = torch.device("cpu"), torch.device("cuda"), torch.device("mps")
    assert runtime.resolve_precision("auto", cpu).dtype is None
    assert runtime.resolve_precision("auto", mps) == runtime.Precision(torch.float16, True)
    assert runtime.resolve_precision("bf16", cpu) == runtime.Precision(torch.bfloat16, False)
    assert runtime.resolve_precision("off", cuda).dtype is None
    assert runtime.resolve_device("cpu") == cpu


def test_all_reduce_batch_norm_is_batch_norm_in_one_process():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 1), torch.nn.BatchNorm2d(4))
    reference = [value.clone() for value in model.state_dict().values()]
    converted = runtime.synchronise_batch_norm(model, torch.device("cpu"))
    assert isinstance(converted[1], runtime.AllReduceBatchNorm)
    assert all(torch.equal(a, b) for a, b in zip(reference, converted.state_dict().values(), strict=True))
    plain = torch.nn.BatchNorm2d(4)
    plain.load_state_dict(converted[1].state_dict())
    x = torch.randn(2, 4, 5, 5)
    assert torch.allclose(converted[1](x), plain(x))


def test_ema_moves_towards_the_weights():
    model = torch.nn.Linear(2, 1)
    average = runtime.WeightAverage(model, decay=0.5)
    with torch.no_grad():
        model.weight.add_(2.0)
    before = average.shadow["weight"].clone()
    average.update(model)
    assert torch.allclose(average.shadow["weight"], before + 1.0)


def test_student_view_follows_the_teacher_protocol(tiny_student):
    view = StudentTeacherView(tiny_student)
    assert isinstance(view, Teacher)
    images = torch.randint(0, 256, (2, 3, 80, 80), dtype=torch.uint8)
    embeddings = view.encode_image(view.preprocess(images))
    outputs = view.predict(
        embeddings.select(torch.tensor([0, 0, 1])), text=["red circle", "star", "blue shape"]
    )
    assert outputs.pred_masks.shape[:2] == (3, tiny_student.config.detr.num_queries)
    with torch.no_grad():
        direct = tiny_student(view.preprocess(images[:1]), input_ids=view.tokenizer(["star"]))
    assert torch.allclose(outputs.pred_logits[1], direct.pred_logits[0], atol=1e-5)


def test_ratios():
    metrics = {
        "teacher": dict.fromkeys(("mIoU", "presence_f1", "cgF1", "pmF1", "IL_MCC"), 0.5),
        "student": dict.fromkeys(("mIoU", "presence_f1", "cgF1", "pmF1", "IL_MCC"), 0.4),
    }
    metrics["teacher"]["IL_MCC"] = 0.0
    assert ratios(metrics)["mIoU"] == pytest.approx(0.8) and ratios(metrics)["IL_MCC"] is None


def test_stage_resolution_by_name_and_overrides(distill_world, tmp_path):
    assert resolve_stage("phase1", "world", []).name == "phase1-world"
    assert resolve_stage("phase1", "plan", []).name == "phase1"
    assert resolve_stage("phase1-world", "plan", []).name == "phase1-world"
    assert resolve_stage("phase2", "plan", ["epochs=9", "losses.presence=0.5"]).epochs == 9
    with pytest.raises(ValueError, match="key=value"):
        resolve_stage("phase2", "plan", ["epochs"])
    with pytest.raises(FileNotFoundError, match="run that stage first"):
        default_init(resolve_stage("phase2", "world", []), tmp_path / "phase2")
    assert (
        main(
            [
                "train",
                "stage",
                "--stage",
                "phase7",
                "--data",
                str(distill_world),
                "--out",
                str(tmp_path / "x"),
            ]
        )
        == 2
    )
    assert main(["train", "pipeline", "--out", str(tmp_path / "p"), "--set", "phase1.no_such=1"]) == 2
    assert not (tmp_path / "p").exists()  # refused before any work
    longer = override(PipelineConfig(), parse_overrides(["stage3=null", "phase1.epochs=16"]))
    assert longer.stage3 is None and longer.phase1.epochs == 16
    with pytest.raises(TypeError, match="phase1"):  # only optional sections can be turned off
        override(PipelineConfig(), {"phase1": None})


def test_tiny_main_job_end_to_end(distill_world, stand_in_teacher_dir, tmp_path, capsys):
    tiny = {
        "resolution": 64,
        "batch_size": 4,
        "epochs": 1,
        "prompt_draws": 1,
        "warmup_steps": 2,
        "log_every": 1,
    }
    config = PipelineConfig(
        images=12,
        world=WorldConfig(image_size=64),
        teacher=str(stand_in_teacher_dir),
        phase1=override(PHASE1_WORLD, tiny),
        phase2=override(PHASE2_WORLD, tiny),
        stage3=override(STAGE3_WORLD, tiny),
    )
    out = tmp_path / "main"
    record = run_pipeline(out, config, progress=False)
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics) == {"teacher", "student", "stage3", "by_kind", "diagnosis"}
    assert set(metrics["diagnosis"]) == {"teacher", "student", "stage3"}
    assert metrics["diagnosis"]["stage3"]["ceiling"]["mask_size"] == [32, 32]  # 64 px, stride 4, x2
    assert "pairs" in metrics["diagnosis"]["teacher"]["hard_negative"]  # kinds from the manifest
    assert set(metrics["by_kind"]) == {"student", "stage3"}
    assert "IL_MCC" in metrics["by_kind"]["stage3"]["positive+hard_negative"]
    assert {"mIoU", "presence_f1", "cgF1"} <= set(metrics["student"]) and set(metrics["teacher"]) == set(
        metrics["student"]
    )
    assert "| mIoU |" in (out / "report.md").read_text()
    assert set(record["seconds"]) == {"world", "phase1", "phase2", "stage3", "evaluate"}
    assert "Stage 3" in (out / "report.md").read_text()
    assert "| pmF1@0.95 |" in (out / "report.md").read_text()
    assert json.loads((out / "stage3" / "init_report.json").read_text())["summary"] == "all weights loaded"
    assert json.loads((out / "phase2" / "init_report.json").read_text())["summary"] == "all weights loaded"
    assert run_pipeline(out, config, progress=False) == record  # same configuration: reused
    changed = replace(config, eval_limit=1)
    assert run_pipeline(out, changed, progress=False)["key"] != record["key"]
    assert (
        main(
            [
                "eval",
                "compare",
                "--student",
                str(out / "phase2" / "final"),
                "--world",
                str(out / "world"),
                "--teacher",
                str(stand_in_teacher_dir),
                "--limit",
                "1",
                "--json",
                str(tmp_path / "compare" / "metrics.json"),
            ]
        )
        == 0
    )
    printed = capsys.readouterr().out
    assert "| presence_f1 |" in printed
    assert "| quantity | teacher | student | student / teacher |" in printed
    assert "| FP rate, hard-negative pairs" in printed
    sizes = next(line for line in printed.splitlines() if line.startswith("| mask output size |"))
    assert sizes.split("|")[3].strip() == "32x32"  # the student column (64 px, stride 4, x2)
    compared = json.loads((tmp_path / "compare" / "metrics.json").read_text())
    assert set(compared["diagnosis"]["held-out split"]) == {"teacher", "student"}
    assert (tmp_path / "compare" / "student" / "predictions_segm.json").is_file()
