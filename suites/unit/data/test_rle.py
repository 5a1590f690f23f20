"""RLE wrappers: round trips, the strict validator, boxes."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from pycocotools import mask as mask_utils

from sam3spec.data import rle

masks = st.tuples(st.integers(1, 24), st.integers(1, 24)).flatmap(lambda hw: arrays(bool, hw))


@settings(max_examples=150, deadline=None)
@given(masks)
def test_round_trip_is_exact(mask):
    encoded = rle.encode(mask)
    assert encoded["size"] == list(mask.shape)
    assert isinstance(encoded["counts"], str)
    np.testing.assert_array_equal(rle.decode(encoded), mask)
    assert rle.area(encoded) == mask.sum()


@settings(max_examples=100, deadline=None)
@given(masks)
def test_run_lengths_match_pycocotools(mask):
    encoded = rle.encode(mask)
    _, runs = rle.run_lengths(encoded)
    uncompressed = mask_utils.frPyObjects({"size": list(mask.shape), "counts": runs}, *mask.shape)
    assert uncompressed["counts"].decode() == encoded["counts"]
    # The uncompressed (list) form decodes too.
    np.testing.assert_array_equal(rle.decode({"size": list(mask.shape), "counts": runs}), mask)


@pytest.mark.parametrize(
    "bad",
    [
        {"size": [4, 4], "counts": ""},  # pycocotools decodes this to uninitialised memory
        {"size": [4, 4], "counts": "!!"},
        {"size": [4, 4], "counts": "0"},  # covers 0 of 16 pixels
        {"size": [4, 4], "counts": "a"},  # ends inside a number
        {"size": [4], "counts": "<"},
        {"size": [4, -4], "counts": "<"},
        {"size": [4, 4], "counts": 16},
        {"size": [4, 4], "counts": [3, -1, 14]},
        {"counts": "<"},
        "not a dict",
    ],
)
def test_validator_rejects_malformed(bad):
    with pytest.raises(rle.MalformedRLE):
        rle.decode(bad)


def test_decode_many_checks_size():
    mask = np.zeros((5, 6), dtype=bool)
    mask[1:3, 2:5] = True
    assert rle.decode_many([rle.encode(mask)], 5, 6).shape == (1, 5, 6)
    assert rle.decode_many([], 5, 6).shape == (0, 5, 6)
    with pytest.raises(rle.SizeMismatch):
        rle.decode_many([rle.encode(mask)], 6, 5)


def test_bbox_matches_pycocotools():
    mask = np.zeros((10, 12), dtype=bool)
    mask[2:5, 3:9] = True
    mask[7, 1] = True
    expected = mask_utils.toBbox(mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))).tolist()
    assert rle.bbox_xywh(mask) == expected == [1.0, 2.0, 8.0, 6.0]
    assert rle.bbox_xywh(np.zeros((3, 3), bool)) == [0.0, 0.0, 0.0, 0.0]
