"""Learned joins: exact features, the agglomeration, the model file and the join decision."""

from __future__ import annotations

import numpy as np
import pytest

from dendrosam.errors import CheckpointError, ConfigError, InputError, LabelError
from dendrosam.reconstruct.join_features import FEATURE_NAMES, iter_pair_tables
from dendrosam.reconstruct.join_training import JoinExamples, join_examples, train_join_model
from dendrosam.reconstruct.joins import (JoinModel, SectionObjectIds, additive_agglomeration, average_agglomeration,
                                         learned_joins)
from dendrosam.reconstruct.tracking import track
from dendrosam.reconstruct.overlap import shift_image

VS = (40.0, 10.0, 10.0)
COL = {name: i for i, name in enumerate(FEATURE_NAMES)}


def _two_sections():
    """Section 0: a 4x4 object (id 7); section 1: a 4x2 object (id 3) on its left half + 2x2 (id 5)."""
    lab = np.zeros((2, 8, 8), np.uint16)
    lab[0, 2:6, 2:6] = 7
    lab[1, 2:6, 2:4] = 3
    lab[1, 0:2, 4:6] = 5  # touches nothing of section 0
    lab[1, 4:6, 4:6] = 5
    img = np.zeros((2, 8, 8))
    img[0, 2:6, 2:6] = 1.0
    img[1, 2:6, 2:4] = 1.0
    return lab, img


def test_pair_features_are_exact():
    lab, img = _two_sections()
    (table,) = list(iter_pair_tables(lab, img, VS, ref=lab))
    assert (table.za, table.zb) == (0, 1)
    order = np.argsort(table.ref_b)  # rows come in order of the objects' first pixel
    assert table.ref_a[order].tolist() == [7, 7] and table.ref_b[order].tolist() == [3, 5]
    assert table.count[order].tolist() == [8, 4]
    f = table.features[order]
    np.testing.assert_allclose(f[:, COL["gap"]], [1, 1])
    np.testing.assert_allclose(f[:, COL["log_area_a"]], np.log([1600, 1600]))  # 16 px * 100 nm²
    np.testing.assert_allclose(f[:, COL["log_area_b"]], np.log([800, 800]))
    np.testing.assert_allclose(f[:, COL["frac_a"]], [0.5, 0.25])
    np.testing.assert_allclose(f[:, COL["frac_b"]], [1.0, 0.5])
    np.testing.assert_allclose(f[:, COL["iou"]], [0.5, 4 / 20])
    np.testing.assert_allclose(f[:, COL["rel_best_a"]], [1.0, 0.5])
    np.testing.assert_allclose(f[:, COL["is_best_a"]], [1, 0])
    np.testing.assert_allclose(f[:, COL["covered_a"]], [0.75, 0.75])
    np.testing.assert_allclose(f[:, COL["log_partners_a"]], np.log([2, 2]))
    np.testing.assert_allclose(f[:, COL["log_area_ratio"]], np.log([2, 2]))
    # centroids (3.5, 3.5) vs (3.5, 2.5) and (2.5, 4.5), over sqrt(8)
    np.testing.assert_allclose(f[:, COL["centroid_distance"]], [1 / np.sqrt(8), 0.5])
    # z-scored per section: section 0 is 1 on 16 of 64 px, section 1 on 8 of 64
    z0 = (1 - 0.25) / np.sqrt(0.25 * 0.75)
    z1_in, z1_out = (1 - 0.125) / np.sqrt(0.125 * 0.875), -0.125 / np.sqrt(0.125 * 0.875)
    np.testing.assert_allclose(f[:, COL["intensity_diff"]], [z0 - z1_in, z0 - z1_out])
    np.testing.assert_allclose(f[:, COL["texture_diff"]], [0, 0], atol=1e-12)
    # object 5 is two 2x2 squares 2 px apart: 8 px in a convex hull of 12; no pixel is darker than -1 SD
    np.testing.assert_allclose(f[:, COL["solidity_a"]], [1, 1])
    np.testing.assert_allclose(f[:, COL["solidity_b"]], [1, 8 / 12])
    np.testing.assert_allclose(f[:, [COL["dark_fraction_a"], COL["dark_fraction_b"]]], 0)


def test_features_do_not_depend_on_pixel_size_contrast_or_ids_except_areas():
    lab, img = _two_sections()
    (a,) = list(iter_pair_tables(lab, img, VS))
    relab = np.where(lab > 0, lab.astype(np.uint64) + 2**40, 0)
    (b,) = list(iter_pair_tables(relab, 1000.0 + 37.0 * img, (50.0, 4.0, 4.0)))
    area = [COL["log_area_a"], COL["log_area_b"], COL["log_overlap"]]
    other = [i for i in range(len(FEATURE_NAMES)) if i not in area]
    np.testing.assert_allclose(a.features[:, other], b.features[:, other], atol=1e-12)
    np.testing.assert_allclose(a.features[:, area] - b.features[:, area], np.log(100 / 16))


def test_pairs_reach_max_gap_and_use_the_tracker_shifts():
    lab = np.zeros((3, 16, 16), np.uint8)
    lab[:, 4:10, 4:10] = 1
    lab[1] = shift_image(lab[0], 5, 0)  # section 1 moved down by 5: overlaps 1 row only
    img = np.random.default_rng(0).random(lab.shape)
    pairs = [(t.za, t.zb, int(t.count.sum())) for t in iter_pair_tables(lab, img, VS, max_gap=2)]
    assert pairs == [(0, 1, 6), (0, 2, 36), (1, 2, 6)]
    shifts = np.array([[0, 0], [-5, 0], [0, 0]])
    pairs = [(t.za, t.zb, int(t.count.sum())) for t in iter_pair_tables(lab, img, VS, shifts=shifts, max_gap=1)]
    assert pairs == [(0, 1, 36), (1, 2, 36)]
    with pytest.raises(LabelError, match="image shape"):
        list(iter_pair_tables(lab, img[:2], VS))


def test_average_agglomeration_pools_edges_and_stops():
    # two edges 1-2 pooled by weight: (0.9 * 1 + 0.3 * 3) / 4 = 0.45
    edges = np.array([[1, 2], [2, 1], [3, 4], [4, 5], [3, 5]])
    p = np.array([0.9, 0.3, 0.8, 0.7, 0.1])
    w = np.array([1.0, 3.0, 1.0, 1.0, 1.0])
    assert average_agglomeration(6, edges, p, w, stop=0.5).tolist() == [0, 1, 2, 3, 3, 5]
    # after {3,4}: {3,4}-5 = mean(0.7, 0.1) = 0.4
    assert average_agglomeration(6, edges, p, w, stop=0.39).tolist() == [0, 1, 1, 3, 3, 3]
    assert average_agglomeration(6, edges, p, w, stop=1.0).tolist() == list(range(6))
    assert average_agglomeration(3, np.zeros((0, 2), int), np.zeros(0), np.zeros(0)).tolist() == [0, 1, 2]


def test_additive_agglomeration_sums_log_odds_so_confident_repulsion_wins():
    logit = lambda q: np.log(q / (1 - q))  # noqa: E731
    # 1-2 pooled: 1 * logit 0.9 + 3 * logit 0.3 = 2.197 - 2.542 < 0, while the average (0.45) is too
    edges = np.array([[1, 2], [2, 1], [3, 4], [4, 5], [3, 5]])
    p = np.array([0.9, 0.3, 0.8, 0.7, 0.1])
    w = np.array([1.0, 3.0, 1.0, 1.0, 1.0])
    assert 1 * logit(0.9) + 3 * logit(0.3) < 0
    # {3,4} (logit 0.8 = 1.386) first; then {3,4}-5: logit 0.7 + logit 0.1 = 0.847 - 2.197 < 0
    assert additive_agglomeration(6, edges, p, w).tolist() == [0, 1, 2, 3, 3, 5]
    # where many mild "join" edges meet one confident "apart" edge the two rules differ
    edges = np.array([[1, 2], [2, 3], [1, 3]])
    p, w = np.array([0.9, 0.6, 0.01]), np.array([1.0, 10.0, 1.0])
    assert average_agglomeration(4, edges, p, w).tolist() == [0, 1, 1, 1]  # {1,2}-3 = 6.01 / 11 >= 0.5
    assert additive_agglomeration(4, edges, p, w).tolist() == [0, 1, 2, 2]  # 1-{2,3}: 2.197 - 4.595 < 0
    # stop moves the zero point: at stop 0.55 the 0.6 edges (logit 0.405 - 0.201 > 0) still join, at 0.65 not
    assert additive_agglomeration(4, edges[1:2], p[1:2], w[1:2], stop=0.55).tolist() == [0, 1, 2, 2]
    assert additive_agglomeration(4, edges[1:2], p[1:2], w[1:2], stop=0.65).tolist() == [0, 1, 2, 3]
    # probabilities of exactly 0 and 1 are clipped, not infinite
    assert additive_agglomeration(3, np.array([[0, 1], [1, 2]]), np.array([1.0, 0.0]),
                                  np.ones(2)).tolist() == [0, 0, 2]


def _iou_model(threshold: float) -> JoinModel:
    """A one-member 'MLP' whose logit is 50 * (iou - threshold): joins pairs with IoU > threshold."""
    n = len(FEATURE_NAMES)
    w = np.zeros((1, n))
    w[0, COL["iou"]] = 50.0
    return JoinModel(np.zeros(n), np.ones(n), (((w, np.array([-50.0 * threshold])),),), {"name": "iou"})


def test_section_object_ids_number_every_2d_object_once():
    labels2d = np.zeros((3, 4, 5), np.uint16)
    labels2d[0, 0, 3], labels2d[0, 2, 1] = 9, 4  # numbered in order of first pixel: 9 -> 1, 4 -> 2
    labels2d[2, 1:3, 1:3] = 700
    ids = SectionObjectIds(labels2d)
    assert ids.n_objects == 3 and ids.offsets.tolist() == [0, 2, 2] and ids.shape == (3, 4, 5) and len(ids) == 3
    assert ids[0][0, 3] == 1 and ids[0][2, 1] == 2 and ids[0].sum() == 3
    assert not ids[1].any() and ids[-1][1:3, 1:3].tolist() == [[3, 3], [3, 3]] and ids[2].sum() == 12
    np.testing.assert_array_equal(ids[:], np.stack([ids[0], ids[1], ids[2]]))
    assert ids[1:1].shape == (0, 4, 5) and ids[0].dtype == np.uint32
    with pytest.raises(IndexError):
        ids[3]
    with pytest.raises(LabelError, match="Z, Y, X"):
        SectionObjectIds(np.zeros((4, 5), np.uint8))


def test_starting_from_2d_objects_lets_the_model_undo_a_tracker_link():
    # a 6 x 6 square in z0 and a 6 x 3 half of it in z1 (IoU 0.5): the tracker links them (mutual best
    # overlap); a model that joins only pairs with IoU > 0.6 keeps that link when it starts from the
    # tracker's objects and cuts it when it starts from the 2D objects
    labels2d = np.zeros((2, 8, 8), np.uint8)
    labels2d[0, 1:7, 1:7] = 3
    labels2d[1, 1:7, 1:4] = 5
    img = np.random.default_rng(0).random(labels2d.shape)
    tracked = track(labels2d, VS)
    assert tracked.n_objects == 1
    kept = learned_joins(labels2d, img, np.asarray(tracked.labels), VS, model=_iou_model(0.6))
    assert kept.lut.tolist() == [0, 1] and kept.n_pairs == 0  # nothing left to score
    ids = SectionObjectIds(labels2d)
    cut = learned_joins(labels2d, img, ids, VS, model=_iou_model(0.6), n_objects=ids.n_objects)
    assert cut.lut.tolist() == [0, 1, 2] and cut.n_pairs == 1
    joined = learned_joins(labels2d, img, ids, VS, model=_iou_model(0.4))
    assert joined.lut[ids[:]].max() == 1 and (joined.lut[ids[:]] > 0).sum() == 36 + 18


def test_a_model_of_the_earlier_19_features_reads_the_leading_columns(tmp_path):
    rng = np.random.default_rng(2)
    members = (((rng.normal(size=(4, 19)), rng.normal(size=4)), (rng.normal(size=(1, 4)), rng.normal(size=1))),)
    JoinModel(rng.normal(size=19), rng.random(19) + 0.5, members, {}).save(tmp_path / "old.npz")
    old = JoinModel.load(tmp_path / "old.npz")
    x = rng.normal(size=(6, len(FEATURE_NAMES)))
    assert len(FEATURE_NAMES) == 23 and FEATURE_NAMES[19:] == ("solidity_a", "dark_fraction_a", "solidity_b",
                                                                 "dark_fraction_b")
    np.testing.assert_array_equal(old.predict(x), old.predict(x[:, :19]))
    JoinModel(rng.normal(size=20), np.ones(20), members, {}).save(tmp_path / "odd.npz")
    with pytest.raises(CheckpointError, match="not for 23 features"):
        JoinModel.load(tmp_path / "odd.npz")


def test_model_round_trip_and_bad_files(tmp_path):
    rng = np.random.default_rng(1)
    n = len(FEATURE_NAMES)
    members = tuple(((rng.normal(size=(4, n)), rng.normal(size=4)), (rng.normal(size=(1, 4)), rng.normal(size=1)))
                    for _ in range(2))
    model = JoinModel(rng.normal(size=n), rng.random(n) + 0.5, members, {"trained_on": "x"})
    model.save(tmp_path / "m.npz")
    back = JoinModel.load(tmp_path / "m.npz")
    x = rng.normal(size=(7, n))
    np.testing.assert_array_equal(back.predict(x), model.predict(x))
    assert back.card == {"trained_on": "x"}
    # hand-computed forward pass of the two members
    h = [np.maximum(((x - model.mean) / model.std) @ w0.T + b0, 0) @ w1.T + b1 for (w0, b0), (w1, b1) in members]
    np.testing.assert_allclose(model.predict(x), np.mean([1 / (1 + np.exp(-v[:, 0])) for v in h], 0))
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(CheckpointError, match="cannot read join model"):
        JoinModel.load(tmp_path / "bad.npz")
    np.savez(tmp_path / "other.npz", mean=np.zeros(3))
    with pytest.raises(CheckpointError, match="not a dendrosam join model"):
        JoinModel.load(tmp_path / "other.npz")


def test_learned_joins_merges_what_the_model_says_and_renumbers():
    # one neuron split by the tracker into 3D objects 1 (z 0-1) and 3 (z 2-3); object 2 elsewhere
    labels2d = np.zeros((4, 10, 10), np.uint8)
    labels2d[:, 1:7, 1:7] = 1
    labels2d[:, 7:9, 7:9] = 2
    labels3d = np.zeros((4, 10, 10), np.uint32)
    labels3d[:2, 1:7, 1:7] = 1
    labels3d[2:, 1:7, 1:7] = 3
    labels3d[:, 7:9, 7:9] = 2
    labels2d[3, 1:7, 1:4] = 0  # section 3 only covers half: IoU 0.5 with section 1 and 2
    labels3d[3, 1:7, 1:4] = 0
    img = np.random.default_rng(0).random(labels2d.shape)
    res = learned_joins(labels2d, img, labels3d, VS, model=_iou_model(0.9))
    assert res.lut.tolist() == [0, 1, 2, 1] and res.n_objects == 2
    assert res.n_pairs == 3  # z1-z2, z0-z2, z1-z3 (gap 2): the only pairs of different objects
    res = learned_joins(labels2d, img, labels3d, VS, model=_iou_model(0.9), max_gap=1, n_objects=3)
    assert res.n_pairs == 1
    # nothing joins when every pair is scored below stop
    assert learned_joins(labels2d, img, labels3d, VS, model=_iou_model(1.5)).lut.tolist() == [0, 1, 2, 3]
    with pytest.raises(ConfigError, match="stop"):
        learned_joins(labels2d, img, labels3d, VS, model=_iou_model(0.9), stop=0.0)
    # additive: z1-z2 and z0-z2 (36 px, p ~ 1) outweigh z1-z3 (18 px, p ~ 0, clipped to 1e-6)
    res = learned_joins(labels2d, img, labels3d, VS, model=_iou_model(0.9), linkage="additive")
    assert res.lut.tolist() == [0, 1, 2, 1]
    with pytest.raises(ConfigError, match="linkage"):
        learned_joins(labels2d, img, labels3d, VS, model=_iou_model(0.9), linkage="single")


def test_training_learns_a_separable_rule_and_is_deterministic():
    rng = np.random.default_rng(0)
    n = len(FEATURE_NAMES)
    x = rng.normal(size=(400, n))
    y = (x[:, COL["iou"]] + 0.5 * x[:, COL["intensity_diff"]] > 0).astype(np.float64)
    ex = JoinExamples(x, y, np.ones(400))
    m1 = train_join_model(ex, members=2, hidden=8, steps=200)
    m2 = train_join_model(ex, members=2, hidden=8, steps=200)
    np.testing.assert_array_equal(m1.predict(x), m2.predict(x))
    acc = ((m1.predict(x) > 0.5) == (y > 0.5)).mean()
    assert acc > 0.95
    assert m1.card["n_pairs"] == 400 and m1.card["members"] == 2


def test_join_examples_labels_pairs_by_majority_gt():
    lab, img = _two_sections()
    gt = np.zeros_like(lab, dtype=np.uint32)
    gt[:, :, :4] = 10  # object 3 and the left half of object 7 are neuron 10
    gt[:, :, 4:] = 20
    gt[0, 2:6, 2:6] = 10  # object 7 is all neuron 10; object 5 is neuron 20
    ex = join_examples(lab, img, gt, VS)
    assert sorted(zip(ex.weights.tolist(), ex.labels.tolist())) == [(400.0, 0.0), (800.0, 1.0)]  # nm², 10 nm px
    with pytest.raises(InputError, match="nothing to train"):
        join_examples(lab, img, np.zeros_like(gt), VS)


def test_the_shipped_model_loads_with_its_card():
    from dendrosam.reconstruct.joins import DEFAULT_JOIN_MODEL, default_join_model

    model = default_join_model()
    assert model.trees is not None and model.card["classifier"] == "trees"
    assert model.card["features"] == list(FEATURE_NAMES) and model.contacts.trees is not None
    # trained on the default (per-profile) SAM's masks, with a second stage that reads the first's context
    assert model.card["command"].endswith("--only joins --join-stages 2") and model.card["stop"] == 0.5
    assert model.card["sam"] == "pieces" and model.card["stages"] == 2 and model.context is not None
    held = model.card["heldout_medulla[::4,:,125:]"]
    # on the held-out crop the joins lower both VI and ARAND (the recipe's own measurement)
    vi = {k: v["voi_split"] + v["voi_merge"] for k, v in held.items()}
    assert vi["tracker+joins"] < vi["tracker"] and held["tracker+joins"]["arand"] < held["tracker"]["arand"]
    # and starting from the 2D objects with contacts (the pipeline's default) does better than from the tracks
    fill = model.card["heldout_medulla[::4,:,125:]+fill"]
    best, old = fill["sections+joins+contacts"], fill["tracker+joins"]
    assert best["voi_split"] + best["voi_merge"] < old["voi_split"] + old["voi_merge"] and best["arand"] < old["arand"]
    assert DEFAULT_JOIN_MODEL.stat().st_size < 800_000  # 2 stages x 2 x 200 trees of up to 31 leaves


def test_pooling_pairs_in_batches_changes_nothing(monkeypatch):
    """Scored pairs are pooled per object pair whenever many are pending (bounded memory): same answer."""
    from dendrosam.reconstruct import joins

    rng = np.random.default_rng(3)
    labels2d = rng.integers(0, 6, (6, 12, 12)).astype(np.uint8)
    labels3d = (labels2d.astype(np.uint32) + 6 * (np.arange(6)[:, None, None] // 2)) * (labels2d > 0)
    img = rng.random(labels2d.shape)
    model = _iou_model(0.1)
    whole = learned_joins(labels2d, img, labels3d, VS, model=model, stop=0.3)
    monkeypatch.setattr(joins, "_POOL_EVERY", 1)
    batched = learned_joins(labels2d, img, labels3d, VS, model=model, stop=0.3)
    assert whole.lut.tolist() == batched.lut.tolist() and whole.n_pairs == batched.n_pairs > 0
    assert 1 < whole.n_objects < int(labels3d.max())


def test_extreme_features_give_probabilities_without_overflow_warnings():
    import warnings

    model = _iou_model(0.5)
    x = np.zeros((3, len(FEATURE_NAMES)))
    x[:, COL["iou"]] = [-1e6, 0.5, 1e6]  # logits -5e7, 0, +5e7
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert model.predict(x).tolist() == [0.0, 0.5, 1.0]
