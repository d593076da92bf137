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
