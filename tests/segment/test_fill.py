"""Dense fill: unlabelled pixels become objects bounded by the image's membranes."""

from __future__ import annotations

import numpy as np
import pytest

from dendrosam.segment.masks import fill_unlabelled


def _two_cells():
    """Two bright cells split by a dark 2-px membrane at x = 30, 31; a mask covers x < 10 of cell A."""
    rng = np.random.default_rng(0)
    img = rng.normal(200, 3, (40, 60))
    img[:, 30:32] = 20
    lab = np.zeros((40, 60), np.uint32)
    lab[:, :10] = 7
    return img, lab


@pytest.mark.parametrize("membranes", ["dark", "bright"])
def test_mask_grows_to_the_membrane_and_the_other_cell_is_new(membranes):
    img, lab = _two_cells()
    if membranes == "bright":
        img = 255 - img
    out = fill_unlabelled(lab, img, sigma=1.0, seed_distance=40, membranes=membranes)
    assert out.dtype == np.uint32 and (out > 0).all()
    assert (out[:, :30] == 7).all()  # cell A: the mask grew up to the membrane
    assert (out[:, 32:] == 8).all()  # cell B: one new object numbered after the masks
    assert set(np.unique(out[:, 30:32])) <= {7, 8}


def test_fill_is_a_no_op_on_dense_labels_and_rejects_bad_input():
    img, _ = _two_cells()
    dense = np.ones((40, 60), np.uint32)
    assert np.array_equal(fill_unlabelled(dense, img), dense)
    with pytest.raises(ValueError, match="differ in shape"):
        fill_unlabelled(dense, img[:, :10])
    with pytest.raises(ValueError, match="membranes must be"):
        fill_unlabelled(dense, img, membranes="grey")
