"""Generate a concept world: three trees in the SA-1B, SA-Co and SA-V layouts, plus a manifest.

Layout under ``out``::

    world.json                                   manifest: config, seed, splits, objects, phrases
    sa1b/train/sa_000001.jpg, sa_000001.json     SA-1B layout, train images
    sa1b/eval/sa_000161.jpg, ...                 SA-1B layout, eval images
    saco/train/silver_world_merged_train.json    SA-Co (one annotator), images in sa1b/train
    saco/eval/gold_world_merged_{a,b,c}_release_test.json   SA-Co Gold triple, images in sa1b/eval
    sav/train/sav_000001.mp4, sav_000001_manual.json        SA-V train layout
    sav/val/sav_val.txt, JPEGImages_24fps/, Annotations_6fps/  SA-V val layout (eval split)

Every item has its own random stream ``default_rng([seed, kind, index])``, so an item does not
depend on how many others were drawn, and the same seed gives byte-identical files. The three
Gold annotator files are identical copies: the generator's masks are exact, so there is no
annotator disagreement to simulate.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from sam3spec.atomic import atomic_directory
from sam3spec.data.files import write_json
from sam3spec.world import writer
from sam3spec.world.config import WorldConfig, split_counts
from sam3spec.world.images import Scene, generate_scene
from sam3spec.world.phrases import (
    HARD_NEGATIVE,
    NEGATIVE,
    POSITIVE,
    Phrase,
    PhraseQuery,
    is_held_out,
    sample_queries,
)
from sam3spec.world.videos import Video, generate_video

FORMAT = "sam3spec-concept-world"
VERSION = 1
_IMAGE_STREAM, _VIDEO_STREAM = 1, 2
_TREES = ("sa1b", "saco", "sav", "world.json")


@dataclass(frozen=True)
class WorldPaths:
    """Where each tree of a concept world lives."""

    root: Path
    manifest: Path
    sa1b_train: Path
    sa1b_eval: Path
    saco_train: Path
    saco_eval: tuple[Path, Path, Path]
    sav_train: Path
    sav_val: Path

    @classmethod
    def of(cls, root: str | Path) -> WorldPaths:
        root = Path(root)
        return cls(
            root=root,
            manifest=root / "world.json",
            sa1b_train=root / "sa1b" / "train",
            sa1b_eval=root / "sa1b" / "eval",
            saco_train=root / "saco" / "train" / "silver_world_merged_train.json",
            saco_eval=tuple(
                root / "saco" / "eval" / f"gold_world_merged_{a}_release_test.json" for a in "abc"
            ),
            sav_train=root / "sav" / "train",
            sav_val=root / "sav" / "val",
        )


@dataclass
class WorldSummary:
    """What :func:`generate_world` wrote, and how long it took (not stored: files stay reproducible)."""

    paths: WorldPaths
    counts: dict[str, int]
    seconds: float


def _check_target(out: Path, overwrite: bool) -> None:
    """Refuse a non-empty ``out`` unless ``overwrite`` and it holds a world (nothing is deleted here)."""
    if out.exists() and any(out.iterdir()):
        if not overwrite:
            raise FileExistsError(
                f"{out} is not empty (pass overwrite=True / --overwrite to replace a world)"
            )
        if not (out / "world.json").exists():
            raise FileExistsError(
                f"{out} is not a concept world (no world.json); refusing to delete anything"
            )


def _make_trees(paths: WorldPaths) -> None:
    for directory in (paths.sa1b_train, paths.sa1b_eval, paths.saco_train.parent, paths.saco_eval[0].parent):
        directory.mkdir(parents=True, exist_ok=True)
    for directory in (paths.sav_train, paths.sav_val):
        directory.mkdir(parents=True, exist_ok=True)


def image_item(seed: int, index: int, split: str, config: WorldConfig) -> tuple[Scene, list[PhraseQuery]]:
    """Image ``index`` of the world (0-based) and its phrase queries: a pure function.

    Args:
        seed: the world's seed.
        index: image index (image id = index + 1).
        split: ``"train"`` (no held-out phrase) or ``"eval"`` (one held-out pair planted and asked).
        config: world configuration.
    """
    return scene_and_queries(np.random.default_rng([seed, _IMAGE_STREAM, index]), split, config)


def scene_and_queries(
    rng: np.random.Generator, split: str, config: WorldConfig
) -> tuple[Scene, list[PhraseQuery]]:
    """One scene drawn from ``rng`` and its phrase queries under ``split``'s rule (``"train"``: no
    held-out phrase; ``"eval"``: a held-out pair is planted and asked first). Also what the
    concept-world teacher trains on (:mod:`sam3spec.world.teacher.data`)."""
    held_out = [tuple(pair) for pair in config.held_out_pairs]
    forced = held_out[rng.integers(len(held_out))] if split == "eval" and held_out else None
    scene = generate_scene(rng, config, forced=forced)
    queries = sample_queries(
        scene.objects,
        rng,
        shapes=config.shapes,
        colours=config.colours,
        sizes=config.sizes,
        positives=config.positives_per_image,
        hard_negatives=config.hard_negatives_per_image,
        negatives=config.negatives_per_image,
        allowed=(lambda phrase: not is_held_out(phrase, held_out))
        if split == "train"
        else (lambda phrase: True),
        first=None if forced is None else Phrase(shape=forced[1], colour=forced[0]),
    )
    return scene, queries


def video_item(seed: int, index: int, config: WorldConfig) -> Video:
    """Video ``index`` of the world (0-based; video id = index + 1): a pure function."""
    return generate_video(np.random.default_rng([seed, _VIDEO_STREAM, index]), config)


def splits(num_images: int, num_videos: int, config: WorldConfig) -> tuple[list[str], list[str]]:
    """The split of each image (``train`` / ``eval``) and each video (``train`` / ``val``)."""
    train_images, eval_images = split_counts(num_images, config.eval_fraction)
    train_videos, val_videos = split_counts(num_videos, config.eval_fraction)
    return ["train"] * train_images + ["eval"] * eval_images, ["train"] * train_videos + ["val"] * val_videos


def generate_world(
    out: str | Path,
    num_images: int,
    num_videos: int,
    seed: int,
    config: WorldConfig | None = None,
    progress: bool = True,
    overwrite: bool = False,
) -> WorldSummary:
    """Write a concept world.

    Args:
        out: output folder (created; must be empty unless ``overwrite`` and it holds a world).
        num_images: images in all (train + eval).
        num_videos: videos in all (train + val).
        seed: the world's seed.
        config: what to draw (default :class:`WorldConfig`).
        progress: show a tqdm bar (only for more than a few items).
        overwrite: replace the trees of an existing world in ``out``.

    Returns:
        Paths, counts and the generation time in seconds.
    """
    if num_images < 0 or num_videos < 0:
        raise ValueError("num_images and num_videos must be >= 0")
    start = time.perf_counter()
    out = Path(out)
    _check_target(out, overwrite)
    # Written into a temporary sibling and renamed at the end: an interrupted run leaves no
    # half-written world (or the previous one); files of ``out`` that are not world trees stay.
    with atomic_directory(out, keep=lambda name: name not in _TREES) as staging:
        counts = _write_world(staging, num_images, num_videos, seed, config or WorldConfig(), progress)
    return WorldSummary(paths=WorldPaths.of(out), counts=counts, seconds=time.perf_counter() - start)


def _write_world(
    out: Path, num_images: int, num_videos: int, seed: int, config: WorldConfig, progress: bool
) -> dict[str, int]:
    """Write every tree of a world into the empty folder ``out``; returns the counts."""
    paths = WorldPaths.of(out)
    _make_trees(paths)
    image_splits, video_splits = splits(num_images, num_videos, config)
    saco: dict[str, tuple[list, list]] = {"train": ([], []), "eval": ([], [])}
    manifest_images: list[dict[str, Any]] = []
    manifest_videos: list[dict[str, Any]] = []
    counts = {
        "images": 0,
        "instances": 0,
        POSITIVE: 0,
        HARD_NEGATIVE: 0,
        NEGATIVE: 0,
        "videos": 0,
        "masklets": 0,
    }
    total = num_images + num_videos
    with tqdm(total=total, desc="concept world", disable=not progress or total < 8) as bar:
        for index, split in enumerate(image_splits):
            image_id = index + 1
            scene, queries = image_item(seed, index, split, config)
            writer.write_sa1b(
                paths.sa1b_train if split == "train" else paths.sa1b_eval, image_id, scene, config
            )
            images, annotations = saco[split]
            new_images, new_annotations = writer.saco_records(image_id, scene, queries, len(annotations) + 1)
            images.extend(new_images)
            annotations.extend(new_annotations)
            manifest_images.append(
                {
                    "image_id": image_id,
                    "file_name": f"{writer.sa1b_name(image_id)}.jpg",
                    "split": split,
                    "objects": [obj.attributes() for obj in scene.objects],
                    "queries": [
                        {
                            "pair_id": pair["id"],
                            "text": q.phrase.text,
                            "kind": q.kind,
                            "instances": list(q.instances),
                        }
                        for pair, q in zip(new_images, queries, strict=True)
                    ],
                }
            )
            counts["images"] += 1
            counts["instances"] += len(scene.objects)
            for query in queries:
                counts[query.kind] += 1
            bar.update()
        write_json(paths.saco_train, writer.saco_file(*saco["train"], "sam3spec concept world, train split"))
        for path in paths.saco_eval:
            write_json(path, writer.saco_file(*saco["eval"], "sam3spec concept world, held-out eval split"))
        val_names = []
        for index, split in enumerate(video_splits):
            video_id = index + 1
            video = video_item(seed, index, config)
            if split == "train":
                writer.write_sav_mp4(paths.sav_train, video_id, video, config)
            else:
                writer.write_sav_frames(paths.sav_val, video_id, video, config)
                val_names.append(writer.sav_name(video_id))
            manifest_videos.append(
                {
                    "video_id": writer.sav_name(video_id),
                    "split": split,
                    "frames": int(video.frames.shape[0]),
                    "objects": [obj.attributes() for obj in video.objects],
                }
            )
            counts["videos"] += 1
            counts["masklets"] += len(video.objects)
            bar.update()
    (paths.sav_val / "sav_val.txt").write_text("".join(f"{name}\n" for name in val_names), encoding="utf-8")
    write_json(paths.manifest, _manifest(paths, config, seed, counts, manifest_images, manifest_videos))
    return counts


def _manifest(
    paths: WorldPaths,
    config: WorldConfig,
    seed: int,
    counts: dict[str, int],
    images: list[dict[str, Any]],
    videos: list[dict[str, Any]],
) -> dict[str, Any]:
    def relative(path: Path) -> str:
        return path.relative_to(paths.root).as_posix()

    return {
        "format": FORMAT,
        "version": VERSION,
        "seed": seed,
        "config": dataclasses.asdict(config),
        "counts": counts,
        "trees": {
            "sa1b": {"train": relative(paths.sa1b_train), "eval": relative(paths.sa1b_eval)},
            "saco": {
                "train": {"files": [relative(paths.saco_train)], "image_root": relative(paths.sa1b_train)},
                "eval": {
                    "files": [relative(p) for p in paths.saco_eval],
                    "image_root": relative(paths.sa1b_eval),
                },
            },
            "sav": {"train": relative(paths.sav_train), "val": relative(paths.sav_val)},
        },
        "split_rule": "a phrase naming a (colour, shape) pair in held_out_pairs is never asked in train; "
        "each eval image plants one such pair and asks for it",
        "images": images,
        "videos": videos,
    }
