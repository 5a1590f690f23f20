"""Data gate (``-m data``): the concept world's generation speed, format conformance, exact round
trip, fault counting, determinism, held-out split and what its videos contain."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO

from sam3spec.data import SA1BDataset, SACoDataset, SAVDataset, make_loader
from sam3spec.data.files import read_binary_mask
from sam3spec.data.loader import good_batches
from sam3spec.data.sav import ANNOTATION_STRIDE, find_videos
from sam3spec.data.verify import verify
from sam3spec.world import WorldConfig, generate_world
from sam3spec.world.faults import plant_faults
from sam3spec.world.generate import image_item, splits, video_item
from sam3spec.world.phrases import HARD_NEGATIVE, NEGATIVE, Phrase, is_held_out

pytestmark = pytest.mark.data
WORLD = {"data": "concept-world"}
SMALL = WorldConfig(image_size=64, video_min_frames=16, video_max_frames=20)


def _context(world) -> dict:
    return {**WORLD, "images": world.num_images, "videos": world.num_videos, "size": world.config.image_size}


@pytest.mark.spec("data.generate_seconds")
def test_generation_speed(gate, concept_world):
    gate.check("data.generate_seconds", round(concept_world.summary.seconds, 2), **_context(concept_world))


@pytest.mark.spec("data.format_problems")
def test_format_conformance(gate, concept_world):
    report = verify(concept_world.paths.root)
    kinds = {layout.kind for layout in report.layouts}
    assert kinds == {"sa1b", "saco", "saco-gold", "sav-mp4", "sav-frames"}, kinds
    gate.check("data.format_problems", len(report.problems), **_context(concept_world))


@pytest.mark.spec("data.roundtrip_mismatched_pixels")
def test_round_trip(gate, concept_world):
    paths, seed, config = concept_world.paths, concept_world.seed, concept_world.config
    image_splits, video_splits = splits(concept_world.num_images, concept_world.num_videos, config)
    sa1b = {"train": SA1BDataset(paths.sa1b_train), "eval": SA1BDataset(paths.sa1b_eval)}
    saco = {
        "train": SACoDataset([paths.saco_train], paths.sa1b_train),
        "eval": SACoDataset(paths.saco_eval, paths.sa1b_eval),
    }
    position, pair, wrong = {"train": 0, "eval": 0}, {"train": 0, "eval": 0}, 0
    for index, split in enumerate(image_splits):
        scene, queries = image_item(seed, index, split, config)
        wrong += int((sa1b[split][position[split]]["masks"].numpy() != scene.masks).sum())
        position[split] += 1
        for query in queries:
            loaded = saco[split][pair[split]]["masks"].numpy()
            wrong += int((loaded != scene.masks[list(query.instances)]).sum())
            pair[split] += 1
    assert position == {s: len(d) for s, d in sa1b.items()} and pair == {s: len(d) for s, d in saco.items()}
    for index, split in enumerate(video_splits):  # every annotated frame of every video
        video = video_item(seed, index, config)
        name = f"sav_{index + 1:06d}"
        if split == "train":
            record = json.loads((paths.sav_train / f"{name}_manual.json").read_text())
            loaded = np.stack(
                [
                    [mask_utils.decode({**m, "counts": m["counts"].encode()}) for m in f]
                    for f in record["masklet"]
                ]
            )
        else:
            folder = paths.sav_val / "Annotations_6fps" / name
            loaded = np.stack(
                [
                    [read_binary_mask(p) for p in sorted(folder.glob(f"*/{t:05d}.png"))]
                    for t in range(0, len(video.masks), ANNOTATION_STRIDE)
                ]
            )
        wrong += int((loaded.astype(bool) != video.masks[::ANNOTATION_STRIDE]).sum())
    assert len(SAVDataset(paths.sav_train)) + len(SAVDataset(paths.sav_val)) == concept_world.num_videos
    gate.check("data.roundtrip_mismatched_pixels", wrong, **_context(concept_world))


@pytest.mark.spec("data.saco_coco_api_fraction")
def test_saco_with_coco_api(gate, concept_world):
    files = [concept_world.paths.saco_train, *concept_world.paths.saco_eval]
    good = 0
    for path in files:
        coco = COCO(str(path))
        ok = all(
            coco.annToMask(a).shape == (coco.imgs[a["image_id"]]["height"], coco.imgs[a["image_id"]]["width"])
            for a in coco.loadAnns(coco.getAnnIds())
        )
        good += ok and len(coco.imgs) == len(json.loads(path.read_text())["images"])
    gate.check("data.saco_coco_api_fraction", good / len(files), **_context(concept_world))


@pytest.mark.spec(
    "data.sav_masklet_decode_fraction", "data.video_reentry_fraction", "data.video_occlusion_fraction"
)
def test_sav_masklets_and_video_content(gate, concept_world):
    decoded = total = 0
    reentry = []
    for path in sorted(concept_world.paths.sav_train.glob("sav_*_manual.json")):
        record = json.loads(path.read_text())
        size = (int(record["video_height"]), int(record["video_width"]))
        present = []
        for frame in record["masklet"]:
            row = []
            for entry in frame:
                total += 1
                mask = mask_utils.decode({"size": entry["size"], "counts": entry["counts"].encode()})
                decoded += mask.shape == size
                row.append(bool(mask.any()))
            present.append(row)
        tracks = np.array(present).T
        reentry.append(
            any(t.any() and not t[np.argmax(t) : len(t) - np.argmax(t[::-1])].all() for t in tracks)
        )
    occlusion = []
    for index in range(concept_world.num_videos):
        video = video_item(concept_world.seed, index, concept_world.config)
        seen = (
            video.masks[::ANNOTATION_STRIDE]
            .reshape(*video.amodal_area[::ANNOTATION_STRIDE].shape, -1)
            .sum(-1)
        )
        amodal = video.amodal_area[::ANNOTATION_STRIDE]
        occlusion.append(bool(np.any((amodal > 0) & (seen < 0.9 * amodal))))
    gate.check("data.sav_masklet_decode_fraction", decoded / total, **_context(concept_world))
    gate.check(
        "data.video_reentry_fraction",
        float(np.mean(reentry)),
        **_context(concept_world),
        videos_checked=len(reentry),
    )
    gate.check("data.video_occlusion_fraction", float(np.mean(occlusion)), **_context(concept_world))


@pytest.mark.spec(
    "data.heldout_train_leaks",
    "data.heldout_eval_images_fraction",
    "data.negative_phrase_fraction",
    "data.hard_negative_fraction",
    "data.phrase_granularities",
    "data.shape_vocabulary",
    "data.colour_vocabulary",
)
def test_phrases_and_split(gate, concept_world):
    config = concept_world.config
    manifest = json.loads(concept_world.paths.manifest.read_text())
    held_out = [tuple(pair) for pair in config.held_out_pairs]
    parse = lambda text: Phrase.parse(text, config.shapes, config.colours, config.sizes)  # noqa: E731
    train = json.loads(concept_world.paths.saco_train.read_text())
    leaks = sum(is_held_out(parse(entry["text_input"]), held_out) for entry in train["images"])
    asked = []
    for image in (i for i in manifest["images"] if i["split"] == "eval"):
        asked.append(
            any(is_held_out(parse(q["text"]), held_out) and q["instances"] for q in image["queries"])
        )
    queries = [q for image in manifest["images"] for q in image["queries"]]
    phrases = [parse(q["text"]) for q in queries]
    granularities = {(p.size is not None, p.colour is not None, p.shape is not None) for p in phrases}
    objects = [o for image in manifest["images"] for o in image["objects"]]
    gate.check("data.heldout_train_leaks", leaks, **WORLD)
    gate.check("data.heldout_eval_images_fraction", float(np.mean(asked)), **WORLD, eval_images=len(asked))
    negatives = sum(q["kind"] in (NEGATIVE, HARD_NEGATIVE) for q in queries)
    gate.check("data.negative_phrase_fraction", round(negatives / len(queries), 4), **WORLD)
    gate.check(
        "data.hard_negative_fraction",
        round(sum(q["kind"] == HARD_NEGATIVE for q in queries) / len(queries), 4),
        **WORLD,
    )
    gate.check("data.phrase_granularities", len(granularities), **WORLD)
    gate.check("data.shape_vocabulary", len({o["shape"] for o in objects}), **WORLD)
    gate.check("data.colour_vocabulary", len({o["colour"] for o in objects}), **WORLD)


@pytest.mark.spec(
    "data.fault_detection_recall", "data.fault_detection_precision", "data.loader_wrong_samples"
)
def test_planted_faults(gate, tmp_path):
    paths = generate_world(tmp_path / "faulty", 16, 5, seed=5, config=SMALL, progress=False).paths
    expected_good = {
        "sa1b": {p.stem for p in paths.sa1b_train.glob("sa_*.json")},
        "saco": {str(e["id"]) for e in json.loads(paths.saco_train.read_text())["images"]},
        "sav": {v.video_id for v in find_videos(paths.sav_train)},
    }
    planted = plant_faults(paths.root)
    report = verify(paths.root)
    found = {p.key for p in report.problems} & {p.key for p in planted}
    gate.check("data.fault_detection_recall", len(found) / len(planted), **WORLD, planted=len(planted))
    gate.check(
        "data.fault_detection_precision",
        len(found) / max(1, len(report.problems)),
        **WORLD,
        reported=len(report.problems),
    )
    # The good samples: drop those the planted faults spoil (known from where they were planted).
    bad_files = {Path(p.path).name for p in planted}
    expected_good["sa1b"] -= {Path(n).stem for n in bad_files if n.startswith("sa_")}
    saco = json.loads(paths.saco_train.read_text())
    bad_ids = {int(p.where.split()[-1]) for p in planted if p.path == str(paths.saco_train)}
    spoiled = {a["image_id"] for a in saco["annotations"] if a["id"] in bad_ids}
    spoiled |= {e["id"] for e in saco["images"] if e["file_name"] in bad_files}
    expected_good["saco"] -= {str(i) for i in spoiled}
    expected_good["sav"] -= {
        n.split(".")[0].removesuffix("_manual") for n in bad_files if n.startswith("sav_")
    }
    wrong = 0
    datasets = {
        "sa1b": SA1BDataset(paths.sa1b_train),
        "saco": SACoDataset([paths.saco_train], paths.sa1b_train),
        "sav": SAVDataset(paths.sav_train, context_frames=2),
    }
    with pytest.warns(UserWarning):
        for name, dataset in datasets.items():
            seen = set()
            for batch in good_batches(make_loader(dataset, batch_size=4, shuffle=True)):
                seen |= set(batch.get("image_id", batch.get("video_id")))
            wrong += len(seen ^ expected_good[name])
    gate.check("data.loader_wrong_samples", wrong, **WORLD)


@pytest.mark.spec("data.same_seed_identical_fraction", "data.other_seed_different_fraction")
def test_determinism(gate, tmp_path):
    def digests(root: Path) -> dict[str, str]:
        return {
            p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in root.rglob("*")
            if p.is_file()
        }

    worlds = [
        generate_world(tmp_path / str(i), 20, 3, seed, SMALL, progress=False).paths.root
        for i, seed in enumerate((1, 1, 2))
    ]
    first, again, other = (digests(root) for root in worlds)
    same = sum(again.get(name) == digest for name, digest in first.items()) / len(first)
    media = [name for name in first if name.endswith((".jpg", ".mp4"))]
    different = sum(other.get(name) != first[name] for name in media) / len(media)
    gate.check("data.same_seed_identical_fraction", same, **WORLD, files=len(first))
    gate.check("data.other_seed_different_fraction", different, **WORLD, files=len(media))
