"""Perfect linking of 2D masks: exact answers and the bound it gives."""

from __future__ import annotations

import numpy as np
import pytest

from dendrosam.errors import ConfigError, LabelError
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


def test_overlap_oracle_joins_only_through_overlapping_same_neuron_objects():
    gt = np.zeros((3, 4, 8), np.uint32)
    gt[:, :, :4], gt[:, :, 4:] = 11, 22
    masks = np.zeros_like(gt)
    masks[0, :, :2], masks[0, :, 2:4] = 1, 2  # two fragments of 11 ...
    masks[1, :, :4] = 3  # ... joined through the next section
    masks[2, :, :4] = 4
    masks[0, :, 4:], masks[2, :, 4:] = 5, 6  # 22 has no mask in section 1: two objects
    masks[1, :, 4:] = 0
    out = oracle_link(masks, gt, links="overlap")
    assert len(np.unique(out[:, :, :4])) == 1 and out[0, 0, 0] == 1  # one object, first voxel first
    assert out[0, 0, 4] != out[2, 0, 4] and 0 not in (out[0, 0, 4], out[2, 0, 4])
    assert len(np.unique(out)) == 3 + 1  # 11, 22 twice, and the background
    np.testing.assert_array_equal(oracle_link(masks, gt)[[0, 2], 0, 4], [22, 22])
    # a tracker linking every overlap of one neuron reaches the bound exactly on these masks
    bound = evaluate(gt, out)
    assert bound.voi_merge == 0.0 and bound.voi_split > 0.0


def test_overlap_oracle_never_joins_different_neurons_and_rejects_unknown_mode():
    rng = np.random.default_rng(1)
    gt = np.kron(rng.integers(1, 9, (5, 4, 4)), np.ones((1, 4, 4), np.int64)).astype(np.uint32)
    masks = np.kron(rng.integers(1, 20, (5, 8, 8)), np.ones((1, 2, 2), np.int64)).astype(np.uint32)
    out = oracle_link(masks, gt, links="overlap")
    any_ = oracle_link(masks, gt)
    # every overlap object lies inside one "any" object (same neuron), never across two
    pairs = np.unique(np.stack([out.ravel(), any_.ravel()]), axis=1)
    assert np.all(np.bincount(pairs[0]) <= 1)
    empty = np.zeros((2, 3, 3), np.uint8)
    assert oracle_link(empty, empty, links="overlap").max() == 0
    with pytest.raises(ConfigError, match="links"):
        oracle_link(masks, gt, links="nearest")
