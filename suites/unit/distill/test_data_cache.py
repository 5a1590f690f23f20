"""Distillation data (views, order, inputs) and the teacher-target cache."""

from __future__ import annotations

import pytest
import torch

from sam3spec.data.loader import collate_samples
from sam3spec.data.prompts import PromptConfig
from sam3spec.distill.adapters import StudentGeometry
from sam3spec.distill.cache import TargetCache, build_target_cache
from sam3spec.distill.data import (
    epoch_order,
    epoch_units,
    image_groups,
    letterbox_uint8,
    rank_batches,
    share_images,
    student_inputs,
    training_dataset,
)
from sam3spec.distill.targets import TeacherTargets

MIXED = PromptConfig(text=0.4, point=0.3, box=0.3)


def test_letterbox_keeps_square_images_and_pads_others():
    square = torch.randint(0, 256, (3, 64, 64), dtype=torch.uint8)
    assert torch.equal(letterbox_uint8(square, 64), square)
    wide = torch.full((3, 32, 64), 7, dtype=torch.uint8)
    boxed = letterbox_uint8(wide, 32)
    assert boxed.shape == (3, 32, 32)
    assert (boxed[:, :16] == 7).all() and (boxed[:, 16:] == 128).all()


@pytest.mark.parametrize(("world_size", "per_image"), [(2, 1), (3, 1), (2, 3)])
def test_ranks_split_the_single_process_batches(world_size, per_image):
    groups = [list(range(start, start + size)) for start, size in ((0, 5), (5, 2), (7, 6), (13, 4), (17, 6))]
    units = epoch_units(groups, seed=0, epoch=1, per_image=per_image)
    flat = sorted(index for unit in units for index in unit)
    assert flat == list(range(23)) and units != epoch_units(groups, 0, 2, per_image)
    for unit in units:  # a unit never mixes images
        assert len(unit) <= per_image and any(set(unit) <= set(group) for group in groups)
    single = rank_batches(units, 0, 1, 2 * world_size)
    shards = [rank_batches(units, rank, world_size, 2) for rank in range(world_size)]
    assert all(len(shard) == len(shards[0]) for shard in shards)
    for step, indices in enumerate(single[: len(shards[0])]):
        assert sorted(indices) == sorted(i for shard in shards for i in shard[step])
    assert sorted(epoch_order(23, 0, 1).tolist()) == list(range(23))


def test_image_groups_and_shared_images(distill_world, tokenizer):
    dataset = training_dataset(distill_world, 64, MIXED, None, seed=0)
    groups = image_groups(dataset)
    assert sum(map(len, groups)) == len(dataset) and len(groups) == 10  # the 10 train images
    names = [dataset.dataset.entries[i]["file_name"] for i in groups[0]]
    assert len(set(names)) == 1
    batch = collate_samples([dataset[i] for i in groups[0][:2] + groups[1][:1]])
    pixels, owner = share_images(batch)
    assert pixels.shape[0] == 2 and owner.tolist() == [0, 0, 1]
    assert torch.equal(pixels[owner], batch["image"])


def test_student_inputs_mix_prompt_kinds(distill_world, tokenizer):
    dataset = training_dataset(distill_world, 64, MIXED, None, seed=3)
    batch = collate_samples([dataset[index] for index in range(12)])
    kinds = batch["prompt_type"]
    assert {"text", "point", "box"} <= set(kinds)
    inputs = student_inputs(batch, tokenizer, torch.device("cpu"))
    assert torch.equal(inputs["pixel_values"][inputs["image_index"]], batch["image"])
    for index, kind in enumerate(kinds):
        assert bool((inputs["input_ids"][index] != 0).any()) == (kind == "text")
        assert bool((inputs["point_labels"][index] >= 0).any()) == (kind == "point")
        assert bool((inputs["box_labels"][index] >= 0).any()) == (kind == "box")


def test_cached_targets_equal_online_targets(distill_world, stand_in_teacher, tmp_path):
    geometry = StudentGeometry(64)
    builder = TeacherTargets(stand_in_teacher, geometry, features=True)
    dataset = training_dataset(distill_world, 64, MIXED, stand_in_teacher.image_size, seed=0, limit=10)
    cache = build_target_cache(builder, dataset, tmp_path / "cache", draws=2, key="k", progress=False)
    for epoch in (0, 1, 2):  # epoch 2 reuses draw 0
        dataset.set_epoch(epoch % 2)
        batch = collate_samples([dataset[index] for index in (7, 2, 9)])
        online, cached = builder(batch), cache.lookup(batch, epoch)
        queries = online.logits.shape[1]  # the cache pads queries to the largest of the draw
        assert torch.equal(cached.valid[:, :queries], online.valid)
        assert not cached.valid[:, queries:].any()
        assert torch.equal(cached.has_encoder, online.has_encoder)
        assert torch.equal(cached.text_valid, online.text_valid)
        is_text = torch.tensor([kind == "text" for kind in batch["prompt_type"]])
        assert torch.equal(online.text_valid.any(1), is_text)  # only text prompts teach text
        # Float targets agree to batching rounding (the cache ran the teacher on other batches)
        # and float16 storage (masks, semantic map, features).
        for name, tolerance in (
            ("logits", 1e-4),
            ("boxes_xyxy", 1e-4),
            ("presence_logits", 1e-4),
            ("mask_probs", 2e-3),
            ("semantic_probs", 2e-3),
        ):
            value = getattr(cached, name)
            value = value[:, :queries] if name in ("logits", "boxes_xyxy", "mask_probs") else value
            assert torch.allclose(value, getattr(online, name), atol=tolerance), name
        for stored, value in zip(
            [*cached.fpn_levels, cached.encoder_memory, cached.text_features],
            [*online.fpn_levels, online.encoder_memory, online.text_features],
            strict=True,
        ):
            assert torch.allclose(stored, value, atol=2e-3 * max(1.0, float(value.abs().max())))
        detector = online.has_encoder  # text / box prompts went through the detector, points did not
        assert bool(detector.any()) and bool((~detector).any())
    assert (
        build_target_cache(builder, dataset, tmp_path / "cache", 2, "k", progress=False).draws == 2
    )  # reused


def test_cache_refuses_other_prompts(distill_world, stand_in_teacher, tmp_path):
    builder = TeacherTargets(stand_in_teacher, StudentGeometry(64), features=False)
    dataset = training_dataset(distill_world, 64, MIXED, stand_in_teacher.image_size, seed=0, limit=4)
    cache = build_target_cache(builder, dataset, tmp_path / "cache", draws=1, key="k", progress=False)
    other = training_dataset(distill_world, 64, MIXED, None, seed=1, limit=4)  # another prompt seed
    batch = collate_samples([other[index] for index in range(4)])
    with pytest.raises(ValueError, match="another prompt"):
        cache.lookup(batch, 0)
    assert isinstance(TargetCache(tmp_path / "cache"), TargetCache)
