"""Two-stage joins: exact context features, the training graph, the second stage's decision and file."""

from __future__ import annotations

import numpy as np
import pytest

from dendrosam.errors import CheckpointError, ConfigError, InputError
from dendrosam.reconstruct.join_contacts import CONTACT_FEATURE_NAMES
from dendrosam.reconstruct.join_context import CONTEXT_FEATURE_NAMES, context_features
from dendrosam.reconstruct.join_features import FEATURE_NAMES
from dendrosam.reconstruct.join_training import (contact_examples, join_examples, join_graph,
                                                 train_two_stage)
from dendrosam.reconstruct.joins import JoinModel, SectionObjectIds, learned_joins

VS = (40.0, 10.0, 10.0)
CTX = {name: i for i, name in enumerate(CONTEXT_FEATURE_NAMES)}


def test_context_features_are_exact():
    # objects 1 (z0); 2, 3 (z1, touching); 4 (z2). Pairs 1-2 (0.9), 1-3 (0.3), 2-4 (0.8), 1-4 (gap 2, 0.6);
    # contact 2-3 (0.1)
    a, b = np.array([1, 1, 2, 1, 2]), np.array([2, 3, 4, 4, 3])
    dist, p = np.array([1, 1, 1, 2, 0]), np.array([0.9, 0.3, 0.8, 0.6, 0.1])
    f = context_features(a, b, dist, p, n_nodes=5)
    assert f.shape == (5, len(CONTEXT_FEATURE_NAMES)) == (5, 11)
    np.testing.assert_allclose(f[:, CTX["logit_p"]], np.log(p / (1 - p)))
    # 1-2: object 1's other pair towards z+1 is 1-3; object 2's other pairs towards z-1: none
    np.testing.assert_allclose(f[:, CTX["other_best_a"]], [0.3, 0.9, 0.0, 0.0, 0.0])
    np.testing.assert_allclose(f[:, CTX["other_best_b"]], [0.0, 0.0, 0.0, 0.0, 0.0])
    np.testing.assert_allclose(f[:, CTX["other_sum_a"]], [0.3, 0.9, 0.0, 0.0, 0.0])
    assert f[:, CTX["partners_a"]].tolist() == [2, 2, 1, 1, 1] and f[:, CTX["partners_b"]].tolist() == [1, 1, 1, 1, 1]
    # beyond: 1-2 -> object 1 at -1 (none), object 2 at +1 (2-4: 0.8); contact 2-3 -> each one's best contact
    np.testing.assert_allclose(f[:, CTX["beyond_best_a"]], [0.0, 0.0, 0.9, 0.0, 0.1])
    np.testing.assert_allclose(f[:, CTX["beyond_best_b"]], [0.8, 0.0, 0.0, 0.0, 0.1])
    # shared support of 1-2: via 3 (0.3 * 0.1) and 4 (0.6 * 0.8); strong shared neighbours: 4 only
    np.testing.assert_allclose(f[0, CTX["shared_support"]], 0.3 * 0.1 + 0.6 * 0.8)
    assert f[:, CTX["shared_count"]].tolist() == [1, 0, 1, 1, 0]  # 2-4 via 1, 1-4 via 2; 2-3: 1-3 is weak
    assert context_features(a[:0], b[:0], dist[:0], p[:0], 5).shape == (0, 11)
    with pytest.raises(ValueError, match="section distances"):
        context_features(a, b, dist * 40, p, 5)


def _stack():
    """Three sections of two neurons (10 left, 20 right): section 1's left neuron is split in two 2D
    masks, section 2's leaks into the right neuron (2D ids: 1 2 | 3 4 5 | 6 7, left neuron 1 3 5 6)."""
    lab = np.zeros((3, 10, 12), np.uint16)
    lab[:, 1:9, 1:5] = 1
    lab[:, 1:9, 6:11] = 2
    lab[1, 5:9, 1:5] = 3  # split: 1 on top, 3 below, touching
    lab[2, 1:9, 1:8], lab[2, 1:9, 8:11] = 1, 2  # leaks over columns 6-7 (neuron 20)
    gt = np.zeros_like(lab, dtype=np.uint32)
    gt[:, :, :6], gt[:, :, 6:] = 10, 20
    img = np.random.default_rng(0).normal(size=lab.shape)
    return lab, img, gt


def test_join_graph_holds_every_pair_with_2d_ids_and_truth():
    lab, img, gt = _stack()
    g = join_graph(lab, img, gt, VS)
    ids = SectionObjectIds(lab)
    assert g.n_nodes == ids.n_objects + 1 == 8
    ex, cx = join_examples(lab, img, gt, VS), contact_examples(lab, img, gt, VS)
    np.testing.assert_array_equal(g.known().features, ex.features)
    np.testing.assert_array_equal(g.known().labels, ex.labels)
    np.testing.assert_array_equal(g.known(True).features, cx.features)
    np.testing.assert_array_equal(g.known(True).weights, cx.weights)
    assert g.pair_known.all() and g.contact_known.all()
    # every pair's ends are 2D ids of sections dist apart, and its label says same neuron
    z = np.zeros(g.n_nodes, int)
    for s in range(3):
        z[np.unique(ids[s])[1:]] = s
    assert (z[g.pair_ends[:, 1]] - z[g.pair_ends[:, 0]] == g.pair_dist).all() and set(g.pair_dist) == {1, 2}
    left = np.isin(g.pair_ends, [1, 3, 5, 6])  # the left neuron's masks, the leaky one (6) included
    np.testing.assert_array_equal(g.pairs.labels, left[:, 0] == left[:, 1])
    assert sorted(map(tuple, g.pair_ends[g.pairs.labels == 0].tolist())) == [(2, 6), (4, 6)]  # the leak
    # the split masks touch (same neuron); across the 1-px gap between the neurons (within the 30 nm
    # reach) the masks are in contact too: different neurons
    assert sorted(map(tuple, g.contact_ends.tolist())) == [(1, 2), (3, 4), (3, 5), (4, 5), (6, 7)]
    np.testing.assert_array_equal(g.contacts.labels, [c == (3, 5) for c in map(tuple, g.contact_ends.tolist())])
    with pytest.raises(InputError, match="nothing to train"):
        join_graph(lab, img, np.zeros_like(gt), VS)


def _stage(width: int, column: int, scale: float, bias: float, card: dict | None = None) -> JoinModel:
    """A one-member 'MLP' with logit ``scale * x[column] + bias`` on ``width`` features."""
    w = np.zeros((1, width))
    w[0, column] = scale
    return JoinModel(np.zeros(width), np.ones(width), (((w, np.array([bias])),),), card or {})


def test_the_second_stage_cuts_a_pair_whose_object_has_a_rival():
    # z0: one 6 x 6 square; z1: its left and right halves (IoU 0.5 each, touching). The first stage joins
    # every pair with IoU > 0.4, so the halves and the square become one object; the second stage
    # joins a pair only when the square has no other likely continuation, so it cuts both
    labels2d = np.zeros((2, 8, 8), np.uint8)
    labels2d[0, 1:7, 1:7] = 1
    labels2d[1, 1:7, 1:4], labels2d[1, 1:7, 4:7] = 2, 3
    img = np.random.default_rng(0).random(labels2d.shape)
    ids = SectionObjectIds(labels2d)
    iou = FEATURE_NAMES.index("iou")
    first = _stage(len(FEATURE_NAMES), iou, 50.0, -20.0)
    neutral = _stage(len(CONTACT_FEATURE_NAMES), 0, 0.0, 0.0)  # contacts: p = 0.5, adds nothing
    more = len(CONTEXT_FEATURE_NAMES)
    rival = len(FEATURE_NAMES) + CTX["other_best_a"]
    second = _stage(len(FEATURE_NAMES) + more, rival, -50.0, 25.0)
    one = JoinModel(first.mean, first.std, first.members, {}, contacts=neutral)
    two = JoinModel(first.mean, first.std, first.members, {}, contacts=neutral,
                    context=JoinModel(second.mean, second.std, second.members, {"stage": 2},
                                      contacts=_stage(len(CONTACT_FEATURE_NAMES) + more, 0, 0.0, 0.0)))
    for model, n in ((one, 1), (two, 3)):
        res = learned_joins(labels2d, img, ids, VS, model=model, linkage="additive")
        assert res.n_objects == n and res.n_pairs == 2 and res.n_contacts == 1
    # without contacts the second stage is not used (it was trained with them)
    assert learned_joins(labels2d, img, ids, VS, model=two, linkage="additive", contacts=False).n_objects == 1


def test_two_stage_training_round_trip_and_refusals(tmp_path):
    lab, img, gt = _stack()
    rng = np.random.default_rng(3)
    graphs = [join_graph(lab, img + 0.1 * rng.normal(size=img.shape), gt, VS) for _ in range(3)]
    model = train_two_stage(graphs, ["a", "b", "b"], card={"trained_on": "tiny"})
    more = len(CONTEXT_FEATURE_NAMES)
    assert model.context.mean.size == len(FEATURE_NAMES) + more
    assert model.context.contacts.mean.size == len(CONTACT_FEATURE_NAMES) + more
    assert model.card["stages"] == 2 and model.card["out_of_fold_groups"] == 2 and model.card["trained_on"] == "tiny"
    model.save(tmp_path / "two.npz")
    back = JoinModel.load(tmp_path / "two.npz")
    x = graphs[0].pairs.features
    xc = np.concatenate([x, graphs[0].context(model)[0]], axis=1)
    np.testing.assert_array_equal(back.context.predict(xc), model.context.predict(xc))
    assert back.card["context"]["features"][-more:] == list(CONTEXT_FEATURE_NAMES)
    again = train_two_stage(graphs, ["a", "b", "b"], card={"trained_on": "tiny"})
    np.testing.assert_array_equal(again.context.predict(xc), model.context.predict(xc))  # deterministic
    ids = SectionObjectIds(lab)
    res = learned_joins(lab, img, ids, VS, model=back, linkage="additive")
    assert res.n_pairs == len(graphs[0].pair_dist) and res.n_contacts == len(graphs[0].contact_ends)
    with pytest.raises(InputError, match="two groups"):
        train_two_stage(graphs, ["a", "a", "a"])
    with np.load(tmp_path / "two.npz") as z:
        data = {k: z[k] for k in z.files}
    data["context_mean"] = data["context_mean"][:-1]
    np.savez(tmp_path / "bad.npz", **data)
    with pytest.raises(CheckpointError, match="second-stage pair ensemble is not for 34 features"):
        JoinModel.load(tmp_path / "bad.npz")


def test_contact_weight_scales_the_contacts_against_the_overlaps():
    # z0: two masks side by side (A, B); z1: one mask over both. The overlaps say "join" (p ~ 1), the
    # contact says "apart" (p ~ 0). GAEC joins A (or B) with the z1 mask, then B joins that only while
    # B's overlap (20 px x 100 nm²) outweighs the contact (its interface x contact_weight)
    labels2d = np.zeros((2, 7, 10), np.uint8)
    labels2d[0, 1:6, 1:5], labels2d[0, 1:6, 5:9] = 1, 2
    labels2d[1, 1:6, 1:9] = 3
    img = np.random.default_rng(0).random(labels2d.shape)
    ids = SectionObjectIds(labels2d)
    contact_nm2 = float(join_graph(labels2d, img, ids[:], VS).contacts.weights.sum())  # length x 10 nm x 40 nm
    flip = 20 * 100.0 / contact_nm2
    join = _stage(len(FEATURE_NAMES), 0, 0.0, 50.0)
    model = JoinModel(join.mean, join.std, join.members, {}, contacts=_stage(len(CONTACT_FEATURE_NAMES), 0, 0.0, -50.0))
    n = {w: learned_joins(labels2d, img, ids, VS, model=model, linkage="additive", contact_weight=w).n_objects
         for w in (0.9 * flip, 1.1 * flip)}
    assert n == {0.9 * flip: 1, 1.1 * flip: 2}
    # the default counts each contact once: below the flip point, B joins
    assert learned_joins(labels2d, img, ids, VS, model=model, linkage="additive").n_objects == (1 if flip > 1 else 2)
    with pytest.raises(ConfigError, match="contact_weight"):
        learned_joins(labels2d, img, ids, VS, model=model, contact_weight=0.0)
