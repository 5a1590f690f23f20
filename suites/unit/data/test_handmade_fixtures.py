"""Loaders read files written here field by field from the published formats (docs/PLAN.md 11,
the SA-V README, the SA-Co Gold README), independently of the generator
and of sam3spec's own writers: only numpy, Pillow, pycocotools and PyAV are used to write them."""

from __future__ import annotations

import json

import av
import numpy as np
import pytest
import torch
from PIL import Image
from pycocotools import mask as mask_utils

from sam3spec.data import SA1BDataset, SACoDataset, SAVDataset
from sam3spec.data.saco import gold_triples
from sam3spec.data.verify import verify

H, W = 30, 40


def coco_rle(mask: np.ndarray) -> dict:
    encoded = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {
        "size": [int(encoded["size"][0]), int(encoded["size"][1])],
        "counts": encoded["counts"].decode("ascii"),
    }


def two_masks() -> np.ndarray:
    masks = np.zeros((2, H, W), dtype=bool)
    masks[0, 3:10, 4:15] = True
    masks[1, 15:28, 20:38] = True
    return masks


def write_image(path, seed=0) -> None:
    pixels = np.random.default_rng(seed).integers(0, 256, (H, W, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path, format="JPEG", quality=90)


@pytest.fixture
def sa1b_dir(tmp_path):
    masks = two_masks()
    write_image(tmp_path / "sa_223750.jpg")
    record = {
        "image": {"image_id": 223750, "width": W, "height": H, "file_name": "sa_223750.jpg"},
        "annotations": [
            {
                "bbox": [4, 3, 11, 7],
                "area": 77,
                "segmentation": coco_rle(masks[0]),
                "predicted_iou": 0.97,
                "point_coords": [[9.5, 6.25]],
                "crop_box": [0, 0, W, H],
                "id": 1850012,
                "stability_score": 0.95,
            },
            {
                "bbox": [20, 15, 18, 13],
                "area": 234,
                "segmentation": coco_rle(masks[1]),
                "predicted_iou": 0.91,
                "point_coords": [[30.0, 20.0]],
                "crop_box": [0, 0, W, H],
                "id": 1850013,
                "stability_score": 0.93,
            },
        ],
    }
    (tmp_path / "sa_223750.json").write_text(json.dumps(record))
    return tmp_path


def test_sa1b_handmade(sa1b_dir):
    dataset = SA1BDataset(sa1b_dir)
    assert len(dataset) == 1
    sample = dataset[0]
    assert sample["image"].shape == (3, H, W) and sample["image"].dtype == torch.uint8
    np.testing.assert_array_equal(sample["masks"].numpy(), two_masks())
    expected_boxes = torch.tensor([[4 / W, 3 / H, 15 / W, 10 / H], [20 / W, 15 / H, 38 / W, 28 / H]])
    torch.testing.assert_close(sample["boxes_xyxy"], expected_boxes)
    torch.testing.assert_close(sample["point_coords_xy"][0], torch.tensor([9.5 / W, 6.25 / H]))
    assert sample["image_id"] == "sa_223750" and sample["phrase"] is None and sample["positive"]
    assert not dataset.faults.problems


def saco_file(annotator_box_shift: int = 0) -> dict:
    masks = two_masks()
    images = [
        {
            "id": 10000000,
            "file_name": "pics/a.jpg",
            "text_input": "chili",
            "width": W,
            "height": H,
            "queried_category": "0",
            "is_instance_exhaustive": 1,
            "is_pixel_exhaustive": 1,
        },
        {
            "id": 10000001,
            "file_name": "pics/a.jpg",
            "text_input": "the fish ball",
            "width": W,
            "height": H,
            "queried_category": "2001",
            "is_instance_exhaustive": 1,
            "is_pixel_exhaustive": 0,
        },
    ]
    mask = masks[1].copy()
    if annotator_box_shift:
        mask[15:28, 20 : 20 + annotator_box_shift] = False  # annotator b drew a narrower mask
    annotations = []
    for number, m in enumerate([masks[0], mask], start=1):
        rows, cols = np.nonzero(m)
        x, y, w, h = cols.min(), rows.min(), cols.max() - cols.min() + 1, rows.max() - rows.min() + 1
        annotations.append(
            {
                "id": number,
                "image_id": 10000000,
                "source": "manual",
                "area": float(m.sum()) / (H * W),
                "bbox": [x / W, y / H, w / W, h / H],
                "segmentation": coco_rle(m),
                "category_id": 1,
                "iscrowd": 0,
            }
        )
    return {
        "info": {},
        "images": images,
        "annotations": annotations,
        "categories": [{"id": 1, "name": "object"}],
    }


@pytest.fixture
def saco_dir(tmp_path):
    (tmp_path / "images" / "pics").mkdir(parents=True)
    write_image(tmp_path / "images" / "pics" / "a.jpg", seed=1)
    annotations = tmp_path / "annotations"
    annotations.mkdir()
    for annotator, shift in zip("abc", (0, 3, 0), strict=True):
        (annotations / f"gold_fg_food_merged_{annotator}_release_test.json").write_text(
            json.dumps(saco_file(shift))
        )
    (annotations / "silver_fathomnet_merged_test.json").write_text(json.dumps(saco_file()))
    return tmp_path


def test_saco_gold_triple_and_silver_handmade(saco_dir):
    triples = gold_triples(saco_dir / "annotations")
    assert list(triples) == ["fg_food"]
    gold_a = SACoDataset.gold(saco_dir / "annotations", "fg_food", saco_dir / "images")
    gold_b = SACoDataset(triples["fg_food"], saco_dir / "images", annotator=1)
    assert len(gold_a) == len(gold_b) == 2
    positive, negative = gold_a[0], gold_a[1]
    assert positive["phrase"] == "chili" and positive["positive"] and positive["masks"].shape == (2, H, W)
    np.testing.assert_array_equal(positive["masks"].numpy(), two_masks())
    assert positive["is_instance_exhaustive"] and not negative["is_pixel_exhaustive"]
    assert (
        negative["phrase"] == "the fish ball"
        and not negative["positive"]
        and negative["masks"].shape == (0, H, W)
    )
    assert gold_b[0]["masks"][1].sum() == two_masks()[1].sum() - 13 * 3  # annotator b's own masks
    silver = SACoDataset(
        [saco_dir / "annotations" / "silver_fathomnet_merged_test.json"], saco_dir / "images"
    )
    assert len(silver) == 2 and silver[0]["image_id"] == "10000000"
    assert not (gold_a.faults.problems or gold_b.faults.problems or silver.faults.problems)
    without_negatives = SACoDataset.gold(
        saco_dir / "annotations", "fg_food", saco_dir / "images", include_negatives=False
    )
    assert len(without_negatives) == 1
    report = verify(saco_dir, image_root=saco_dir / "images")
    assert report.ok, report.format()
    assert report.totals()["phrases"] == 4  # 2 pairs in the Gold group + 2 in Silver


def write_mp4(path, frames: np.ndarray) -> None:
    with av.open(str(path), "w", format="mp4") as container:
        stream = container.add_stream("mpeg4", rate=24)
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def moving_masks(frames: int) -> np.ndarray:
    """Object 0 moves right one pixel per frame; object 1 appears at frame 8."""
    masks = np.zeros((frames, 2, H, W), dtype=bool)
    for t in range(frames):
        masks[t, 0, 5:12, 2 + t : 10 + t] = True
        if t >= 8:
            masks[t, 1, 18:26, 25:33] = True
    return masks


def test_sav_mp4_and_manual_json_handmade(tmp_path):
    frames = 20
    pixels = np.full((frames, H, W, 3), 90, dtype=np.uint8)
    write_mp4(tmp_path / "sav_000001.mp4", pixels)
    masks = moving_masks(frames)
    annotated = masks[::4]
    record = {
        "video_id": "sav_000001",
        "video_duration": frames / 24,
        "video_frame_count": float(frames),
        "video_height": float(H),
        "video_width": float(W),
        "video_resolution": float(H * W),
        "video_environment": "Indoor",
        "video_split": "train",
        "masklet": [[coco_rle(m) for m in frame] for frame in annotated],
        "masklet_id": [0, 1],
        "masklet_size_rel": [0.05, 0.05],
        "masklet_size_abs": [56.0, 64.0],
        "masklet_size_bucket": ["medium", "medium"],
        "masklet_visibility_changes": [0, 0],
        "masklet_first_appeared_frame": [0, 8],
        "masklet_frame_count": [5, 5],
        "masklet_edited_frame_count": [5, 5],
        "masklet_type": ["manual", "manual"],
        "masklet_num": 2,
    }
    (tmp_path / "sav_000001_manual.json").write_text(json.dumps(record))
    dataset = SAVDataset(tmp_path, context_frames=2)
    clip = dataset[0]
    indices = clip["frame_indices"].tolist()
    assert len(indices) == 3 and indices == sorted(indices) and all(i % 4 == 0 for i in indices)
    assert clip["frames"].shape == (3, 3, H, W)
    np.testing.assert_array_equal(clip["masks"].numpy(), masks[indices])
    assert clip["visible"][:, 1].tolist() == [i >= 8 for i in indices]
    assert clip["video_id"] == "sav_000001" and not dataset.faults.problems
    report = verify(tmp_path)
    assert report.ok and report.totals()["masklets"] == 2 and report.totals()["annotated_frames"] == 5


def test_sav_val_png_layout_handmade(tmp_path):
    frames, masks = 13, moving_masks(13)
    (tmp_path / "sav_val.txt").write_text("sav_000009\n")
    for t in range(frames):
        folder = tmp_path / "JPEGImages_24fps" / "sav_000009"
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.full((H, W, 3), 120, np.uint8)).save(folder / f"{t:05d}.jpg")
    for n in range(2):
        folder = tmp_path / "Annotations_6fps" / "sav_000009" / f"{n:03d}"
        folder.mkdir(parents=True)
        for t in range(0, frames, 4):
            if n == 1 and t < 8:
                continue  # an object not yet annotated has no PNG
            Image.fromarray(masks[t, n].astype(np.uint8) * 255).save(folder / f"{t:05d}.png")
    dataset = SAVDataset(tmp_path, context_frames=3)
    clip = dataset[0]
    assert clip["frame_indices"].tolist() == [0, 4, 8, 12]
    np.testing.assert_array_equal(clip["masks"].numpy(), masks[[0, 4, 8, 12]])
    report = verify(tmp_path)
    assert report.ok, report.format()
    assert report.layouts[0].kind == "sav-frames" and report.totals()["videos"] == 1
