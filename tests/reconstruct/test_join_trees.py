"""Gradient-boosted join classifiers: exact export from scikit-learn, model files, training."""

from __future__ import annotations

import numpy as np
import pytest

from dendrosam.errors import CheckpointError
from dendrosam.reconstruct.join_features import FEATURE_NAMES
from dendrosam.reconstruct.join_training import JoinExamples, train_join_model
from dendrosam.reconstruct.join_trees import TREE_DEFAULTS, TreeEnsemble, fit_trees
from dendrosam.reconstruct.joins import JoinModel

COL = {name: i for i, name in enumerate(FEATURE_NAMES)}


def _data(n=600, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, len(FEATURE_NAMES)))
    y = (x[:, COL["iou"]] + x[:, COL["frac_a"]] * x[:, COL["intensity_diff"]] > 0).astype(np.float64)
    return x, y, rng.random(n) + 0.5


def test_exported_trees_predict_exactly_what_scikit_learn_predicts():
    from sklearn.ensemble import HistGradientBoostingClassifier

    x, y, w = _data()
    x[::7, 3] = np.nan  # missing values take the side the fit chose
    clf = HistGradientBoostingClassifier(**{**TREE_DEFAULTS, "max_iter": 30}, early_stopping=False,
                                         random_state=0).fit(x, y > 0.5, sample_weight=w / w.mean())
    trees = TreeEnsemble.from_sklearn(clf)
    assert len(trees.roots) == 30 and (trees.feature[trees.roots] >= 0).all()
    np.testing.assert_allclose(trees.predict(x), clf.predict_proba(x)[:, 1], rtol=0, atol=1e-12)
    np.testing.assert_allclose(trees.decision(x), clf.decision_function(x), rtol=0, atol=1e-12)
    assert fit_trees(x, y, w, max_iter=30).decision(x).tolist() == trees.decision(x).tolist()  # deterministic


def test_tree_model_file_round_trip_and_corrupt_trees(tmp_path):
    x, y, w = _data()
    ex = JoinExamples(x, y, w)
    contacts = JoinExamples(x[:, :15], (x[:, 0] > 0).astype(float), w)
    model = train_join_model(ex, contacts=contacts, classifier="trees", card={"trained_on": "x"})
    assert model.members == () and model.card["classifier"] == "trees" and model.contacts.card["reach_nm"] == 30.0
    assert ((model.predict(x) > 0.5) == (y > 0.5)).mean() > 0.95
    model.save(tmp_path / "m.npz")
    back = JoinModel.load(tmp_path / "m.npz")
    np.testing.assert_array_equal(back.predict(x), model.predict(x))
    np.testing.assert_array_equal(back.contacts.predict(x[:, :15]), model.contacts.predict(x[:, :15]))
    assert back.card["trained_on"] == "x" and back.trees.baseline == model.trees.baseline
    with np.load(tmp_path / "m.npz") as z:
        data = {k: z[k] for k in z.files}
    data["trees_left"] = data["trees_left"] + len(data["trees_left"])  # children outside the tree
    np.savez(tmp_path / "bad.npz", **data)
    with pytest.raises(CheckpointError, match="not a dendrosam join model: tree node index out of range"):
        JoinModel.load(tmp_path / "bad.npz")


def test_one_class_gives_a_constant_model_and_unknown_classifiers_are_refused():
    x, _, w = _data(50)
    const = fit_trees(x, np.ones(50), w)
    assert const.roots.size == 0
    np.testing.assert_allclose(const.predict(x), 1 - 1e-6)
    with pytest.raises(Exception, match="classifier must be one of mlp, trees"):
        train_join_model(JoinExamples(x, np.ones(50), w), classifier="forest")
