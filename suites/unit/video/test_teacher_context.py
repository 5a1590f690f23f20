"""The video stage with context frames from a teacher cache (``context_source="teacher_cache"``).

A tiny random teacher whose level-3 maps are as wide (64) and as large (5 x 5 at 160 px) as the
tiny student's caches the video world; the stage then trains only the memory on it, and the maps
the resampler reads are the cached ones. The clear errors: no cache given, a cache for a
student-context stage, a teacher of another width, a video missing from the cache, other frames.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from sam3spec.cli import main
from sam3spec.config import TINY_PRESET, get_preset, override
from sam3spec.distill import RunOptions, distill
from sam3spec.models.build import build_student
from sam3spec.teacher.cache import CacheOptions, TeacherCache, build_cache
from sam3spec.video.data import FeatureBank
from sam3spec.video.stage import VIDEO
from sam3spec.video.teacher_context import TeacherContextError, attach_teacher_context, to_student_grid
from sam3spec.world.manifest import object_phrases
from sam3spec.world.stages import VIDEO_WORLD

# Level 3 = half the 10 x 10 patch grid = 5 x 5, 64 wide: the tiny student's context at 160 px.
OPTIONS = CacheOptions(levels=(3,), boxes_per_image=0, points_per_image=0, mask_queries=1, limit=2)


def make_cache(tmp_path_factory, arch, name: str, world: Path) -> Path:
    from sam3spec.teacher.hf_models import build_models
    from sam3spec.teacher.loading import load_teacher, save_teacher

    detector, tracker = build_models(arch, seed=0)
    folder = save_teacher(tmp_path_factory.mktemp(name) / "teacher", detector, tracker, {"kind": "test"})
    out = folder.parent / "cache"
    build_cache(load_teacher(folder, dtype=torch.float32), world, out, OPTIONS, progress=False)
    return out


@pytest.fixture(scope="module")
def cache_64(video_world, tmp_path_factory) -> Path:
    from sam3spec.teacher.architecture import TeacherArchitecture

    arch = TeacherArchitecture(
        image_size=160,
        patch_size=16,
        vision_hidden=32,
        vision_layers=1,
        vision_heads=2,
        hidden=64,
        heads=2,
        text_hidden=32,
        text_layers=1,
        text_heads=2,
        detr_encoder_layers=1,
        detr_decoder_layers=1,
        num_queries=8,
        ffn_ratio=2,
    )
    return make_cache(tmp_path_factory, arch, "teacher64", video_world)


@pytest.fixture(scope="module")
def bank(video_world):
    torch.manual_seed(0)
    student = build_student(override(get_preset(TINY_PRESET), {"image_size": 160})).eval()
    return FeatureBank(student, video_world, object_phrases(video_world), limit=2)


def test_bank_context_is_the_cached_teacher_maps(bank, cache_64) -> None:
    info = attach_teacher_context(bank, cache_64, 3, 64, "video-world")
    assert info["teacher_width"] == 64 and info["student_grid"] == [5, 5] and not info["resized"]
    cache = TeacherCache(cache_64)
    for record in bank.records:
        cached = cache[f"video:{record.video_id}"]["fpn.3"]
        assert cache.describe(f"video:{record.video_id}")["frames"] == record.frames
        assert torch.equal(record.context, cached)
        student_maps = record.levels[3]
        assert not torch.equal(record.context, student_maps)
    batch = bank.batch([(0, 3, 0)], 8, 3)  # query frame 3: slots 5, 6, 7 hold frames 0, 1, 2
    assert batch["valid"][0].tolist() == [False] * 5 + [True] * 3
    assert torch.equal(batch["context"][0, 5:], bank.records[0].context[:3].float())


def test_stage_trains_only_the_memory_on_cached_context(video_world, cache_64, tmp_path, monkeypatch) -> None:
    """Through the CLI (``video-world --context teacher_cache``): every valid context slot the
    resampler reads is one of the cached teacher maps, and the frozen rest is unchanged."""
    import sam3spec.video.task as task

    seen, original = [], task.resample_valid
    monkeypatch.setattr(
        task,
        "resample_valid",
        lambda resampler, context, valid: (
            seen.append(context[valid].detach().clone()) or original(resampler, context, valid)
        ),
    )
    out = tmp_path / "run"
    code = main(
        [
            "train",
            "video",
            "--stage",
            "video-world",
            "--data",
            str(video_world),
            "--out",
            str(out),
            "--context",
            "teacher_cache",
            "--teacher-cache",
            str(cache_64),
            "--max-steps",
            "2",
            "--limit",
            "2",
            "--threads",
            "1",
        ]
    )
    assert code == 0
    summary = json.loads((out / "summary.json").read_text())
    assert (
        summary["steps"] == 2 and summary["frozen_unchanged"] and summary["context_source"] == "teacher_cache"
    )
    assert summary["teacher_cache"] == str(cache_64) and summary["teacher_width"] == 64
    cache = TeacherCache(cache_64)
    cached = torch.cat([cache[key]["fpn.3"].float() for key in cache.keys() if key.startswith("video:")])
    slots = torch.cat(seen)  # [S, C, h, w]
    assert len(seen) == 2 and len(slots) > 0
    matches = (slots[:, None] == cached[None]).flatten(2).all(2)  # [S, cached frames]
    assert bool(matches.any(1).all())


def test_missing_or_unwanted_cache_flag(video_world, tmp_path, cache_64, capsys) -> None:
    with pytest.raises(TeacherContextError, match=r"stage 'video'.*--teacher-cache"):
        distill(
            VIDEO,
            RunOptions(video_world, tmp_path / "a", progress=False, phrases=object_phrases(video_world)),
        )
    with pytest.raises(TeacherContextError, match=r"stage 'video-world'.*--context teacher_cache"):
        distill(
            VIDEO_WORLD,
            RunOptions(
                video_world,
                tmp_path / "b",
                progress=False,
                phrases=object_phrases(video_world),
                teacher_cache=cache_64,
            ),
        )
    assert (
        main(
            [
                "train",
                "video",
                "--stage",
                "video-world",
                "--data",
                str(video_world),
                "--out",
                str(tmp_path / "c"),
                "--context",
                "teacher_cache",
            ]
        )
        == 2
    )
    assert "--teacher-cache" in capsys.readouterr().err
    assert not (tmp_path / "a").exists()  # refused before any work


def test_teacher_of_another_width_is_refused(bank, video_world, tmp_path_factory) -> None:
    from sam3spec.teacher.architecture import TINY  # level 3 is 32 wide

    cache = make_cache(tmp_path_factory, TINY, "teacher32", video_world)
    with pytest.raises(TeacherContextError, match=r"32 wide.*context width is 64"):
        attach_teacher_context(bank, cache, 3, 64, "video-world")


def tampered(cache: Path, tmp_path: Path, change) -> Path:
    copy = tmp_path / "cache"
    shutil.copytree(cache, copy)
    index = json.loads((copy / "index.json").read_text())
    change(index["items"])
    (copy / "index.json").write_text(json.dumps(index))
    return copy


def test_missing_video_and_other_frames_are_named(bank, cache_64, tmp_path) -> None:
    video = bank.records[1].video_id
    missing = tampered(cache_64, tmp_path / "missing", lambda items: items.pop(f"video:{video}"))
    with pytest.raises(TeacherContextError, match=rf"video {video} is not in the teacher cache {missing}"):
        attach_teacher_context(bank, missing, 3, 64, "video-world")
    shifted = tampered(
        cache_64,
        tmp_path / "shifted",
        lambda items: items[f"video:{video}"].update(
            frames=[f + 1 for f in items[f"video:{video}"]["frames"]]
        ),
    )
    with pytest.raises(
        TeacherContextError, match=rf"video {video}: the teacher cache .* holds frames \[1, 5"
    ):
        attach_teacher_context(bank, shifted, 3, 64, "video-world")
    with pytest.raises(TeacherContextError, match="video level 3, the student's memory reads level 2"):
        attach_teacher_context(bank, cache_64, 2, 64, "video-world")


def test_to_student_grid_resizes_and_letterboxes() -> None:
    maps = torch.randn(3, 4, 18, 18)
    square = to_student_grid(maps, (16, 16), (720, 720))
    assert torch.equal(square, F.interpolate(maps, size=(16, 16), mode="bilinear", antialias=True))
    assert torch.equal(to_student_grid(maps, (18, 18), (90, 90)), maps)
    wide = to_student_grid(maps, (5, 5), (64, 160))  # letterbox: the frame fills the top 2 of 5 rows
    assert wide.shape == (3, 4, 5, 5) and bool((wide[:, :, 2:] == 0).all())
    assert torch.equal(wide[:, :, :2], F.interpolate(maps, size=(2, 5), mode="bilinear", antialias=True))
