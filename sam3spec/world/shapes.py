"""Shapes, colours and sizes of the concept world, and their exact rasterisation.

A shape is rasterised by testing pixel centres ``(i + 0.5, j + 0.5)`` against its geometry, with no
anti-aliasing: the boolean mask *is* the set of painted pixels, so instance masks are exact.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

# Thin objects: "bar" is a few pixels wide; "ring" has a thin wall. Small objects: size "small".
SHAPES: tuple[str, ...] = ("circle", "square", "triangle", "star", "ring", "cross", "bar")

# Saturated hues far from the greyish backgrounds (see images.py), so colour stays recognisable
# after JPEG / H.264 compression.
COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (220, 40, 40),
    "orange": (245, 140, 20),
    "yellow": (235, 215, 30),
    "green": (40, 170, 60),
    "cyan": (30, 200, 215),
    "blue": (40, 70, 225),
    "purple": (150, 50, 200),
}

SIZES: tuple[str, ...] = ("small", "large")

# Radius range per size, as a fraction of the image side.
SIZE_RADIUS: dict[str, tuple[float, float]] = {"small": (0.035, 0.065), "large": (0.12, 0.19)}


@dataclass(frozen=True)
class WorldObject:
    """One object: attributes plus pose.

    Attributes:
        shape: one of :data:`SHAPES`.
        colour: one of :data:`COLOURS`.
        size: one of :data:`SIZES`.
        x: centre column in pixels.
        y: centre row in pixels.
        radius: circumscribed radius in pixels.
        angle: rotation in radians.
    """

    shape: str
    colour: str
    size: str
    x: float
    y: float
    radius: float
    angle: float = 0.0

    def moved(self, x: float, y: float, angle: float) -> WorldObject:
        """The same object at another pose."""
        return replace(self, x=x, y=y, angle=angle)

    def attributes(self) -> dict[str, str]:
        return {"shape": self.shape, "colour": self.colour, "size": self.size}


def _star_polygon(points: int = 5, inner: float = 0.45) -> np.ndarray:
    angles = np.arange(2 * points) * math.pi / points - math.pi / 2
    radii = np.where(np.arange(2 * points) % 2 == 0, 1.0, inner)
    return np.stack([radii * np.cos(angles), radii * np.sin(angles)], axis=1)


_TRIANGLE = np.array([[math.cos(a), math.sin(a)] for a in (-math.pi / 2, math.pi / 6, 5 * math.pi / 6)])
_STAR = _star_polygon()


def _inside_polygon(u: np.ndarray, v: np.ndarray, polygon: np.ndarray) -> np.ndarray:
    """Even-odd rule, vectorised over pixels; ``polygon`` is ``[K, 2]`` in unit coordinates."""
    inside = np.zeros(u.shape, dtype=bool)
    for k in range(len(polygon)):
        (x0, y0), (x1, y1) = polygon[k], polygon[(k + 1) % len(polygon)]
        crosses = (y0 > v) != (y1 > v)
        with np.errstate(divide="ignore", invalid="ignore"):
            x_at = x0 + (v - y0) * (x1 - x0) / (y1 - y0)
        inside ^= crosses & (u < x_at)
    return inside


def _unit_test(shape: str, u: np.ndarray, v: np.ndarray, radius: float) -> np.ndarray:
    """Membership in unit coordinates (``u, v`` = offset / radius, rotated into the shape frame)."""
    if shape == "circle":
        return u * u + v * v <= 1.0
    if shape == "square":
        half = 1 / math.sqrt(2)
        return (np.abs(u) <= half) & (np.abs(v) <= half)
    if shape == "triangle":
        return _inside_polygon(u, v, _TRIANGLE)
    if shape == "star":
        return _inside_polygon(u, v, _STAR)
    if shape == "ring":
        # Wall at least ~1.5 px thick so the ring survives compression, but thin for large rings.
        inner = max(0.0, 1.0 - max(0.3, 1.6 / radius))
        rho2 = u * u + v * v
        return (rho2 <= 1.0) & (rho2 >= inner * inner)
    if shape == "cross":
        arm, reach = 0.3, math.sqrt(1 - 0.3**2)  # arm ends' corners on the unit circle
        return ((np.abs(u) <= reach) & (np.abs(v) <= arm)) | ((np.abs(v) <= reach) & (np.abs(u) <= arm))
    if shape == "bar":
        half_width = min(0.5, max(1.2, 0.05 * radius) / radius)  # a thin object: ~2.5 px wide
        return (np.abs(u) <= math.sqrt(1 - half_width**2)) & (np.abs(v) <= half_width)
    raise ValueError(f"unknown shape {shape!r}; known: {SHAPES}")


def rasterize(obj: WorldObject, height: int, width: int) -> np.ndarray:
    """Exact mask of an object (the object may extend beyond the frame; it is clipped).

    Args:
        obj: the object.
        height: image height.
        width: image width.

    Returns:
        ``[H, W]`` bool mask of the pixels whose centres lie inside the shape.
    """
    mask = np.zeros((height, width), dtype=bool)
    reach = obj.radius + 1.0
    row0, row1 = max(0, int(math.floor(obj.y - reach))), min(height, int(math.ceil(obj.y + reach)) + 1)
    col0, col1 = max(0, int(math.floor(obj.x - reach))), min(width, int(math.ceil(obj.x + reach)) + 1)
    if row0 >= row1 or col0 >= col1:
        return mask
    rows = np.arange(row0, row1, dtype=np.float64)[:, None] + 0.5 - obj.y
    cols = np.arange(col0, col1, dtype=np.float64)[None, :] + 0.5 - obj.x
    cos, sin = math.cos(obj.angle), math.sin(obj.angle)
    u = (cols * cos + rows * sin) / obj.radius
    v = (-cols * sin + rows * cos) / obj.radius
    mask[row0:row1, col0:col1] = _unit_test(obj.shape, u, v, obj.radius)
    return mask
