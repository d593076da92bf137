"""Cutting masks at bright cell interiors: a mask over two cells becomes two pieces at the membrane."""

from __future__ import annotations

import numpy as np
import pytest

from dendrosam.segment.masks import split_at_interiors


def _two_cells():
    """Cells A (x < 30) and B (x >= 32) split by a dark membrane, each with one bright interior."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:40, :60]
    img = rng.normal(150, 2, (40, 60))
    img += 80 * np.exp(-((yy - 20) ** 2 + (xx - 14) ** 2) / 50) + 80 * np.exp(-((yy - 20) ** 2 + (xx - 46) ** 2) / 50)
    img[:, 30:32] = 20
    return img


@pytest.mark.parametrize("membranes", ["dark", "bright"])
def test_a_mask_over_two_cells_is_cut_at_the_membrane(membranes):
    img = _two_cells()
    if membranes == "bright":
        img = 255 - img
    lab = np.zeros((40, 60), np.uint32)
    lab[5:35, 5:55] = 7
    lab[0, 0] = 2  # an unrelated object with no interior stays as it is
    out = split_at_interiors(lab, img, membranes=membranes)
    assert out.dtype == np.uint32 and np.array_equal(out > 0, lab > 0)
    assert (out[5:35, 5:30] == 7).all()  # cell A's part is the larger: it keeps the id
    assert (out[5:35, 32:55] == 8).all()  # cell B's part: a new id after labels.max()
    assert set(np.unique(out[5:35, 30:32])) <= {7, 8} and out[0, 0] == 2
    assert np.count_nonzero(out == 7) + np.count_nonzero(out == 8) == 30 * 50


def test_one_interior_per_mask_is_not_cut_and_small_pieces_stay():
    img = _two_cells()
    lab = np.zeros((40, 60), np.uint32)
    lab[5:35, 5:30] = 3  # cell A only
    lab[5:35, 32:55] = 4  # cell B only
    assert np.array_equal(split_at_interiors(lab, img), lab)
    # A's mask leaks over the membrane into B: B's interior floods the leak, which is cut off
    # (new id 5) once it has min_piece (30) pixels: 6 rows x columns 31-35; one column less stays
    lab[17:23, 30:35] = 3
    assert np.array_equal(split_at_interiors(lab, img), lab)
    lab[17:23, 35] = 3
    out = split_at_interiors(lab, img)
    assert np.array_equal(np.argwhere(out == 5), np.argwhere(np.pad(np.ones((6, 5)), ((17, 17), (31, 24))) > 0))
    assert np.array_equal(out[out != 5], lab[out != 5])
    leak = np.zeros((40, 60), np.uint32)
    leak[5:35, 5:30] = 5
    leak[17:24, 30:49] = 5  # reaches B's interior (x = 46): a 7 x 17 = 119 px leak past the membrane
    cut = split_at_interiors(leak, img)
    assert set(np.unique(cut).tolist()) == {0, 5, 6} and np.count_nonzero(cut == 5) >= 25 * 30
    kept = split_at_interiors(leak, img, min_piece=1000)  # smaller than min_piece: not cut off
    assert np.array_equal(kept, leak)
    assert np.array_equal(split_at_interiors(leak, img, h=50.0), leak)  # no interior that high


def test_cut_rejects_bad_input_and_passes_empty_sections():
    img = _two_cells()
    empty = np.zeros((40, 60), np.uint16)
    out = split_at_interiors(empty, img)
    assert out.dtype == np.uint32 and not out.any()
    with pytest.raises(ValueError, match="differ in shape"):
        split_at_interiors(empty, img[:, :10])
    with pytest.raises(ValueError, match="membranes must be"):
        split_at_interiors(empty, img, membranes="grey")
    with pytest.raises(ValueError, match="h must be > 0"):
        split_at_interiors(empty, img, h=0)
