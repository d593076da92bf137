"""segment_slices end to end: GT prompts, detector prompts (untrained YOLO), zarr output."""

from __future__ import annotations

import numpy as np
import pytest

from dendrosam.segment.api import SegmentConfig, segment_slices


def test_gt_boxes_one_label_per_object(tiny_sam, blobs):
    img, gt = blobs
    res = segment_slices(img, tiny_sam, prompts="gt-boxes", gt=gt, progress=False,
                         config=SegmentConfig(min_size=1))
    assert res.labels.shape == gt.shape and res.labels.dtype == np.uint32
    assert len(res.table) == 9 and sorted(set(res.table.z)) == [0, 1, 2]
    # labels carry the GT id that prompted them; every kept id is a GT id
    kept = res.table[res.table.id > 0]
    assert set(kept.id) <= {10, 20, 30}
    for z in range(3):
        assert set(np.unique(res.labels[z])) - {0} == set(kept[kept.z == z].id)
    first = res.table.iloc[0]
    assert (first.x0, first.y0, first.x1, first.y1) == (18.0, 18.0, 43.0, 43.0)


def test_overlap_rule_reaches_the_painting(tiny_sam, blobs, monkeypatch):
    import dendrosam.segment.masks as masks

    seen, paint = [], masks.masks_to_labels

    def spy(*args, **kwargs):
        seen.append(kwargs["overlap"])
        return paint(*args, **kwargs)

    monkeypatch.setattr(masks, "masks_to_labels", spy)
    img, gt = blobs
    segment_slices(img, tiny_sam, prompts="gt-boxes", gt=gt, progress=False, config=SegmentConfig(overlap="smaller"))
    assert seen == ["smaller"] * 3


def test_gt_points_zarr_output(tiny_sam, blobs, tmp_path):
    import zarr

    img, gt = blobs
    res = segment_slices(img, tiny_sam, prompts="gt-points", gt=gt, progress=False,
                         out=tmp_path / "labels.zarr")
    mem = segment_slices(img, tiny_sam, prompts="gt-points", gt=gt, progress=False)
    assert np.array_equal(zarr.open_array(tmp_path / "labels.zarr")[:], mem.labels)
    assert res.table.equals(mem.table)


def test_detector_mode_untrained_yolo(tiny_sam, blobs):
    from dendrosam.segment.detector import detect, load_detector

    det = load_detector("yolov8n.yaml", device="cpu")
    img, _ = blobs
    boxes = detect(det, img[0], conf=0.0)  # untrained: boxes only at a zero threshold
    assert boxes.xyxy.dtype == np.float32 and boxes.xyxy.shape[1] == 4
    assert (boxes.xyxy[:, 2] <= 128).all() and (boxes.xyxy[:, 3] <= 96).all()
    tiled = detect(det, img[0], conf=0.0, tile=64, overlap=16)
    assert len(tiled) > 0 and (tiled.xyxy[:, 2] <= 128).all()
    res = segment_slices(img[:1], tiny_sam, det, progress=False,
                         config=SegmentConfig(conf=0.99))  # nothing passes: the empty path
    assert res.labels.sum() == 0 and len(res.table) == 0
    res = segment_slices(img[:1], tiny_sam, det, progress=False,
                         config=SegmentConfig(conf=0.0, max_det=5))
    assert 0 < len(res.table) <= 5 and (res.table.detector_score >= 0).all()


def test_user_errors(tiny_sam, blobs, tmp_path):
    from dendrosam.errors import CheckpointError, ConfigError, InputError
    from dendrosam.segment.detector import load_detector

    img, gt = blobs
    with pytest.raises(ConfigError, match="needs a detector"):
        segment_slices(img, tiny_sam, progress=False)
    with pytest.raises(ConfigError, match="needs ground-truth"):
        segment_slices(img, tiny_sam, prompts="gt-boxes", progress=False)
    with pytest.raises(InputError, match="does not match"):
        segment_slices(img, tiny_sam, prompts="gt-boxes", gt=gt[:2], progress=False)
    with pytest.raises(ConfigError, match="not one of"):
        segment_slices(img, tiny_sam, prompts="boxes", progress=False)
    with pytest.raises(ConfigError, match="overlap: 'largest' is not one of score, smaller"):
        segment_slices(img, tiny_sam, prompts="gt-boxes", gt=gt, config=SegmentConfig(overlap="largest"),
                       progress=False)
    (tmp_path / "sam.pt").write_bytes(b"x")
    with pytest.raises(CheckpointError, match="not an ultralytics YOLO checkpoint"):
        load_detector(tmp_path / "sam.pt", device="cpu")


def test_fill_makes_labels_dense_and_keeps_prompted_masks(tiny_sam, blobs):
    img, gt = blobs
    sparse = segment_slices(img, tiny_sam, prompts="gt-boxes", gt=gt, progress=False)
    dense = segment_slices(img, tiny_sam, prompts="gt-boxes", gt=gt, progress=False,
                           config=SegmentConfig(fill=True, fill_seed_distance=8))
    assert (dense.labels > 0).all()
    painted = sparse.labels > 0
    assert np.array_equal(dense.labels[painted], sparse.labels[painted])  # masks only grow
    assert dense.table.equals(sparse.table)  # fill objects have no prompt
    for z in range(3):  # new objects are numbered after the prompts' ids
        new = np.setdiff1d(np.unique(dense.labels[z]), np.unique(sparse.labels[z]))
        assert new.size and new.min() > sparse.labels[z].max()


def test_cut_splits_masks_into_pieces_before_the_fill(tiny_sam, blobs_two_interiors, whole_box_masks):
    from dendrosam.errors import ConfigError
    from dendrosam.segment.masks import split_at_interiors

    img, gt = blobs_two_interiors
    whole = segment_slices(img, tiny_sam, prompts="gt-boxes", gt=gt, progress=False)
    cut = segment_slices(img, tiny_sam, prompts="gt-boxes", gt=gt, progress=False,
                         config=SegmentConfig(cut=True, cut_h=0.5))
    dense = segment_slices(img, tiny_sam, prompts="gt-boxes", gt=gt, progress=False,
                           config=SegmentConfig(cut=True, cut_h=0.5, fill=True, fill_seed_distance=8))
    assert cut.table.equals(whole.table)  # the largest piece keeps the prompt's id
    n_pieces = 0
    for z in range(len(img)):
        expected = split_at_interiors(whole.labels[z], img[z], h=0.5)
        assert np.array_equal(cut.labels[z], expected)
        assert set(np.unique(whole.labels[z])) <= set(np.unique(cut.labels[z]))
        n_pieces += len(np.unique(cut.labels[z])) - len(np.unique(whole.labels[z]))
        painted = cut.labels[z] > 0
        assert np.array_equal(dense.labels[z][painted], cut.labels[z][painted])  # fill after the cut
    assert n_pieces == 3  # one per section: the two interiors of disc 20 are now apart
    assert (whole.labels[:, 59, 81] == whole.labels[:, 59, 98]).all()
    assert (cut.labels[:, 59, 81] != cut.labels[:, 59, 98]).all()
    with pytest.raises(ConfigError, match="--cut-h must be > 0"):
        segment_slices(img, tiny_sam, prompts="gt-boxes", gt=gt, config=SegmentConfig(cut=True, cut_h=0),
                       progress=False)
