"""Concept-world videos: objects move, occlude each other, and leave and re-enter the frame.

Each object bounces inside a box along a straight line (a triangle wave per axis, a pure function
of time). Three roles make temporal memory matter in every video:

* an *exiter* whose box extends past the frame edge, so it leaves and comes back;
* an *occludee* that moves slowly;
* a *crosser*, drawn on top, whose path passes over the occludee mid-video.

Draws are repeated (from the same random stream, so still deterministic) until the annotated
frames show a leave-and-return and an occlusion, and every object is visible at least once.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from sam3spec.world.config import WorldConfig
from sam3spec.world.images import background, paint, sample_object, visible
from sam3spec.world.shapes import WorldObject, rasterize

_ATTEMPTS = 12


@dataclass(frozen=True)
class Track:
    """An object's motion: start pose, velocity (px/frame), spin (rad/frame), bounce box."""

    obj: WorldObject
    velocity: tuple[float, float]
    spin: float
    low: float
    high: float

    def at(self, t: float) -> WorldObject:
        return self.obj.moved(
            _bounce(self.obj.x, self.velocity[0], self.low, self.high, t),
            _bounce(self.obj.y, self.velocity[1], self.low, self.high, t),
            self.obj.angle + self.spin * t,
        )


@dataclass
class Video:
    """A rendered video.

    Attributes:
        frames: ``[T, H, W, 3]`` uint8 RGB.
        masks: ``[T, N, H, W]`` bool visible masks of every frame (annotations keep every
            ``annotation_stride``-th).
        objects: the N objects at frame 0 (attributes; pose may be off-frame).
        amodal_area: ``[T, N]`` in-frame pixels of each whole object, occluded parts included
            (visible area below it means the object is occluded).
    """

    frames: np.ndarray
    masks: np.ndarray
    objects: list[WorldObject]
    amodal_area: np.ndarray


def _bounce(start: float, speed: float, low: float, high: float, t: float) -> float:
    span = high - low
    if span <= 0:
        return low
    position = (start - low + speed * t) % (2 * span)
    return low + (position if position <= span else 2 * span - position)


def _direction(rng: np.random.Generator, speed: float) -> tuple[float, float]:
    theta = rng.uniform(0, 2 * math.pi)
    return speed * math.cos(theta), speed * math.sin(theta)


def _tracks(rng: np.random.Generator, config: WorldConfig, frames: int) -> list[Track]:
    side = config.image_size
    count = int(rng.integers(config.video_min_objects, config.video_max_objects + 1))
    tracks = []
    # Exiter: its box reaches 4-14 px beyond the point where it is fully out of the frame.
    exiter = sample_object(rng, config, side)
    extra = exiter.radius + rng.uniform(4, 14)
    tracks.append(
        Track(exiter, _direction(rng, rng.uniform(2.5, 5.0)), rng.uniform(-0.05, 0.05), -extra, side + extra)
    )
    # Occludee: slow, kept inside.
    occludee = sample_object(rng, config, side)
    tracks.append(
        Track(
            occludee,
            _direction(rng, rng.uniform(0.0, 0.6)),
            rng.uniform(-0.03, 0.03),
            occludee.radius,
            side - occludee.radius,
        )
    )
    # Crosser: starts where it reaches the occludee's centre at mid-video (it may start off-frame).
    crosser = sample_object(rng, config, side, inside=False)
    reach = crosser.radius + 6
    velocity = _direction(rng, rng.uniform(1.5, 4.0))
    middle = frames / 2
    centre = (occludee.x, occludee.y)
    scale = 1.0
    for axis in range(2):  # slow down so the start lies inside the bounce box (no early bounce)
        room = centre[axis] + reach if velocity[axis] > 0 else side + reach - centre[axis]
        if velocity[axis]:
            scale = min(scale, room / (abs(velocity[axis]) * middle))
    velocity = (velocity[0] * scale, velocity[1] * scale)
    crosser = crosser.moved(centre[0] - velocity[0] * middle, centre[1] - velocity[1] * middle, crosser.angle)
    tracks.append(Track(crosser, velocity, rng.uniform(-0.05, 0.05), -reach, side + reach))
    for _ in range(count - 3):
        other = sample_object(rng, config, side)
        tracks.append(
            Track(
                other,
                _direction(rng, rng.uniform(0.5, 3.5)),
                rng.uniform(-0.05, 0.05),
                other.radius,
                side - other.radius,
            )
        )
    return tracks


def _amodal(tracks: list[Track], t: int, side: int) -> np.ndarray:
    return np.stack([rasterize(track.at(t), side, side) for track in tracks])


def _memory_matters(tracks: list[Track], frames: int, config: WorldConfig) -> bool:
    """A leave-and-return and an occlusion on the annotated frames; every object seen once."""
    side = config.image_size
    annotated = range(0, frames, config.annotation_stride)
    full = np.stack([_amodal(tracks, t, side) for t in annotated])  # [K, N, H, W]
    seen = np.stack([visible(frame) for frame in full])
    full_area = full.reshape(*full.shape[:2], -1).sum(-1)
    seen_area = seen.reshape(*seen.shape[:2], -1).sum(-1)
    present = seen_area > 0  # [K, N]
    returns = False
    for track in present.T:
        first, last = np.argmax(track), len(track) - 1 - np.argmax(track[::-1])
        returns |= bool(track.any() and not track[first : last + 1].all())
    occluded = bool(np.any((full_area > 0) & (seen_area < 0.9 * full_area)))
    return returns and occluded and bool(present.any(axis=0).all())


def generate_video(rng: np.random.Generator, config: WorldConfig) -> Video:
    """Draw and render one video.

    Args:
        rng: the video's random stream.
        config: world configuration.

    Returns:
        The video with per-frame visible masks.
    """
    side = config.image_size
    frames = int(rng.integers(config.video_min_frames, config.video_max_frames + 1))
    for _ in range(_ATTEMPTS):
        tracks = _tracks(rng, config, frames)
        if _memory_matters(tracks, frames, config):
            break
    canvas = background(rng, side, side)
    images = np.empty((frames, side, side, 3), dtype=np.uint8)
    masks = np.empty((frames, len(tracks), side, side), dtype=bool)
    amodal_area = np.empty((frames, len(tracks)), dtype=np.int64)
    for t in range(frames):
        amodal = _amodal(tracks, t, side)
        amodal_area[t] = amodal.reshape(len(tracks), -1).sum(-1)
        masks[t] = visible(amodal)
        images[t] = paint(canvas, [track.at(t) for track in tracks], masks[t], rng)
    return Video(frames=images, masks=masks, objects=[track.obj for track in tracks], amodal_area=amodal_area)
