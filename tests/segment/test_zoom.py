"""Zoom geometry: exact window placement, crop sampling, coordinate and paste round trips."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dendrosam.segment.zoom import (
    crop_windows,
    paste_logits,
    paste_masks,
    point_windows,
    to_crop_coords,
    to_section_coords,
    zoom_windows,
)


def test_window_is_the_centred_square():
    # 20 x 10 box centred at (20, 25): side 20 * 1.5 = 30.
    w = zoom_windows(np.array([[10.0, 20.0, 30.0, 30.0]]), 0.25)
    np.testing.assert_allclose(w, [[5.0, 10.0, 35.0, 40.0]])
    # A 1-pixel box gets the minimum side, still centred.
    w = zoom_windows(np.array([[4.0, 4.0, 5.0, 5.0]]), 0.25, min_side=8)
    np.testing.assert_allclose(w, [[0.5, 0.5, 8.5, 8.5]])
    with pytest.raises(ValueError, match="margin"):
        zoom_windows(np.zeros((1, 4)), -0.1)


def test_point_windows_have_the_minimum_extent():
    w = point_windows(np.array([[[10.0, 10.0]]]), 0.0, window=32)
    np.testing.assert_allclose(w, [[-5.5, -5.5, 26.5, 26.5]])


def test_crop_samples_the_window_exactly():
    # value = column index: crop pixel j of window x in [10, 20) averages columns around 10 + j.
    img = np.tile(np.arange(64, dtype=np.float32), (64, 1))
    crop = crop_windows(img, np.array([[10.0, 30.0, 20.0, 40.0]]), 10)
    assert crop.shape == (1, 1, 10, 10)
    np.testing.assert_allclose(crop[0, 0, 0].numpy(), np.arange(10, 20), atol=1e-5)
    # Far outside the image: zeros.
    out = crop_windows(img, np.array([[100.0, 100.0, 110.0, 110.0]]), 4)
    assert float(out.abs().max()) == 0.0


def test_crop_of_a_stack_uses_the_index():
    stack = np.stack([np.full((8, 8), 3.0), np.full((8, 8), 7.0)]).astype(np.float32)
    crops = crop_windows(stack, np.array([[1.0, 1.0, 5.0, 5.0]] * 2), 4, index=np.array([1, 0]))
    np.testing.assert_allclose(crops[:, 0, 2, 2].numpy(), [7.0, 3.0])


def test_coordinates_round_trip():
    rng = np.random.default_rng(0)
    wins = zoom_windows(rng.uniform(0, 100, (5, 2)).repeat(2, 1) + [0, 0, 10, 20], 0.25)
    pts = rng.uniform(0, 120, (5, 3, 2))
    back = to_section_coords(to_crop_coords(pts, wins, 128), wins, 128)
    np.testing.assert_allclose(back, pts)
    box = to_crop_coords(np.array([[10.0, 20.0, 30.0, 30.0]]), np.array([[5.0, 10.0, 35.0, 40.0]]), 120)
    np.testing.assert_allclose(box, [[20.0, 40.0, 100.0, 80.0]])


@pytest.mark.parametrize("centre", [(60.0, 70.0), (14.0, 100.0)])  # inside / at the border
def test_crop_then_paste_round_trips_a_disk(centre):
    yy, xx = np.mgrid[:128, :150]
    disk = ((yy + 0.5 - centre[0]) ** 2 + (xx + 0.5 - centre[1]) ** 2) <= 15.0**2  # 30 px wide
    ys, xs = np.nonzero(disk)
    box = np.array([[xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]], np.float64)
    win = zoom_windows(box, 0.25)
    crop = crop_windows(disk.astype(np.float32), win, 128)  # object now ~85 px wide
    logits = (crop - 0.5) * 10
    mask = paste_masks(logits, win, disk.shape)[0]
    iou = (mask & disk).sum() / (mask | disk).sum()
    assert iou > 0.98
    # From SAM's low-res (64 px) logits as well.
    low = torch.nn.functional.interpolate(logits, size=(64, 64), mode="bilinear", align_corners=False)
    mask = paste_masks(low, win, disk.shape)[0]
    assert (mask & disk).sum() / (mask | disk).sum() > 0.98


def test_paste_clips_to_the_image_and_skips_misses():
    logits = torch.ones((2, 1, 8, 8))
    wins = np.array([[-4.0, -4.0, 4.0, 4.0], [50.0, 50.0, 60.0, 60.0]])
    (b0, l0), (b1, l1) = paste_logits(logits, wins, (20, 20))
    assert b0 == (0, 0, 4, 4) and tuple(l0.shape) == (4, 4)
    assert b1[2] == b1[0] and l1.numel() == 0
