"""The concept world's configuration: one frozen dataclass, validated on construction."""

from __future__ import annotations

from dataclasses import dataclass, field

from sam3spec.world.shapes import COLOURS, SHAPES, SIZES

# Colour x shape compositions that training phrases never name (the eval split asks them).
HELD_OUT_PAIRS: tuple[tuple[str, str], ...] = (
    ("blue", "star"),
    ("red", "ring"),
    ("green", "triangle"),
    ("yellow", "cross"),
)


@dataclass(frozen=True)
class WorldConfig:
    """What the concept world generator draws.

    Attributes:
        image_size: side of the square images and video frames, pixels (even: H.264 needs it).
        min_objects: fewest objects per image.
        max_objects: most objects per image.
        shapes: shape vocabulary (subset of ``shapes.SHAPES``).
        colours: colour vocabulary (subset of ``shapes.COLOURS``).
        held_out_pairs: ``(colour, shape)`` pairs never named by a training phrase.
        eval_fraction: share of images and of videos put in the eval split (at least one each
            when there are two or more).
        positives_per_image: most positive phrases asked per image.
        hard_negatives_per_image: most hard negatives per image.
        negatives_per_image: most other negatives per image.
        min_visible_fraction: an occluded object keeps at least this share of its area visible.
        jpeg_quality: JPEG quality of images and SA-V val frames.
        video_min_frames: fewest frames per video (24 fps).
        video_max_frames: most frames per video.
        video_min_objects: fewest objects per video.
        video_max_objects: most objects per video.
        annotation_stride: a masklet is annotated every this many frames (SA-V: 4, i.e. 6 fps).
        fps: video frame rate.
        crf: H.264 quality (x264 CRF).
    """

    image_size: int = 160
    min_objects: int = 1
    max_objects: int = 8
    shapes: tuple[str, ...] = SHAPES
    colours: tuple[str, ...] = tuple(COLOURS)
    held_out_pairs: tuple[tuple[str, str], ...] = field(default=HELD_OUT_PAIRS)
    eval_fraction: float = 0.2
    positives_per_image: int = 4
    hard_negatives_per_image: int = 1
    negatives_per_image: int = 1
    min_visible_fraction: float = 0.4
    jpeg_quality: int = 95
    video_min_frames: int = 40
    video_max_frames: int = 56
    video_min_objects: int = 3
    video_max_objects: int = 5
    annotation_stride: int = 4
    fps: int = 24
    crf: int = 18

    @property
    def sizes(self) -> tuple[str, ...]:
        return SIZES

    def __post_init__(self) -> None:
        problems = []
        if self.image_size < 32 or self.image_size % 2:
            problems.append(f"image_size must be an even number >= 32, got {self.image_size}")
        if not 1 <= self.min_objects <= self.max_objects:
            problems.append(
                f"need 1 <= min_objects <= max_objects, got {self.min_objects}, {self.max_objects}"
            )
        if not 2 <= self.video_min_objects <= self.video_max_objects:
            problems.append("need 2 <= video_min_objects <= video_max_objects (occlusions need two)")
        if not self.annotation_stride <= self.video_min_frames <= self.video_max_frames:
            problems.append("need annotation_stride <= video_min_frames <= video_max_frames")
        unknown_shapes = sorted(set(self.shapes) - set(SHAPES))
        unknown_colours = sorted(set(self.colours) - set(COLOURS))
        if unknown_shapes or unknown_colours:
            problems.append(f"unknown shapes {unknown_shapes} / colours {unknown_colours}")
        for colour, shape in self.held_out_pairs:
            if colour not in self.colours or shape not in self.shapes:
                problems.append(f"held-out pair ({colour}, {shape}) is not in the vocabularies")
        if not 0.0 <= self.eval_fraction < 1.0:
            problems.append(f"eval_fraction must be in [0, 1), got {self.eval_fraction}")
        if problems:
            raise ValueError("invalid WorldConfig: " + "; ".join(problems))


def split_counts(total: int, eval_fraction: float) -> tuple[int, int]:
    """``(train, eval)`` counts: eval gets ``round(total * eval_fraction)``, at least one item
    when ``total >= 2`` and ``eval_fraction > 0``, and never everything."""
    if total < 2 or eval_fraction <= 0:
        return total, 0
    evaluation = min(total - 1, max(1, round(total * eval_fraction)))
    return total - evaluation, evaluation
