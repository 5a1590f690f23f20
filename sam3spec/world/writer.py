"""Records of the concept world in the real dataset formats (SA-1B, SA-Co, SA-V).

Each function builds the JSON-ready record of one item exactly as the published format lays it
out (see docs/DATA.md); :mod:`sam3spec.world.generate` decides what goes where.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from scipy import ndimage

from sam3spec.data import rle
from sam3spec.data.files import write_binary_mask, write_jpeg, write_json
from sam3spec.data.video_io import encode_mp4
from sam3spec.world.config import WorldConfig
from sam3spec.world.images import Scene
from sam3spec.world.phrases import PhraseQuery
from sam3spec.world.videos import Video

SACO_CATEGORIES = [{"id": 1, "name": "object", "supercategory": "object"}]


def sa1b_name(image_id: int) -> str:
    return f"sa_{image_id:06d}"


def sav_name(video_id: int) -> str:
    return f"sav_{video_id:06d}"


def interior_point(mask: np.ndarray) -> list[float]:
    """The pixel centre farthest from the mask boundary, ``[x, y]`` (SA-1B ``point_coords``)."""
    distance = ndimage.distance_transform_edt(np.pad(mask, 1))[1:-1, 1:-1]
    row, col = np.unravel_index(int(np.argmax(distance)), mask.shape)
    return [float(col) + 0.5, float(row) + 0.5]


def sa1b_record(image_id: int, scene: Scene) -> dict[str, Any]:
    """The SA-1B JSON of one image: ``image`` + one annotation per instance."""
    height, width = scene.image.shape[:2]
    annotations = []
    for index, mask in enumerate(scene.masks):
        annotations.append(
            {
                "id": image_id * 1000 + index,
                "segmentation": rle.encode(mask),
                "area": int(mask.sum()),
                "bbox": rle.bbox_xywh(mask),
                "predicted_iou": 1.0,  # exact masks: the generator knows them
                "point_coords": [interior_point(mask)],
                "crop_box": [0.0, 0.0, float(width), float(height)],
                "stability_score": 1.0,
            }
        )
    return {
        "image": {
            "image_id": image_id,
            "width": width,
            "height": height,
            "file_name": f"{sa1b_name(image_id)}.jpg",
        },
        "annotations": annotations,
    }


def write_sa1b(directory: Path, image_id: int, scene: Scene, config: WorldConfig) -> None:
    """``sa_<id>.jpg`` + ``sa_<id>.json``."""
    write_jpeg(directory / f"{sa1b_name(image_id)}.jpg", scene.image, config.jpeg_quality)
    write_json(directory / f"{sa1b_name(image_id)}.json", sa1b_record(image_id, scene))


def saco_records(
    image_id: int, scene: Scene, queries: list[PhraseQuery], first_annotation_id: int
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """SA-Co ``images[]`` (one per image-phrase pair) and ``annotations[]`` of one image.

    Pair ids are ``image_id * 100 + q``. Boxes and areas are normalised by the image size, as in
    SA-Co; a negative phrase simply has no annotation.
    """
    height, width = scene.image.shape[:2]
    images, annotations = [], []
    for q, query in enumerate(queries):
        pair_id = image_id * 100 + q
        images.append(
            {
                "id": pair_id,
                "file_name": f"{sa1b_name(image_id)}.jpg",
                "text_input": query.phrase.text,
                "width": width,
                "height": height,
                "queried_category": "0",
                "is_instance_exhaustive": 1,
                "is_pixel_exhaustive": 1,
            }
        )
        for instance in query.instances:
            mask = scene.masks[instance]
            x, y, w, h = rle.bbox_xywh(mask)
            annotations.append(
                {
                    "id": first_annotation_id + len(annotations),
                    "image_id": pair_id,
                    "source": "manual",
                    "area": float(mask.sum()) / (height * width),
                    "bbox": [x / width, y / height, w / width, h / height],
                    "segmentation": rle.encode(mask),
                    "category_id": 1,
                    "iscrowd": 0,
                }
            )
    return images, annotations


def saco_file(
    images: list[dict[str, Any]], annotations: list[dict[str, Any]], description: str
) -> dict[str, Any]:
    """A complete SA-Co (COCO-like) annotation file."""
    return {
        "info": {"description": description, "version": "1.0"},
        "images": images,
        "annotations": annotations,
        "categories": SACO_CATEGORIES,
    }


def sav_record(video_id: int, video: Video, config: WorldConfig, split: str) -> dict[str, Any]:
    """The SA-V ``_manual.json`` of one video: ``masklet[annotated frame][object]`` = RLE."""
    frames, objects, height, width = video.masks.shape[0], video.masks.shape[1], *video.masks.shape[2:]
    annotated = video.masks[:: config.annotation_stride]  # [K, N, H, W]
    areas = annotated.reshape(*annotated.shape[:2], -1).sum(-1)  # [K, N]
    present = areas > 0
    sizes_abs, first, changes = [], [], []
    for n in range(objects):
        shown = areas[present[:, n], n]
        sizes_abs.append(float(shown.mean()) if shown.size else 0.0)
        start = int(np.argmax(present[:, n])) if present[:, n].any() else 0
        first.append(start * config.annotation_stride)
        changes.append(int(np.count_nonzero(np.diff(present[start:, n].astype(np.int8)))))
    buckets = ["small" if s < 32**2 else "medium" if s < 96**2 else "large" for s in sizes_abs]
    return {
        "video_id": sav_name(video_id),
        "video_duration": frames / config.fps,
        "video_frame_count": float(frames),
        "video_height": float(height),
        "video_width": float(width),
        "video_resolution": float(height * width),
        "video_environment": "Indoor",
        "video_split": split,
        "masklet": [[rle.encode(mask) for mask in frame] for frame in annotated],
        "masklet_id": list(range(objects)),
        "masklet_size_rel": [s / (height * width) for s in sizes_abs],
        "masklet_size_abs": sizes_abs,
        "masklet_size_bucket": buckets,
        "masklet_visibility_changes": changes,
        "masklet_first_appeared_frame": first,
        "masklet_frame_count": [len(annotated)] * objects,
        "masklet_edited_frame_count": [len(annotated)] * objects,
        "masklet_type": ["manual"] * objects,
        "masklet_num": objects,
    }


def write_sav_mp4(directory: Path, video_id: int, video: Video, config: WorldConfig) -> None:
    """SA-V train layout: ``sav_<id>.mp4`` + ``sav_<id>_manual.json``."""
    encode_mp4(directory / f"{sav_name(video_id)}.mp4", video.frames, fps=config.fps, crf=config.crf)
    write_json(directory / f"{sav_name(video_id)}_manual.json", sav_record(video_id, video, config, "train"))


def write_sav_frames(directory: Path, video_id: int, video: Video, config: WorldConfig) -> None:
    """SA-V val layout: ``JPEGImages_24fps/<video>/<frame:05d>.jpg`` and
    ``Annotations_6fps/<video>/<obj:03d>/<frame:05d>.png`` (every annotated frame, empty or not)."""
    name = sav_name(video_id)
    frame_dir = directory / "JPEGImages_24fps" / name
    frame_dir.mkdir(parents=True, exist_ok=True)
    for t, frame in enumerate(video.frames):
        write_jpeg(frame_dir / f"{t:05d}.jpg", frame, config.jpeg_quality)
    for n in range(video.masks.shape[1]):
        object_dir = directory / "Annotations_6fps" / name / f"{n:03d}"
        object_dir.mkdir(parents=True, exist_ok=True)
        for t in range(0, video.masks.shape[0], config.annotation_stride):
            write_binary_mask(object_dir / f"{t:05d}.png", video.masks[t, n])
