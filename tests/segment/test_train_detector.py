"""YOLO labels from masks round-trip exactly; a 1-epoch training writes weights that load."""

from __future__ import annotations

import numpy as np

from dendrosam.segment.train_data import box_of_masks
from dendrosam.segment.train_detector import (
    DetectorTrainConfig,
    masks_to_yolo,
    train_detector,
    write_yolo_dataset,
    yolo_to_boxes,
)


def test_masks_to_yolo_round_trips_every_box():
    rng = np.random.default_rng(3)
    lab = np.zeros((90, 130), np.int32)
    for k in range(1, 8):
        y, x = rng.integers(0, 80, 1)[0], rng.integers(0, 120, 1)[0]
        lab[y:y + rng.integers(2, 10), x:x + rng.integers(2, 10)] = k
    ids, boxes, _ = box_of_masks(lab)
    rows = masks_to_yolo(lab, min_size=1)
    assert rows.shape == (len(ids), 5) and (rows[:, 0] == 0).all()
    assert ((rows[:, 1:] >= 0) & (rows[:, 1:] <= 1)).all()
    np.testing.assert_allclose(yolo_to_boxes(rows, lab.shape), boxes, atol=1e-9)
    small = (boxes[:, 2:] - boxes[:, :2] < 4).any(axis=1)
    assert len(masks_to_yolo(lab, min_size=4)) == int((~small).sum())


def test_one_epoch_training_writes_loadable_weights(tmp_path):
    from dendrosam.segment.detector import load_detector

    rng = np.random.default_rng(0)
    pairs = []
    for _ in range(4):
        lab = np.zeros((64, 64), np.int32)
        raw = rng.normal(100, 10, (64, 64))
        for k in range(3):
            y, x = rng.integers(5, 45, 2)
            lab[y:y + 12, x:x + 12] = k + 1
            raw[y:y + 12, x:x + 12] += 80
        pairs.append((raw, lab))
    yaml = write_yolo_dataset({"train": pairs, "val": pairs[:2]}, tmp_path / "data")
    assert len(list((tmp_path / "data" / "labels" / "train").glob("*.txt"))) == 4
    out = tmp_path / "det.pt"
    train_detector(yaml, out, DetectorTrainConfig(epochs=1, imgsz=64, batch=4, pixel_nm=7.5))
    det = load_detector(out, device="cpu")
    assert det.imgsz == 64 and det.pixel_nm == 7.5  # the training pixel size travels in the weights


def test_resample_pair_keeps_ids_and_scales_boxes_exactly():
    from dendrosam.segment.train_detector import resample_pair

    lab = np.zeros((40, 60), np.int32)
    lab[4:12, 10:30] = 3
    lab[20:36, 40:58] = 7
    raw = np.where(lab > 0, 50.0, 200.0)
    img, up = resample_pair(raw, lab, 2.0)
    assert img.shape == up.shape == (80, 120) and set(np.unique(up)) == {0, 3, 7}
    assert (up == 3).sum() == 4 * (lab == 3).sum()  # nearest: every pixel becomes 2 x 2
    # normalised YOLO rows are scale-free: the same boxes after an integer up-sampling
    np.testing.assert_allclose(masks_to_yolo(up, 1), masks_to_yolo(lab, 1), atol=1e-12)
    img, down = resample_pair(raw, lab, 0.5)
    assert down.shape == (20, 30) and (down == 7).sum() == 8 * 9


def test_box_matches_is_one_to_one_at_the_iou_threshold():
    import numpy as np

    from dendrosam.segment.train_detector import box_matches

    gt = np.array([[0, 0, 10, 10], [20, 20, 30, 30]], float)
    # IoU of [0,0,10,10] with [0,0,10,5] is exactly 0.5 (counts); two predictions on one GT box match once.
    pred = np.array([[0, 0, 10, 5], [0, 0, 10, 10], [40, 40, 50, 50]], float)
    assert box_matches(pred, gt, 0.5) == 1
    assert box_matches(pred, gt, 0.51) == 1
    assert box_matches(pred[[0]], gt, 0.51) == 0
    assert box_matches(np.zeros((0, 4)), gt) == 0


def test_model_cards_carry_no_machine_paths():
    from dendrosam.segment.train_log import portable_card

    card = {"data": [{"raw": "/srv/lab/em/medulla_fib/raw.ome.tif", "region": "::4"}], "note": "a/b"}
    assert portable_card(card) == {"data": [{"raw": "medulla_fib/raw.ome.tif", "region": "::4"}], "note": "a/b"}


def _two_profile_section():
    """Id 5 crosses the section twice (two separate profiles), id 2 once; exact boxes known."""
    lab = np.zeros((40, 60), np.int32)
    lab[2:10, 4:14] = 5
    lab[25:35, 40:52] = 5
    lab[14:20, 20:30] = 2
    return lab


def test_pieces_targets_are_one_box_per_cross_section():
    lab = _two_profile_section()
    per_id = yolo_to_boxes(masks_to_yolo(lab, 1), lab.shape)
    pieces = yolo_to_boxes(masks_to_yolo(lab, 1, pieces=True), lab.shape)
    # per id, id 5's box spans both profiles and the neurite between them
    np.testing.assert_allclose(sorted(per_id.tolist()), [[4, 2, 52, 35], [20, 14, 30, 20]], atol=1e-9)
    np.testing.assert_allclose(sorted(pieces.tolist()),
                               [[4, 2, 14, 10], [20, 14, 30, 20], [40, 25, 52, 35]], atol=1e-9)


def test_pieces_dataset_cuts_profiles_at_tile_edges(tmp_path):
    lab = np.zeros((32, 64), np.int32)
    lab[4:12, 2:60] = 1          # one profile crossing the tile edge at x = 32
    lab[20:28, 4:10] = 3
    lab[20:28, 20:26] = 3        # a second profile of id 3 in the same tile
    raw = np.where(lab > 0, 40.0, 180.0)
    write_yolo_dataset({"train": [(raw, lab)]}, tmp_path / "d", min_size=1, tile=32, pieces=True)
    rows = [np.loadtxt(f, ndmin=2) for f in sorted((tmp_path / "d" / "labels" / "train").glob("*.txt"))]
    assert [len(r) for r in rows] == [3, 1]  # left tile: the cut neurite + two profiles of id 3; right: the rest
    write_yolo_dataset({"train": [(raw, lab)]}, tmp_path / "e", min_size=1, tile=32)
    rows = [np.loadtxt(f, ndmin=2) for f in sorted((tmp_path / "e" / "labels" / "train").glob("*.txt"))]
    assert [len(r) for r in rows] == [2, 1]


def test_detector_recall_counts_per_profile_when_asked(monkeypatch):
    import dendrosam.segment.detector as detector_mod
    from dendrosam.segment.train_detector import detector_scores

    lab = _two_profile_section()

    class Boxes:  # a detector that answers exactly the three profiles' boxes
        xyxy = np.array([[4, 2, 14, 10], [20, 14, 30, 20], [40, 25, 52, 35]], float)

    monkeypatch.setattr(detector_mod, "detect", lambda det, image, conf, pixel_nm: Boxes())
    per_id = detector_scores(None, [(lab.astype(np.uint8), lab)], min_size=1)
    pieces = detector_scores(None, [(lab.astype(np.uint8), lab)], min_size=1, pieces=True)
    assert (per_id["n_gt"], per_id["recall"]) == (2, 0.5)   # id 5's spanning box matches no profile box
    assert (pieces["n_gt"], pieces["recall"], pieces["precision"]) == (3, 1.0, 1.0)
