"""Contacts within a section: exact features, invariances, and their repulsion in the learned joins."""

from __future__ import annotations

import numpy as np
import pytest

from dendrosam.errors import CheckpointError
from dendrosam.reconstruct.join_contacts import CONTACT_FEATURE_NAMES, iter_contact_tables
from dendrosam.reconstruct.join_features import FEATURE_NAMES
from dendrosam.reconstruct.join_training import contact_examples, join_examples, train_join_model
from dendrosam.reconstruct.joins import JoinModel, learned_joins

VS = (40.0, 10.0, 10.0)
COL = {name: i for i, name in enumerate(CONTACT_FEATURE_NAMES)}


def _side_by_side(rows: int = 4, gap: int = 2):
    """One section: two 4-px-wide cells (ids 3 and 8) of ``rows`` rows, a dark membrane of ``gap`` px between."""
    lab = np.zeros((1, rows, 8 + gap), np.uint16)
    lab[0, :, :4] = 3
    lab[0, :, 4 + gap:] = 8
    img = np.full(lab.shape, 100.0)
    img[0, :, 4:4 + gap] = 0.0
    return lab, img


def test_contact_features_are_exact():
    lab, img = _side_by_side()
    (t,) = list(iter_contact_tables(lab, img, VS, ref=lab, reach_nm=30.0))
    assert t.z == 0 and t.ref_a.tolist() == [3] and t.ref_b.tolist() == [8]
    assert t.length.tolist() == [4]  # the grown cells meet between the two membrane columns, 4 rows
    f = dict(zip(CONTACT_FEATURE_NAMES, t.features[0]))
    # image: 32 px at 100, 8 px at 0 -> mean 80, std 40: membrane -2, cytoplasm +0.5
    np.testing.assert_allclose([f["log_area_small"], f["log_area_large"], f["log_contact"]],
                               np.log([1600, 1600, 40]))
    np.testing.assert_allclose([f["contact_per_size_small"], f["contact_per_size_large"]], [1.0, 1.0])
    np.testing.assert_allclose([f["line_intensity"], f["line_contrast"], f["line_darker"]], [-2.0, -2.5, -2.0])
    np.testing.assert_allclose([f["intensity_diff"], f["texture_diff"], f["direct_fraction"]], [0, 0, 0], atol=1e-12)


def test_touching_masks_and_reach():
    lab, img = _side_by_side(gap=0)  # masks touch directly: the whole line is direct contact
    (t,) = list(iter_contact_tables(lab, img, VS, reach_nm=0.0))
    assert t.length.tolist() == [4] and t.features[0, COL["direct_fraction"]] == 1.0
    lab, img = _side_by_side(gap=8)  # 80 nm apart: out of reach at 30 nm (they would meet at 40 nm)
    assert [len(t.length) for t in iter_contact_tables(lab, img, VS, reach_nm=30.0)] == [0]
    assert [t.length.tolist() for t in iter_contact_tables(lab, img, VS, reach_nm=40.0)] == [[4]]
    with pytest.raises(ValueError, match="reach_nm"):
        list(iter_contact_tables(lab, img, VS, reach_nm=-1.0))


def test_contact_features_ignore_pixel_size_and_contrast():
    lab, img = _side_by_side(rows=6)
    (a,) = list(iter_contact_tables(lab, img, VS))
    fine = np.kron(lab, np.ones((1, 2, 2), lab.dtype))  # the same cells at 5 nm pixels
    (b,) = list(iter_contact_tables(fine, 3.0 * np.kron(img, np.ones((1, 2, 2))) + 7.0, (40.0, 5.0, 5.0)))
    np.testing.assert_allclose(b.features, a.features, atol=1e-12)
    assert b.length.tolist() == [2 * a.length[0]]


def _constant(n: int, logit: float) -> tuple:
    return (((np.zeros((1, n)), np.array([logit])),),)


def test_contacts_stop_a_leaky_mask_from_merging_two_neurites():
    # two neurites side by side (left / right), 3 sections each side of section 3, where one
    # leaky mask covers both; every overlap says "join" (p = 1), every contact "apart" (p ~ 0)
    labels2d = np.zeros((7, 6, 10), np.uint8)
    labels2d[:, :, :4], labels2d[:, :, 6:] = 1, 2
    labels2d[3] = 0
    labels2d[3, :, :] = 1
    image = np.where(labels2d > 0, 100.0, 0.0)
    labels3d = np.zeros(labels2d.shape, np.uint32)
    labels3d[:3, :, :4], labels3d[:3, :, 6:], labels3d[3] = 1, 2, 3  # L, R, bridge
    labels3d[4:, :, :4], labels3d[4:, :, 6:] = 4, 5  # L2, R2
    pairs = JoinModel(np.zeros(len(FEATURE_NAMES)), np.ones(len(FEATURE_NAMES)),
                      _constant(len(FEATURE_NAMES), 50.0), {})
    apart = JoinModel(np.zeros(len(CONTACT_FEATURE_NAMES)), np.ones(len(CONTACT_FEATURE_NAMES)),
                      _constant(len(CONTACT_FEATURE_NAMES), -50.0), {"reach_nm": 30.0})
    model = JoinModel(pairs.mean, pairs.std, pairs.members, {}, apart)
    res = learned_joins(labels2d, image, labels3d, VS, model, contacts=False)
    assert res.lut.tolist() == [0, 1, 1, 1, 1, 1] and res.n_contacts == 0  # the bridge merges everything
    res = learned_joins(labels2d, image, labels3d, VS, model, contacts=True)
    # interfaces (nm²): each overlap 24 px x 100 = 2400; L-R and L2-R2 touch along 6 px x 10 nm x
    # 40 nm in 3 sections = 7200 each. The bridge joins L and L2 (ties go to smaller ids); R joins
    # R2 over their gap-2 overlap; the two sides then average (4 x 2400) / (4 x 2400 + 2 x 7200) = 0.4.
    assert res.lut.tolist() == [0, 1, 2, 1, 1, 2]
    assert (res.n_pairs, res.n_contacts) == (10, 6)  # 2 per side of the bridge, L-L2 and R-R2 at gap 2
    assert learned_joins(labels2d, image, labels3d, VS, pairs, contacts=True).lut.tolist() == [0, 1, 1, 1, 1, 1]


def test_model_with_contacts_round_trip_and_training(tmp_path):
    lab, img = _side_by_side()
    stack = np.concatenate([lab, lab, lab])
    image = np.concatenate([img, img, img])
    gt = stack.copy()
    gt[1] = 5  # in section 1 both cells are one neuron: a positive contact
    touching = contact_examples(stack, image, gt, VS)
    assert touching.labels.tolist() == [0.0, 1.0, 0.0]
    np.testing.assert_allclose(touching.weights, 4 * 10.0 * 40.0)  # contact length x section thickness
    model = train_join_model(join_examples(stack, image, gt, VS), members=2, hidden=4, steps=30,
                             contacts=touching, reach_nm=25.0)
    assert model.contacts is not None and model.contacts.card["reach_nm"] == 25.0
    model.save(tmp_path / "m.npz")
    back = JoinModel.load(tmp_path / "m.npz")
    assert back.card["contacts"]["reach_nm"] == 25.0 and back.contacts.card["reach_nm"] == 25.0
    x = np.random.default_rng(0).normal(size=(5, len(CONTACT_FEATURE_NAMES)))
    np.testing.assert_array_equal(back.contacts.predict(x), model.contacts.predict(x))
    again = train_join_model(join_examples(stack, image, gt, VS), members=2, hidden=4, steps=30,
                             contacts=touching, reach_nm=25.0)
    np.testing.assert_array_equal(again.contacts.predict(x), model.contacts.predict(x))  # seeded
    arrays = dict(np.load(tmp_path / "m.npz"))
    arrays["contacts_mean"] = np.zeros(3)
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(CheckpointError, match="its contact ensemble is not for 15 features"):
        JoinModel.load(tmp_path / "bad.npz")
