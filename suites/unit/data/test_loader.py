"""Batches of transformed, prompted samples from all three loaders."""

from __future__ import annotations

import torch

from sam3spec.data import (
    PHASE2_PROMPTS,
    PromptSampler,
    ResizeNormalize,
    SA1BDataset,
    SACoDataset,
    SAVDataset,
    TransformConfig,
    make_loader,
)
from sam3spec.data.loader import good_batches

TRANSFORM = ResizeNormalize(TransformConfig(size=64))


def test_image_batches(small_world):
    paths = small_world.paths
    prompts = PromptSampler(PHASE2_PROMPTS)
    for dataset in (
        SA1BDataset(paths.sa1b_train, transform=TRANSFORM, prompts=prompts),
        SACoDataset([paths.saco_train], paths.sa1b_train, transform=TRANSFORM, prompts=prompts),
    ):
        batches = list(good_batches(make_loader(dataset, batch_size=4, shuffle=True)))
        assert sum(b["batch_size"] for b in batches) == len(dataset)
        batch = batches[0]
        assert (
            batch["image"].shape == (batch["batch_size"], 3, 64, 64) and batch["image"].dtype == torch.float32
        )
        assert all(m.shape[1:] == (64, 64) and m.dtype == torch.bool for m in batch["masks"])
        assert set(batch["prompt_type"]) <= {"text", "point", "box"}
        assert all(
            t.shape[0] == b.shape[0]
            for t, b in zip(batch["target_masks"], batch["target_boxes_xyxy"], strict=True)
        )
        assert not dataset.faults.problems


def test_clip_batches_and_epochs(small_world):
    dataset = SAVDataset(small_world.paths.sav_train, context_frames=4, transform=TRANSFORM, seed=1)
    batch = next(good_batches(make_loader(dataset, batch_size=3)))
    assert batch["frames"].shape == (3, 5, 3, 64, 64)
    first = [clip["frame_indices"].tolist() for clip in (dataset[i] for i in range(3))]
    assert first == [dataset[i]["frame_indices"].tolist() for i in range(3)]  # deterministic per epoch
    dataset.set_epoch(1)
    assert first != [dataset[i]["frame_indices"].tolist() for i in range(3)]  # new clips next epoch
