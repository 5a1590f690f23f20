"""Concept-world still images: textured backgrounds, placed objects, exact visible masks."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sam3spec.world.config import WorldConfig
from sam3spec.world.shapes import COLOURS, SIZE_RADIUS, WorldObject, rasterize

BACKGROUNDS = ("noise", "gradient", "stripes", "checker")


@dataclass
class Scene:
    """A rendered image and its instances.

    Attributes:
        image: ``[H, W, 3]`` uint8 RGB.
        masks: ``[N, H, W]`` bool visible (modal) masks, drawing order: later objects occlude
            earlier ones, as SA-1B annotates what is visible.
        objects: the N objects, same order.
    """

    image: np.ndarray
    masks: np.ndarray
    objects: list[WorldObject]


def background(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A greyish textured background (never as saturated as an object colour).

    Returns:
        ``[H, W, 3]`` float32 in 0..255.
    """
    base = rng.uniform(70, 180) + rng.uniform(-12, 12, size=3)
    rows, cols = np.mgrid[0:height, 0:width].astype(np.float32)
    kind = BACKGROUNDS[rng.integers(len(BACKGROUNDS))]
    if kind == "noise":
        texture = rng.normal(0, 12, size=(height, width, 1))
    elif kind == "gradient":
        theta = rng.uniform(0, 2 * np.pi)
        ramp = (np.cos(theta) * cols + np.sin(theta) * rows) / max(height, width)
        texture = (30 * (ramp - 0.5))[..., None] + rng.normal(0, 5, size=(height, width, 1))
    elif kind == "stripes":
        theta, period = rng.uniform(0, np.pi), rng.uniform(6, 20)
        phase = (np.cos(theta) * cols + np.sin(theta) * rows) * 2 * np.pi / period
        texture = (15 * np.sin(phase))[..., None] + rng.normal(0, 5, size=(height, width, 1))
    else:
        cell = int(rng.integers(8, 25))
        checker = ((rows // cell + cols // cell) % 2) * 2 - 1
        texture = (15 * checker)[..., None] + rng.normal(0, 5, size=(height, width, 1))
    return np.clip(base + texture, 0, 255).astype(np.float32)


def sample_object(
    rng: np.random.Generator,
    config: WorldConfig,
    side: int,
    colour: str | None = None,
    shape: str | None = None,
    inside: bool = True,
) -> WorldObject:
    """Draw attributes and a pose; ``inside`` keeps the whole object in the frame."""
    shape = shape or config.shapes[rng.integers(len(config.shapes))]
    colour = colour or config.colours[rng.integers(len(config.colours))]
    size = config.sizes[rng.integers(len(config.sizes))]
    low, high = SIZE_RADIUS[size]
    radius = max(3.0, rng.uniform(low, high) * side)
    margin = radius if inside else 0.0
    return WorldObject(
        shape=shape,
        colour=colour,
        size=size,
        x=float(rng.uniform(margin, side - margin)),
        y=float(rng.uniform(margin, side - margin)),
        radius=float(radius),
        angle=float(rng.uniform(0, 2 * np.pi)),
    )


def visible(amodal: np.ndarray) -> np.ndarray:
    """Visible masks from full (amodal) masks in drawing order.

    Args:
        amodal: ``[N, H, W]`` bool, index 0 drawn first.

    Returns:
        ``[N, H, W]`` bool: each mask minus everything drawn after it.
    """
    result = amodal.copy()
    covered = np.zeros(amodal.shape[1:], dtype=bool)
    for index in range(len(amodal) - 1, -1, -1):
        result[index] &= ~covered
        covered |= amodal[index]
    return result


def paint(
    canvas: np.ndarray, objects: list[WorldObject], masks: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """Paint objects onto a background (visible masks are disjoint, so order does not matter).

    Args:
        canvas: ``[H, W, 3]`` float32 background.
        objects: N objects.
        masks: ``[N, H, W]`` bool visible masks.
        rng: random stream for the fill texture.

    Returns:
        ``[H, W, 3]`` uint8 image.
    """
    image = canvas.copy()
    for obj, mask in zip(objects, masks, strict=True):
        count = int(mask.sum())
        if count:
            fill = np.asarray(COLOURS[obj.colour], dtype=np.float32)
            image[mask] = fill + rng.normal(0, 9, size=(count, 1)).astype(np.float32)
    return np.clip(np.rint(image), 0, 255).astype(np.uint8)


def _acceptable(amodal: np.ndarray, config: WorldConfig) -> bool:
    seen = visible(amodal)
    full = amodal.reshape(len(amodal), -1).sum(axis=1)
    kept = seen.reshape(len(seen), -1).sum(axis=1)
    return bool(np.all(kept >= np.maximum(4, config.min_visible_fraction * full)))


def generate_scene(
    rng: np.random.Generator, config: WorldConfig, forced: tuple[str, str] | None = None
) -> Scene:
    """Draw one image: 1-8 objects with partial occlusion, every object still clearly visible.

    Args:
        rng: the image's random stream.
        config: world configuration.
        forced: ``(colour, shape)`` of the first object (the eval split plants a held-out pair).

    Returns:
        The scene.
    """
    side = config.image_size
    canvas = background(rng, side, side)
    wanted = int(rng.integers(config.min_objects, config.max_objects + 1))
    objects: list[WorldObject] = []
    amodal = np.zeros((0, side, side), dtype=bool)
    for index in range(wanted):
        colour, shape = forced if (index == 0 and forced) else (None, None)
        for _ in range(30):
            candidate = sample_object(rng, config, side, colour=colour, shape=shape)
            trial = np.concatenate([amodal, rasterize(candidate, side, side)[None]])
            if _acceptable(trial, config):
                objects.append(candidate)
                amodal = trial
                break
    masks = visible(amodal)
    return Scene(image=paint(canvas, objects, masks, rng), masks=masks, objects=objects)
