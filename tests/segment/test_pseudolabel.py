"""Pseudo-labels: confident masks become per-section labels; thresholds filter them."""

from __future__ import annotations

import numpy as np
import pytest

from dendrosam.errors import InputError
from dendrosam.segment.pseudolabel import PseudoLabelConfig, pseudolabel_volume


def test_pseudolabels_from_boxes(zoom_sam):
    raw = np.full((2, 48, 48), 50, np.uint8)
    raw[:, 10:30, 12:28] = 200
    boxes = [np.array([[12.0, 10.0, 28.0, 30.0]]), np.zeros((0, 4))]
    keep_all = pseudolabel_volume(raw, zoom_sam, boxes=boxes,
                                  config=PseudoLabelConfig(min_score=-1e9, min_area=0))
    assert keep_all.labels.shape == raw.shape and keep_all.labels.dtype == np.uint32
    assert keep_all.proposed == 1 and not keep_all.labels[1].any()
    assert keep_all.kept == int(keep_all.labels[0].any())
    none = pseudolabel_volume(raw, zoom_sam, boxes=boxes, config=PseudoLabelConfig(min_score=1e9))
    assert none.kept == 0 and not none.labels.any()
    with pytest.raises(InputError, match="detector or prompt boxes"):
        pseudolabel_volume(raw, zoom_sam)
