"""Concept world parts: exact rasterisation, phrases and the held-out rule, scenes, videos."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sam3spec.world import WorldConfig
from sam3spec.world.config import split_counts
from sam3spec.world.images import generate_scene, visible
from sam3spec.world.phrases import (
    HARD_NEGATIVE,
    NEGATIVE,
    POSITIVE,
    Phrase,
    instances_of,
    is_held_out,
    sample_queries,
)
from sam3spec.world.shapes import COLOURS, SHAPES, SIZES, WorldObject, rasterize
from sam3spec.world.videos import generate_video

CONFIG = WorldConfig()


def test_vocabularies_meet_the_issue():
    assert {"circle", "square", "triangle", "star", "ring", "cross"} <= set(SHAPES)
    assert len(COLOURS) >= 6
    assert set(SIZES) == {"small", "large"}


def test_circle_mask_is_pixel_centre_exact():
    obj = WorldObject("circle", "red", "large", x=20.0, y=15.0, radius=7.3)
    mask = rasterize(obj, 40, 50)
    rows, cols = np.mgrid[0:40, 0:50]
    expected = (cols + 0.5 - 20.0) ** 2 + (rows + 0.5 - 15.0) ** 2 <= 7.3**2
    np.testing.assert_array_equal(mask, expected)


@pytest.mark.parametrize("shape", SHAPES)
def test_every_shape_rasterises_inside_its_radius(shape):
    obj = WorldObject(shape, "blue", "large", x=32.0, y=32.0, radius=20.0, angle=0.4)
    mask = rasterize(obj, 64, 64)
    rows, cols = np.nonzero(mask)
    assert mask.sum() > 20
    assert np.all(np.hypot(cols + 0.5 - 32, rows + 0.5 - 32) <= 20.0 + 1e-9)


def test_thin_bar_is_thin_and_off_frame_objects_clip():
    bar = rasterize(WorldObject("bar", "red", "large", 32, 32, 25, 0.0), 64, 64)
    assert 2 <= bar.any(axis=1).sum() <= 4  # a few rows tall
    assert not rasterize(WorldObject("circle", "red", "small", -30, 10, 5), 64, 64).any()


def test_visible_masks_respect_drawing_order():
    amodal = np.zeros((2, 4, 4), dtype=bool)
    amodal[0, :, :3] = True
    amodal[1, :, 2:] = True
    seen = visible(amodal)
    assert not (seen[0] & seen[1]).any()
    assert seen[1].sum() == 8 and seen[0].sum() == 8


def test_phrase_text_parse_and_matching():
    for phrase in (
        Phrase("circle"),
        Phrase("circle", "red"),
        Phrase("circle", "red", "large"),
        Phrase(None, "red"),
    ):
        assert Phrase.parse(phrase.text, SHAPES, tuple(COLOURS), SIZES) == phrase
    assert Phrase(None, "red").text == "red shape"
    objects = [WorldObject("circle", "red", "large", 0, 0, 5), WorldObject("square", "red", "small", 0, 0, 5)]
    assert instances_of(Phrase(None, "red"), objects) == (0, 1)
    assert instances_of(Phrase("circle", "blue"), objects) == ()


def test_held_out_rule():
    pairs = (("blue", "star"),)
    assert is_held_out(Phrase("star", "blue"), pairs)
    assert is_held_out(Phrase("star", "blue", "small"), pairs)
    assert not is_held_out(Phrase("star"), pairs)  # no colour: not a composition
    assert not is_held_out(Phrase(None, "blue"), pairs)


def test_queries_kinds_are_truthful():
    rng = np.random.default_rng(0)
    for _ in range(30):
        scene = generate_scene(rng, CONFIG)
        queries = sample_queries(
            scene.objects,
            rng,
            shapes=SHAPES,
            colours=tuple(COLOURS),
            sizes=SIZES,
            positives=4,
            hard_negatives=1,
            negatives=1,
            allowed=lambda p: True,
        )
        assert len({q.phrase for q in queries}) == len(queries)
        for query in queries:
            assert query.instances == instances_of(query.phrase, scene.objects)
            assert bool(query.instances) == (query.kind == POSITIVE)
            if query.kind == HARD_NEGATIVE:  # one attribute away from a present object's phrase
                assert any(
                    sum(
                        getattr(query.phrase, a) != getattr(obj, a)
                        for a in ("shape", "colour", "size")
                        if getattr(query.phrase, a) is not None
                    )
                    == 1
                    for obj in scene.objects
                )
        assert {q.kind for q in queries} <= {POSITIVE, HARD_NEGATIVE, NEGATIVE}


def test_scene_masks_are_exact_and_occlusion_keeps_objects_visible():
    rng = np.random.default_rng(3)
    occluded = 0
    for _ in range(20):
        scene = generate_scene(rng, CONFIG)
        assert 1 <= len(scene.objects) <= 8
        assert not (scene.masks.sum(0) > 1).any()  # visible masks are disjoint
        for obj, mask in zip(scene.objects, scene.masks, strict=True):
            full = rasterize(obj, *scene.masks.shape[1:])
            assert (mask <= full).all()
            assert mask.sum() >= CONFIG.min_visible_fraction * full.sum()
            occluded += mask.sum() < full.sum()
            # Painted pixels carry the object's colour (within the fill noise).
            assert np.abs(scene.image[mask].mean(0) - COLOURS[obj.colour]).max() < 12
    assert occluded > 0


def test_video_motion_occlusion_and_reentry():
    config = WorldConfig(image_size=64, video_min_frames=36, video_max_frames=40)
    for index in range(3):
        video = generate_video(np.random.default_rng([5, index]), config)
        frames, objects = video.masks.shape[:2]
        assert 36 <= frames <= 40 and 3 <= objects <= 5
        present = video.masks[::4].reshape(len(video.masks[::4]), objects, -1).any(-1)
        leaves_and_returns = any(
            track.any() and not track[np.argmax(track) : len(track) - np.argmax(track[::-1])].all()
            for track in present.T
        )
        assert leaves_and_returns
        assert present.any(0).all()
        seen = video.masks[::4].reshape(*present.shape, -1).sum(-1)
        amodal = video.amodal_area[::4]
        assert np.any((amodal > 0) & (seen < 0.9 * amodal))  # an occlusion on an annotated frame


def test_split_counts():
    assert split_counts(200, 0.2) == (160, 40)
    assert split_counts(2, 0.2) == (1, 1)
    assert split_counts(1, 0.2) == (1, 0)
    assert split_counts(10, 0.0) == (10, 0)
    assert split_counts(3, 0.9) == (1, 2)


def test_config_validation():
    with pytest.raises(ValueError, match="held-out pair"):
        WorldConfig(held_out_pairs=(("mauve", "circle"),))
    with pytest.raises(ValueError, match="even"):
        WorldConfig(image_size=63)
    assert math.isclose(WorldConfig().eval_fraction, 0.2)
