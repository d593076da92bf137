"""Low-res logits -> cropped masks: equal to full-size resampling, without building it."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from dendrosam.segment.decode import crop_to_bbox, logits_to_crops, select_best


def _blobs_logits(
    n: int, size: int, seed: int, extent: tuple[int, int] | None = None
) -> torch.Tensor:
    """Cone-shaped logits, one positive disc per mask centred in ``extent``; the last is empty."""
    g = torch.Generator().manual_seed(seed)
    low = torch.full((n, size, size), -5.0)
    yy, xx = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    for i in range(n - 1):
        cy, cx = (torch.rand(2, generator=g) * torch.tensor(extent or (size, size))).tolist()
        r = 1.0 + float(torch.rand(1, generator=g)) * size / 6
        low[i] = 3.0 - ((yy - cy) ** 2 + (xx - cx) ** 2).float().sqrt() * 3.0 / r
    return low


def _dense(pieces, shape):
    out = np.zeros((len(pieces), *shape), bool)
    for k, (crop, (y0, x0, y1, x1)) in enumerate(pieces):
        out[k, y0:y1, x0:x1] = crop
    return out


@pytest.mark.parametrize("window", [(64, 64), (40, 64), (64, 23)])
def test_crops_equal_sam_postprocess_when_not_resized(window):
    # Window long side == img_size: SAM's postprocess is one bilinear step, like ours.
    h, w = window
    low = _blobs_logits(6, 16, seed=sum(window), extent=(h // 4, w // 4))
    input_size = (h, w)
    full = F.interpolate(low[:, None], (64, 64), mode="bilinear", align_corners=False)
    full = full[..., :h, :w][:, 0]
    pieces = logits_to_crops(low, 0.0, input_size, window, 64, origin=(5, 7))
    got = _dense(pieces, (h + 5, w + 7))[:, 5:, 7:]
    near = full.abs().numpy() < 1e-4  # float rounding may flip pixels on the threshold
    assert np.array_equal(got[~near], (full > 0).numpy()[~near])
    assert got[-1].sum() == 0 and pieces[-1][1] == (5, 7, 5, 7)
    nonempty = [(c, bb) for c, bb in pieces if c.size]
    assert len(nonempty) == 5
    for crop, (y0, x0, y1, x1) in nonempty:  # tight boxes
        assert crop.shape == (y1 - y0, x1 - x0) and crop[0].any() and crop[:, -1].any()


def test_crops_match_sam_postprocess_when_upsampled(zoom_sam):
    # A 48 x 30 window resized to 128 x 80 in a 128 px input: SAM resamples twice, we once.
    low = _blobs_logits(5, 32, seed=3, extent=(32, 20))
    got = _dense(logits_to_crops(low, 0.0, (128, 80), (48, 30), 128), (48, 30))
    ref = zoom_sam.model.postprocess_masks(low[:, None], (128, 80), (48, 30))[:, 0] > 0
    ref = ref.numpy()
    inter, union = (got & ref).sum((1, 2)), (got | ref).sum((1, 2))
    some = union > 0
    assert union[-1] == 0 and some.sum() == 4
    assert (inter[some] / union[some]).min() > 0.95


def test_select_best_and_crop_to_bbox():
    masks = torch.arange(2 * 4 * 2 * 2, dtype=torch.float32).reshape(2, 4, 2, 2)
    iou = torch.tensor([[0.9, 0.1, 0.7, 0.2], [0.0, 0.3, 0.2, 0.8]])
    m, s = select_best(masks, iou, multimask=True)
    assert s.tolist() == pytest.approx([0.7, 0.8]) and torch.equal(m[1], masks[1, 3])
    m, s = select_best(masks, iou, multimask=False)
    assert s.tolist() == pytest.approx([0.9, 0.0]) and torch.equal(m[0], masks[0, 0])
    crop, bb = crop_to_bbox(np.zeros((3, 3), bool), 4, 5)
    assert crop.shape == (0, 0) and bb == (4, 5, 4, 5)
