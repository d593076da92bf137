"""Compiled solidity: the same numbers as scikit-image's regionprops, exact answers on small shapes."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage as ndi
from skimage.measure import regionprops

from dendrosam.reconstruct.convex import solidity


def _skimage(lab: np.ndarray, n: int) -> np.ndarray:
    out = np.zeros(n)
    for region in regionprops(lab):
        out[region.label - 1] = region.solidity
    return out


def test_equals_regionprops_on_random_labels():
    rng = np.random.default_rng(7)
    checked = 0
    for trial in range(120):
        h, w = rng.integers(1, 48, 2)
        lab = rng.integers(0, rng.integers(2, 9), (h, w))
        if trial % 2:  # blobs, with holes and several pieces per label
            lab = ndi.median_filter(lab, 3)
        n = int(lab.max())
        np.testing.assert_array_equal(solidity(lab, n), _skimage(lab, n))
        checked += n
    assert checked > 400


def test_exact_shapes():
    lab = np.zeros((7, 9), np.int32)
    lab[1, 1] = 1  # one pixel: its hull holds its own centre only
    lab[3:6, 0:3] = 2  # a 3 x 3 square
    lab[1:4, 5] = 3  # an L: hull of (1,5)..(3,5) and (3,6),(3,7) holds (2,6) too
    lab[3, 6:8] = 3
    # two pixels apart: the hull of their edge midpoints spans rows 4.83-5.83 at x = 6 and 5.17-6.17
    # at x = 7, so it holds the centres (5, 5), (5, 6), (6, 7), (6, 8): solidity 2 / 4
    lab[5, 5] = lab[6, 8] = 4
    got = solidity(lab, 4)
    assert got.tolist() == [1.0, 1.0, 5 / 6, 0.5] == _skimage(lab, 4).tolist()


def test_absent_labels_and_bad_input():
    lab = np.zeros((4, 4), np.int32)
    lab[0, 0] = 2
    assert solidity(lab, 3).tolist() == [0.0, 1.0, 0.0]
    assert solidity(np.zeros((3, 3), int), 0).shape == (0,)
    with pytest.raises(ValueError, match="2D label image"):
        solidity(np.zeros((2, 3, 3), int), 1)
