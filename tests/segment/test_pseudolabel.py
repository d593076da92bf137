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


def test_stability_score_counts_the_threshold_band():
    import torch

    from dendrosam.segment.decode import stability_score

    lg = torch.zeros((3, 4, 4))
    lg[0] = 5.0  # every logit far from the threshold: perfectly stable
    lg[1, :2] = 5.0  # 8 sure pixels ...
    lg[1, 2:, :2] = 0.5  # ... and 4 within the +-1 band: 8 / 12
    lg[1, 2:, 2:] = -5.0  # outside
    lg[2] = -5.0  # empty mask
    np.testing.assert_allclose(stability_score(lg, 0.0), [1.0, 8 / 12, 0.0], rtol=1e-6)


def test_predicted_masks_carry_stability_and_the_filter_uses_it(zoom_sam):
    from dendrosam.segment.predict import predict_masks

    raw = np.full((2, 48, 48), 50, np.uint8)
    raw[:, 10:30, 12:28] = 200
    boxes = [np.array([[12.0, 10.0, 28.0, 30.0], [30.0, 30.0, 46.0, 46.0]])] * 2
    pm = predict_masks(zoom_sam, raw[0], boxes=boxes[0])
    assert pm.stability.shape == (2,) and ((pm.stability >= 0) & (pm.stability <= 1)).all()
    loose = PseudoLabelConfig(min_score=-1e9, min_stability=0.0, min_area=0)
    everything = pseudolabel_volume(raw, zoom_sam, boxes=boxes, config=loose)
    assert everything.proposed == 4
    assert everything.kept == int(sum(c.any() for c in pm.crops)) * 2
    assert np.isclose(everything.mean_stability, pm.stability[[c.any() for c in pm.crops]].mean())
    strict = pseudolabel_volume(raw, zoom_sam, boxes=boxes,
                                config=PseudoLabelConfig(min_score=-1e9, min_stability=1.01, min_area=0))
    assert strict.proposed == 4 and strict.kept == 0 and not strict.labels.any()


def test_rounds_retrain_sam_and_detector_and_write_a_metrics_line(tmp_path, zoom_sam):
    """Two rounds on a tiny unlabelled volume: labels, checkpoints, detector weights, metrics lines."""
    import json

    import tifffile

    from dendrosam.segment.detector import load_detector
    from dendrosam.segment.pseudolabel import pseudolabel_rounds
    from dendrosam.segment.sam import load_sam, save_sam_checkpoint
    from dendrosam.segment.train_detector import DetectorTrainConfig
    from dendrosam.segment.train_sam import DataSpec, TrainSamConfig

    rng = np.random.default_rng(0)
    raw = rng.normal(60, 8, (6, 64, 64))
    lab = np.zeros(raw.shape, np.uint16)
    for z in range(6):
        for k, (y, x) in enumerate(rng.integers(6, 44, (3, 2))):
            lab[z, y:y + 14, x:x + 14], raw[z, y:y + 14, x:x + 14] = k + 1, 190
    raw = np.clip(raw, 0, 255).astype(np.uint8)
    tifffile.imwrite(tmp_path / "raw.tif", raw, photometric="minisblack")
    tifffile.imwrite(tmp_path / "lab.tif", lab, photometric="minisblack")
    sam_path = tmp_path / "sam.pt"
    save_sam_checkpoint(sam_path, zoom_sam.model, zoom_sam.arch)
    val = DataSpec(str(tmp_path / "raw.tif"), str(tmp_path / "lab.tif"), "4:6", "val")
    cfg = TrainSamConfig(train_data=(val,), val_data=(val,), work_dir=str(tmp_path / "unused"), steps=2,
                         batch_size=2, warmup=1, val_every=100, checkpoint_every=2, threads=1)
    keep_all = PseudoLabelConfig(min_score=-1e9, min_stability=0.0, min_area=1, conf=0.0)
    lines = pseudolabel_rounds(str(tmp_path / "raw.tif"), str(sam_path), tmp_path / "pl", 2, cfg,
                               detector_path="yolov8n.yaml", config=keep_all, region="0:4",
                               detector_config=DetectorTrainConfig(epochs=1, imgsz=64, batch=4))
    assert [x["round"] for x in lines] == [1, 2]
    on_disk = [json.loads(x) for x in (tmp_path / "pl" / "pseudolabel_metrics.jsonl").read_text().splitlines()]
    assert on_disk == lines
    for r, line in enumerate(lines, start=1):
        labels = tifffile.imread(tmp_path / "pl" / f"round{r}_labels.tif")
        assert labels.shape == (4, 64, 64)  # the region, not the whole volume
        n_objects = sum(len(np.unique(s[s > 0])) for s in labels)
        assert 0 < n_objects <= line["kept"] <= line["proposed"]
        assert line["improved"] == (line["val_iou_after"] > line["val_iou_before"])
        assert 0.0 <= line["det_recall_after"] <= 1.0
        assert line["detector_improved"] == (line["det_recall_after"] > line["det_recall_before"])
        assert load_sam(line["checkpoint"], device="cpu").arch.name == "tiny_zoom"
        assert load_detector(line["detector"], device="cpu").imgsz == 64
    assert lines[1]["val_iou_before"] == lines[0]["val_iou_after"]
    assert lines[1]["det_recall_before"] == lines[0]["det_recall_after"]
