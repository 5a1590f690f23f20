"""The teacher cache: contents, determinism, resume, and a SIGKILL in the middle of a run."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from sam3spec.teacher.cache import CacheOptions, TeacherCache, build_cache, list_items

OPTIONS = CacheOptions(shard_size=2, levels=(0, 2), boxes_per_image=1, points_per_image=1, limit=3)


def cache_files(directory: Path) -> dict[str, bytes]:
    """Every file of a finished cache except ``cache.json`` (which records the data path)."""
    return {
        str(path.relative_to(directory)): path.read_bytes()
        for path in sorted(directory.rglob("*"))
        if path.is_file() and path.name != "cache.json"
    }


@pytest.fixture(scope="module")
def reference(tiny_teacher, tiny_world, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("cache") / "reference"
    build_cache(tiny_teacher, tiny_world, out, OPTIONS, progress=False)
    return out


def test_items_are_the_train_split(tiny_world) -> None:
    items = list_items(tiny_world, None)
    assert [item.kind for item in items] == ["image"] * 8 + ["video"] * 2  # the eval split is left out
    assert all(item.phrases for item in items[:8])
    assert [item.key for item in list_items(tiny_world, 3)] == [i.key for i in items[:3]] + [
        i.key for i in items[8:10]
    ]


def test_contents(reference: Path, tiny_teacher) -> None:
    cache = TeacherCache(reference)
    assert len(cache) == 5  # limit 3: three images, the two train videos
    image = cache.keys()[0]
    tensors, description = cache[image], cache.describe(image)
    kinds = [prompt["type"] for prompt in description["prompts"]]
    assert kinds.count("box") == 1 and kinds.count("point") == 1 and kinds.count("text") >= 1
    assert tensors["fpn.0"].dtype == torch.float16 and tensors["fpn.0"].shape == (32, 16, 16)
    assert tensors["fpn.2"].shape == (32, 4, 4)
    text = kinds.index("text")
    assert tensors[f"prompt{text}.pred_masks"].shape == (8, 16, 16)
    assert tensors[f"prompt{text}.pred_boxes"].shape == (8, 4)
    video = [key for key in cache.keys() if key.startswith("video:")][0]
    assert cache[video]["fpn.3"].shape == (len(cache.describe(video)["frames"]), 32, 2, 2)


def test_cached_outputs_are_the_teachers(reference: Path, tiny_teacher, tiny_world) -> None:
    from sam3spec.data.files import read_image

    cache = TeacherCache(reference)
    key = cache.keys()[0]
    prompt = cache.describe(key)["prompts"][0]
    image = torch.from_numpy(read_image(tiny_world / "sa1b" / "train" / f"{key.split(':')[1]}.jpg").copy())
    outputs = tiny_teacher.predict(
        tiny_teacher.encode_image(tiny_teacher.preprocess(image.permute(2, 0, 1)[None])), text=prompt["text"]
    )
    assert torch.allclose(cache[key]["prompt0.pred_logits"], outputs.pred_logits[0])


def test_rerun_skips_and_is_identical(reference: Path, tiny_teacher, tiny_world, tmp_path: Path) -> None:
    out = tmp_path / "again"
    first = build_cache(tiny_teacher, tiny_world, out, OPTIONS, progress=False)
    second = build_cache(tiny_teacher, tiny_world, out, OPTIONS, progress=False)
    assert first["computed"] == 3 and second == {**first, "computed": 0, "skipped": 3}
    assert cache_files(out) == cache_files(reference)


def test_other_options_are_refused(reference: Path, tiny_teacher, tiny_world) -> None:
    with pytest.raises(ValueError, match="other options"):
        build_cache(tiny_teacher, tiny_world, reference, CacheOptions(shard_size=3), progress=False)


def test_a_recalibrated_teacher_is_refused(reference: Path, tiny_teacher, tiny_world) -> None:
    """The teacher's score offset is part of what a cache holds: resuming with another one
    (``calibrate-world --write`` in between) would mix two operating points."""
    tiny_teacher.score_offset = 1.0
    try:
        with pytest.raises(ValueError, match="other options"):
            build_cache(tiny_teacher, tiny_world, reference, OPTIONS, progress=False)
    finally:
        tiny_teacher.score_offset = 0.0


def test_torn_shard_is_recomputed(reference: Path, tiny_teacher, tiny_world, tmp_path: Path) -> None:
    out = tmp_path / "torn"
    build_cache(tiny_teacher, tiny_world, out, OPTIONS, progress=False)
    (out / "shards" / "shard_00001.json").unlink()  # as if killed between the shard and its sidecar
    (out / "shards" / "shard_00002.safetensors.tmp").write_bytes(b"partial")  # killed mid-write
    counts = build_cache(tiny_teacher, tiny_world, out, OPTIONS, progress=False)
    assert counts["computed"] == 1
    assert cache_files(out) == cache_files(reference)


def test_rank_sharding_covers_everything(reference: Path, tiny_teacher, tiny_world, tmp_path: Path) -> None:
    out = tmp_path / "ranks"
    build_cache(tiny_teacher, tiny_world, out, OPTIONS, rank=1, world_size=2, progress=False)
    assert sorted(p.name for p in (out / "shards").glob("*.json")) == ["shard_00001.json"]
    assert not (out / "index.json").exists()
    build_cache(tiny_teacher, tiny_world, out, OPTIONS, rank=0, world_size=2, progress=False)
    assert cache_files(out) == cache_files(reference)
