"""Tiny random SAMs saved to disk, shared by the segment tests."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture(scope="session")
def tiny_sam():
    """An untrained ``tiny`` SAM on the CPU (classic path)."""
    import torch

    torch.set_num_threads(1)
    from dendrosam.segment.registry import build_sam, get_arch
    from dendrosam.segment.sam import SamModel

    return SamModel(build_sam("tiny", seed=0), get_arch("tiny"), device="cpu")


@pytest.fixture(scope="session")
def zoom_sam():
    """An untrained ``tiny_zoom`` SAM on the CPU (zoom path)."""
    from dendrosam.segment.registry import build_sam, get_arch
    from dendrosam.segment.sam import SamModel

    return SamModel(build_sam("tiny_zoom", seed=0), get_arch("tiny_zoom"), device="cpu")


@pytest.fixture
def blobs() -> tuple[np.ndarray, np.ndarray]:
    """A 3-section synthetic stack (dark discs on a bright background) and its labels."""
    yy, xx = np.mgrid[:96, :128]
    gt = np.zeros((3, 96, 128), np.uint16)
    for z in range(3):
        for k, (cy, cx, r) in enumerate([(30, 30, 12), (60, 90, 16), (70, 30, 8)], start=1):
            gt[z][(yy - cy - z) ** 2 + (xx - cx) ** 2 <= r * r] = k * 10
    img = np.where(gt > 0, 60, 200).astype(np.uint8)
    return img, gt


@pytest.fixture
def whole_box_masks(monkeypatch):
    """SAM answers each box prompt with the whole box (so masks are known without a trained SAM)."""
    from dendrosam.segment import predict

    def whole_boxes(sam, section, boxes=None, **kw):
        yxyx = np.asarray(boxes, np.int64)[:, [1, 0, 3, 2]]
        crops = tuple(np.ones((y1 - y0, x1 - x0), bool) for y0, x0, y1, x1 in yxyx)
        ones = np.ones(len(crops), np.float32)
        return predict.PromptedMasks(crops, yxyx, ones, section.shape, ones)

    monkeypatch.setattr(predict, "predict_masks", whole_boxes)


@pytest.fixture
def blobs_two_interiors(blobs):
    """:func:`blobs` with two bright interiors inside disc 20 (at (y, x) = (59, 81) and (59, 98))."""
    img, gt = blobs
    img = img.copy()
    img[:, 58:61, 80:83] = img[:, 58:61, 97:100] = 255
    return img, gt
