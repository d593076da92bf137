"""Pyramid factors and the downsampling rules, checked on hand-made blocks."""

from __future__ import annotations

import numpy as np

from dendrosam.viz.pyramid import downsample_mean, downsample_mode, pyramid_factors


def test_factors_halve_xy_until_isotropic_then_all_axes():
    assert pyramid_factors((64, 512, 512), (40.0, 10.0, 10.0), min_size=64) == [(1, 2, 2), (1, 2, 2), (2, 2, 2)]
    assert pyramid_factors((50, 100, 200), (10.0, 10.0, 10.0), min_size=32) == [(2, 2, 2)]
    assert pyramid_factors((10, 20, 20), (40.0, 4.0, 4.0), min_size=32) == []


def test_mode_prefers_majority_and_breaks_ties_to_larger_id():
    block = np.array([[[5, 5], [5, 2]], [[0, 0], [9, 9]]], dtype=np.uint32)  # (z=2, y=2, x=2)
    assert downsample_mode(block[:1], (1, 2, 2))[0, 0, 0] == 5  # 3 of 4
    assert downsample_mode(block[1:], (1, 2, 2))[0, 0, 0] == 9  # 2:2 tie with background
    assert downsample_mode(block, (2, 2, 2))[0, 0, 0] == 5  # 5 x3 beats 0 x2 and 9 x2


def test_mean_rounds_and_handles_odd_edges():
    img = np.array([[[0, 1, 10], [2, 3, 10]]], dtype=np.uint8)  # (1, 2, 3): last column is an edge
    out = downsample_mean(img, (1, 2, 2))
    assert out.dtype == np.uint8
    np.testing.assert_array_equal(out, [[[2, 10]]])  # mean 1.5 rounds to 2 (half to even), edge replicated
