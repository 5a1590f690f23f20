"""The generated trees: formats, exact round trip through the loaders, determinism, splits."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO

from sam3spec.data import SA1BDataset, SACoDataset, SAVDataset
from sam3spec.data.sav import ANNOTATION_STRIDE
from sam3spec.data.verify import verify
from sam3spec.world import WorldConfig, generate_world
from sam3spec.world.generate import image_item, splits, video_item
from sam3spec.world.phrases import Phrase, is_held_out
from sam3spec.world.shapes import COLOURS, SHAPES, SIZES

TINY = WorldConfig(image_size=48, video_min_frames=12, video_max_frames=16)


def _digests(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_layout_and_counts(small_world):
    paths = small_world.paths
    assert len(list(paths.sa1b_train.glob("sa_*.jpg"))) == 11 == len(list(paths.sa1b_train.glob("sa_*.json")))
    assert len(list(paths.sa1b_eval.glob("sa_*.jpg"))) == 3
    assert paths.saco_train.exists() and all(p.exists() for p in paths.saco_eval)
    assert (
        len(list(paths.sav_train.glob("sav_*.mp4")))
        == 3
        == len(list(paths.sav_train.glob("sav_*_manual.json")))
    )
    assert (paths.sav_val / "sav_val.txt").read_text().split() == ["sav_000004"]
    pngs = sorted((paths.sav_val / "Annotations_6fps" / "sav_000004").glob("*/*.png"))
    assert pngs and all(p.parent.name.isdigit() and len(p.parent.name) == 3 for p in pngs)
    assert all(int(p.stem) % ANNOTATION_STRIDE == 0 and len(p.stem) == 5 for p in pngs)
    report = verify(paths.root)
    assert report.ok, report.format()
    manifest = json.loads(paths.manifest.read_text())
    assert manifest["counts"]["images"] == 14 and manifest["counts"]["videos"] == 4


def test_sa1b_json_fields(small_world):
    record = json.loads(next(iter(sorted(small_world.paths.sa1b_train.glob("sa_*.json")))).read_text())
    assert set(record) == {"image", "annotations"}
    assert set(record["image"]) == {"image_id", "width", "height", "file_name"}
    for annotation in record["annotations"]:
        assert {"segmentation", "bbox", "area", "point_coords", "predicted_iou", "stability_score"} <= set(
            annotation
        )
        mask = mask_utils.decode(
            {**annotation["segmentation"], "counts": annotation["segmentation"]["counts"].encode()}
        )
        assert annotation["area"] == mask.sum()
        x, y = annotation["point_coords"][0]
        assert mask[int(y), int(x)]  # the point lies inside its mask


def test_masks_round_trip_exactly(small_world):
    """Masks written -> loaded equal the generator's masks, pixel for pixel (all three trees)."""
    seed, config = small_world.seed, small_world.config
    image_splits, video_splits = splits(small_world.num_images, small_world.num_videos, config)
    sa1b = {
        s: SA1BDataset(small_world.paths.sa1b_train if s == "train" else small_world.paths.sa1b_eval)
        for s in ("train", "eval")
    }
    saco = {
        "train": SACoDataset([small_world.paths.saco_train], small_world.paths.sa1b_train),
        "eval": SACoDataset(small_world.paths.saco_eval, small_world.paths.sa1b_eval, annotator=2),
    }
    positions = {s: 0 for s in sa1b}
    pair_positions = {s: 0 for s in saco}
    for index, split in enumerate(image_splits):
        scene, queries = image_item(seed, index, split, config)
        sample = sa1b[split][positions[split]]
        positions[split] += 1
        assert sample["image_id"] == f"sa_{index + 1:06d}"
        np.testing.assert_array_equal(sample["masks"].numpy(), scene.masks)
        for query in queries:
            pair = saco[split][pair_positions[split]]
            pair_positions[split] += 1
            assert pair["phrase"] == query.phrase.text and pair["positive"] == bool(query.instances)
            np.testing.assert_array_equal(pair["masks"].numpy(), scene.masks[list(query.instances)])
    assert positions == {s: len(d) for s, d in sa1b.items()}
    assert pair_positions == {s: len(d) for s, d in saco.items()}
    train = SAVDataset(small_world.paths.sav_train, context_frames=3)
    val = SAVDataset(small_world.paths.sav_val, context_frames=3)
    for index, split in enumerate(video_splits):
        video = video_item(seed, index, config)
        dataset, position = (train, index) if split == "train" else (val, index - len(train))
        clip = dataset[position]
        frames = clip["frame_indices"].numpy()
        np.testing.assert_array_equal(clip["masks"].numpy(), video.masks[frames])
        assert np.all(frames % ANNOTATION_STRIDE == 0) and len(frames) == 4


def test_saco_files_load_with_pycocotools_unchanged(small_world, capsys):
    for path in (small_world.paths.saco_train, *small_world.paths.saco_eval):
        coco = COCO(str(path))
        assert len(coco.getImgIds()) == len(json.loads(path.read_text())["images"])
        for annotation in coco.loadAnns(coco.getAnnIds()):
            entry = coco.imgs[annotation["image_id"]]
            mask = coco.annToMask(annotation)
            assert mask.shape == (entry["height"], entry["width"]) and mask.any()
            assert annotation["category_id"] == 1 and annotation["iscrowd"] == 0
            assert all(0 <= v <= 1 for v in annotation["bbox"])
        negatives = [i for i in coco.getImgIds() if not coco.getAnnIds(imgIds=[i])]
        assert negatives  # phrases with no instance


def test_sav_masklets_decode_with_pycocotools(small_world):
    for path in sorted(small_world.paths.sav_train.glob("*_manual.json")):
        record = json.loads(path.read_text())
        frames = int(record["video_frame_count"])
        assert len(record["masklet"]) == -(-frames // ANNOTATION_STRIDE)
        assert record["masklet_num"] == len(record["masklet_id"]) == len(record["masklet"][0])
        for frame in record["masklet"]:
            for entry in frame:
                mask = mask_utils.decode({"size": entry["size"], "counts": entry["counts"].encode()})
                assert mask.shape == (record["video_height"], record["video_width"])
        assert sum(record["masklet_visibility_changes"]) > 0


def test_held_out_pairs_never_in_train_phrases_and_always_in_eval(small_world):
    held_out = [tuple(p) for p in small_world.config.held_out_pairs]
    parse = lambda text: Phrase.parse(text, SHAPES, tuple(COLOURS), SIZES)  # noqa: E731
    train = json.loads(small_world.paths.saco_train.read_text())
    assert not any(is_held_out(parse(e["text_input"]), held_out) for e in train["images"])
    evaluation = json.loads(small_world.paths.saco_eval[0].read_text())
    by_file: dict[str, list[str]] = {}
    for entry in evaluation["images"]:
        by_file.setdefault(entry["file_name"], []).append(entry["text_input"])
    positives = {a["image_id"] for a in evaluation["annotations"]}
    for texts in by_file.values():  # every eval image asks a held-out phrase ...
        assert any(is_held_out(parse(t), held_out) for t in texts)
    # ... and it is answered with instances.
    assert any(
        is_held_out(parse(e["text_input"]), held_out) and e["id"] in positives for e in evaluation["images"]
    )


def test_same_seed_same_bytes_different_seed_different_world(tmp_path):
    first = generate_world(tmp_path / "a", 6, 2, seed=3, config=TINY, progress=False).paths.root
    second = generate_world(tmp_path / "b", 6, 2, seed=3, config=TINY, progress=False).paths.root
    other = generate_world(tmp_path / "c", 6, 2, seed=4, config=TINY, progress=False).paths.root
    a, b, c = _digests(first), _digests(second), _digests(other)
    assert len(a) > 30 and a == b  # every file byte-identical, MP4s included
    media = [name for name in a if name.endswith((".jpg", ".mp4"))]
    assert all(a[name] != c.get(name) for name in media)


def test_generate_refuses_to_clobber(tmp_path):
    (tmp_path / "keep.txt").write_text("mine")
    with pytest.raises(FileExistsError):
        generate_world(tmp_path, 2, 0, seed=0, config=TINY, progress=False)
    world = tmp_path / "world"
    generate_world(world, 2, 0, seed=0, config=TINY, progress=False)
    (world / "notes.txt").write_text("keep me")
    generate_world(world, 3, 0, seed=1, config=TINY, progress=False, overwrite=True)
    assert (world / "notes.txt").read_text() == "keep me"
    assert len(list((world / "sa1b").rglob("*.jpg"))) == 3
