"""Perfect linking of 2D masks: exact answers and the bound it gives."""

from __future__ import annotations

import numpy as np
import pytest

from dendrosam.errors import LabelError
from dendrosam.reconstruct import evaluate, oracle_link, track


def test_oracle_link_takes_the_majority_gt_id_per_2d_object():
    gt = np.zeros((3, 6, 8), np.uint32)
    gt[:, :, :4], gt[:, :, 4:] = 11, 22
    gt[:, 0, :] = 0  # background row
    masks = np.zeros_like(gt)
    masks[0, :, :5] = 3  # mostly 11, leaks one column into 22
    masks[0, :, 5:] = 4
    masks[1, :3, :] = 9  # half and half: ties go to the smaller GT id
    masks[1, 3:, :] = 8
    masks[2, 0, :] = 5  # on GT background only -> 0
    out = oracle_link(masks, gt)
    np.testing.assert_array_equal(out[0, 1], [11] * 5 + [22] * 3)
    assert set(np.unique(out[1, 1:3])) == {11} and set(np.unique(out[1, 3:])) == {11}
    np.testing.assert_array_equal(out[2], 0)
    assert out.dtype == np.uint32


def test_oracle_bounds_a_real_tracker_and_is_exact_on_perfect_masks():
    rng = np.random.default_rng(0)
    gt = np.kron(rng.integers(1, 30, (4, 6, 6)), np.ones((1, 5, 5), np.int64)).astype(np.uint32)
    perfect = np.stack([np.unique(s, return_inverse=True)[1].reshape(s.shape) + 1 for s in gt])
    np.testing.assert_array_equal(oracle_link(perfect, gt), gt)
    noisy = perfect.copy()
    noisy[:, :, ::7] = 0  # gaps
    bound = evaluate(gt, oracle_link(noisy, gt))
    tracked = evaluate(gt, track(noisy, (40, 10, 10)).labels)
    assert bound.voi_split + bound.voi_merge <= tracked.voi_split + tracked.voi_merge + 1e-9


def test_oracle_link_rejects_shape_mismatch():
    with pytest.raises(LabelError, match="same shape"):
        oracle_link(np.zeros((2, 3, 3), np.uint8), np.zeros((2, 3, 4), np.uint8))
