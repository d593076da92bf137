"""Test-time augmentation: the square's symmetries on crops, boxes and points, and TTA inference."""

from __future__ import annotations

import numpy as np
import pytest

from dendrosam.errors import ConfigError
from dendrosam.segment.augment import (
    SYMMETRIES, invert_image, symmetries, transform_boxes, transform_image, transform_points,
)
from dendrosam.segment.predict import predict_masks
from dendrosam.segment.prompts import prompts_from_gt


def _box_mask(box, side):
    yy, xx = np.mgrid[:side, :side] + 0.5  # pixel centres
    x0, y0, x1, y1 = box
    return (xx > x0) & (xx < x1) & (yy > y0) & (yy < y1)


@pytest.mark.parametrize("sym", SYMMETRIES)
def test_boxes_and_points_follow_the_pixels(sym):
    import torch

    side, box = 16, np.array([2.0, 5.0, 7.0, 14.0])
    mask = torch.from_numpy(_box_mask(box, side))
    moved = transform_image(mask, sym).numpy()
    assert np.array_equal(moved, _box_mask(transform_boxes(box[None], sym, side)[0], side))
    img = torch.arange(side * side).reshape(side, side)
    assert torch.equal(invert_image(transform_image(img, sym), sym), img)
    # a pixel centre goes where its pixel goes
    y, x = 3, 11
    out = transform_points(np.array([x + 0.5, y + 0.5]), sym, side)
    assert transform_image(img, sym)[int(out[1]), int(out[0])] == img[y, x]


def test_the_eight_symmetries_are_distinct_and_counts_checked():
    import torch

    img = torch.arange(16).reshape(4, 4)
    assert len({tuple(transform_image(img, s).flatten().tolist()) for s in SYMMETRIES}) == 8
    assert symmetries(4) == ((False, 0), (True, 0), (False, 2), (True, 2))
    with pytest.raises(ConfigError, match="tta must be 1, 2, 4 or 8"):
        symmetries(3)


def test_tta_one_is_plain_inference_and_all_eight_views_are_mirror_invariant(zoom_sam, blobs):
    img, gt = blobs
    boxes = prompts_from_gt(gt[1], "boxes").boxes
    plain = predict_masks(zoom_sam, img[1], boxes=boxes)
    one = predict_masks(zoom_sam, img[1], boxes=boxes, tta=1)
    assert np.array_equal(plain.masks, one.masks) and np.array_equal(plain.scores, one.scores)

    eight = predict_masks(zoom_sam, img[1], boxes=boxes, tta=8)
    width = img.shape[2]
    mirrored = boxes[:, [2, 1, 0, 3]] * [-1, 1, -1, 1] + [width, 0, width, 0]
    flipped = predict_masks(zoom_sam, img[1][:, ::-1].copy(), boxes=mirrored, tta=8)
    np.testing.assert_allclose(flipped.scores, eight.scores, rtol=1e-5)
    a, b = eight.masks, flipped.masks[:, :, ::-1]
    assert a.any() and np.array_equal(a, b)  # the same eight views, met in another order
    assert not np.array_equal(a, plain.masks)  # the views do change the answer of a random model
