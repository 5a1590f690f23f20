"""Reading a generated world's manifest (``world.json``): what the real formats do not carry.

SA-V has no phrases and SA-Co no query kinds; the manifest records both, so the world can give
the product what it takes as arguments: per-object phrases of the videos, and the kind of every
(image, phrase) pair (positive, negative, hard negative) for the breakdowns of evaluation.
"""

from __future__ import annotations

import json
from pathlib import Path


def read_manifest(world: str | Path) -> dict:
    """The ``world.json`` of a generated world.

    Raises:
        FileNotFoundError: ``world`` holds no manifest (not a generated world).
    """
    path = Path(world) / "world.json"
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} not found: generate a concept world first (sam3spec data generate --out {world})"
        )
    return json.loads(path.read_text())


def object_phrases(world: str | Path) -> dict[str, list[str]]:
    """``{video_id: [phrase of object 0, ...]}`` ("small red circle": size, colour, shape)."""
    return {
        entry["video_id"]: [f"{o['size']} {o['colour']} {o['shape']}" for o in entry["objects"]]
        for entry in read_manifest(world)["videos"]
    }


def pair_kinds(world: str | Path) -> dict[int, str]:
    """``{SA-Co pair id: "positive" | "negative" | "hard_negative"}`` of every generated query;
    empty when ``world`` has no manifest."""
    if not (Path(world) / "world.json").is_file():
        return {}
    return {
        int(query["pair_id"]): query["kind"]
        for image in read_manifest(world).get("images", [])
        for query in image.get("queries", [])
    }
