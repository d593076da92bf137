"""Validation protocol of prompted masks: one object per GT id and section, or per connected profile."""

from __future__ import annotations

import numpy as np
import pytest

from dendrosam.segment.train_eval import ValSet, ellipse_floor, evaluate_prompted, section_pieces


def _two_profiles() -> np.ndarray:
    """One section where GT id 7 crosses twice (two 10 x 10 squares 20 px apart) and id 9 once."""
    lab = np.zeros((1, 40, 60), np.uint16)
    lab[0, 5:15, 5:15] = 7
    lab[0, 5:15, 35:45] = 7
    lab[0, 25:35, 5:15] = 9
    return lab


def _inscribed_disc_pixels(side: int) -> int:
    """Pixel centres inside the circle inscribed in a side x side box (independent of the code)."""
    c = np.arange(side) + 0.5 - side / 2
    return int(((c[:, None] ** 2 + c[None, :] ** 2) <= (side / 2) ** 2).sum())


def test_section_pieces_numbers_each_profile():
    pieces = section_pieces(_two_profiles()[0])
    assert pieces.max() == 3
    assert sorted(np.bincount(pieces.ravel())[1:].tolist()) == [100, 100, 100]
    assert len(np.unique(pieces[5:15, 5:15])) == 1 and pieces[5, 5] != pieces[5, 35]


def test_ellipse_floor_per_id_and_per_piece():
    val = ValSet("two", np.zeros((1, 40, 60), np.uint8), _two_profiles())
    disc = _inscribed_disc_pixels(10)  # 76 of 100 pixels
    # per piece: every object is a square answered by its inscribed disc
    assert ellipse_floor(val, 20, pieces=True) == pytest.approx(disc / 100)
    # per id: id 9 as above; id 7's box spans both squares (x 5-45, y 5-15), so its ellipse runs through
    # the gap between them
    yy, xx = np.mgrid[:40, :60] + 0.5
    ellipse = ((xx - 25) / 20) ** 2 + ((yy - 10) / 5) ** 2 <= 1
    squares = _two_profiles()[0] == 7
    inter = int((ellipse & squares).sum())
    iou7 = inter / (ellipse.sum() + squares.sum() - inter)
    assert ellipse_floor(val, 20) == pytest.approx((iou7 + disc / 100) / 2)
    assert iou7 < 0.4


def test_evaluate_prompted_counts_pieces(zoom_sam):
    val = ValSet("two", np.random.default_rng(0).integers(0, 255, (1, 40, 60)).astype(np.uint8), _two_profiles())
    assert evaluate_prompted(zoom_sam, val, 20)["n"] == 2
    got = evaluate_prompted(zoom_sam, val, 20, pieces=True)
    assert got["n"] == 3 and 0.0 <= got["iou_mean"] <= 1.0
