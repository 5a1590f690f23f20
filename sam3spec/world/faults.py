"""Plant known faults in a generated concept world (for the fault-counting tests and gate).

:func:`plant_faults` plants ten faults, one or two of each kind the loaders must survive, in
distinct files, and returns the problems ``verify`` must report: exactly these, no more.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

from sam3spec.data import rle
from sam3spec.data.faults import (
    EMPTY_VIDEO,
    MALFORMED_RLE,
    MISSING_JSON,
    SIZE_MISMATCH,
    TRUNCATED_IMAGE,
    UNREADABLE_VIDEO,
    Problem,
)
from sam3spec.data.files import write_json
from sam3spec.data.sa1b import find_pairs
from sam3spec.data.sav import find_videos
from sam3spec.data.video_io import write_empty_mp4
from sam3spec.world.generate import WorldPaths


def _pick_annotations(saco: dict, avoid_files: set[str], count: int) -> list[dict]:
    """Annotations of ``count`` distinct pairs on images not in ``avoid_files``."""
    file_of = {entry["id"]: entry["file_name"] for entry in saco["images"]}
    chosen, pairs = [], set()
    for annotation in saco["annotations"]:
        pair = annotation["image_id"]
        if file_of[pair] not in avoid_files and pair not in pairs:
            chosen.append(annotation)
            pairs.add(pair)
        if len(chosen) == count:
            return chosen
    raise ValueError("the world is too small to plant SA-Co faults (need more train images)")


def plant_faults(root: str | Path) -> list[Problem]:
    """Plant ten faults in the train trees of the world at ``root`` (modifies files in place).

    1. SA-1B: a JPEG cut in half (``truncated_image``);
    2. SA-1B: an annotation with a corrupt RLE string (``malformed_rle``);
    3. SA-1B: a JSON deleted (``missing_json``);
    4. SA-1B: a JPEG replaced by one 2 px narrower than its annotations (``size_mismatch``);
    5. SA-Co train: a corrupt RLE (``malformed_rle``);
    6. SA-Co train: a valid RLE of the wrong size (``size_mismatch``);
    7. SA-Co eval: Gold annotator file ``b`` deleted (``missing_json``);
    8. SA-V: an MP4 with zero frames (``empty_video``);
    9. SA-V: an MP4 replaced by garbage (``unreadable_video``);
    10. SA-V: a ``_manual.json`` deleted (``missing_json``).

    Needs at least 6 train images and 3 train videos.

    Returns:
        The ten problems (path, kind, where) a correct ``verify`` reports.
    """
    paths = WorldPaths.of(root)
    pairs = find_pairs(paths.sa1b_train)
    videos = find_videos(paths.sav_train)
    if len(pairs) < 6 or len(videos) < 3:
        raise ValueError("plant_faults needs >= 6 train images and >= 3 train videos")
    planted: list[Problem] = []

    jpeg, _ = pairs[0]
    data = jpeg.read_bytes()
    jpeg.write_bytes(data[: len(data) // 2])
    planted.append(Problem(str(jpeg), TRUNCATED_IMAGE))

    _, record_path = pairs[1]
    record = json.loads(record_path.read_text())
    annotation = record["annotations"][0]
    annotation["segmentation"]["counts"] = "!" + annotation["segmentation"]["counts"]
    write_json(record_path, record)
    planted.append(Problem(str(record_path), MALFORMED_RLE, f"annotation {annotation['id']}"))

    _, record_path = pairs[2]
    record_path.unlink()
    planted.append(Problem(str(record_path), MISSING_JSON))

    jpeg, _ = pairs[3]
    with Image.open(jpeg) as image:
        narrower = image.resize((image.width - 2, image.height))
    narrower.save(jpeg, format="JPEG", quality=95)
    planted.append(Problem(str(jpeg), SIZE_MISMATCH))

    saco = json.loads(paths.saco_train.read_text())
    corrupt, resized = _pick_annotations(saco, {pairs[0][0].name, pairs[3][0].name}, 2)
    corrupt["segmentation"]["counts"] = corrupt["segmentation"]["counts"][:-3]
    height, width = resized["segmentation"]["size"]
    wrong = np.zeros((height + 4, width), dtype=bool)
    wrong[2:6, 2:6] = True
    resized["segmentation"] = rle.encode(wrong)
    write_json(paths.saco_train, saco)
    where = "annotation {}"
    planted.append(Problem(str(paths.saco_train), MALFORMED_RLE, where.format(corrupt["id"])))
    planted.append(Problem(str(paths.saco_train), SIZE_MISMATCH, where.format(resized["id"])))

    paths.saco_eval[1].unlink()
    planted.append(Problem(str(paths.saco_eval[1]), MISSING_JSON))

    write_empty_mp4(videos[0].mp4)
    planted.append(Problem(str(videos[0].mp4), EMPTY_VIDEO))
    videos[1].mp4.write_bytes(b"this is not an mp4 file" * 8)
    planted.append(Problem(str(videos[1].mp4), UNREADABLE_VIDEO))
    videos[2].manual.unlink()
    planted.append(Problem(str(videos[2].manual), MISSING_JSON))
    return planted
