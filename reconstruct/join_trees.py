"""Gradient-boosted trees for the join classifiers, stored as flat arrays (numpy/numba inference).

Training uses scikit-learn's :class:`~sklearn.ensemble.HistGradientBoostingClassifier` (binary
log-loss, interface-weighted); the fitted trees are copied into plain arrays (:class:`TreeEnsemble`)
so that a model file is an ``.npz`` that loads without pickle and predicts without scikit-learn.
Prediction walks every tree for every row in a compiled loop and gives scikit-learn's own
``predict_proba`` to rounding (tested).

Examples
--------
>>> import numpy as np
>>> t = TreeEnsemble(baseline=0.5, feature=np.array([0, -1, -1]), threshold=np.array([1.0, 0, 0]),
...                  missing_left=np.array([True, False, False]), left=np.array([1, 0, 0]),
...                  right=np.array([2, 0, 0]), value=np.array([0.0, -1.0, 2.0]), roots=np.array([0]))
>>> t.decision(np.array([[0.5], [3.0], [np.nan]])).tolist()   # 0.5 + (-1 | 2 | missing: left)
[-0.5, 2.5, -0.5]
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np

from dendrosam.errors import ConfigError

from .kernels import _njit

__all__ = ["TreeEnsemble", "fit_trees", "TREE_DEFAULTS"]

#: The shipped join model's tree settings (:func:`fit_trees`).
TREE_DEFAULTS = {"max_iter": 200, "learning_rate": 0.1, "max_leaf_nodes": 31, "l2_regularization": 1.0}


@dataclass(frozen=True)
class TreeEnsemble:
    """Additive binary trees: ``decision(x) = baseline + sum of one leaf value per tree``.

    Attributes
    ----------
    baseline : float
        The initial log-odds.
    feature : numpy.ndarray
        (N,) feature index of each node's split; -1 at leaves. Nodes of all trees, concatenated.
    threshold : numpy.ndarray
        (N,) a row goes left where ``x[feature] <= threshold``.
    missing_left : numpy.ndarray
        (N,) bool, where a NaN feature goes.
    left, right : numpy.ndarray
        (N,) absolute node index of the children.
    value : numpy.ndarray
        (N,) leaf values (log-odds contributions).
    roots : numpy.ndarray
        (T,) the root node of each tree.
    """

    baseline: float
    feature: np.ndarray = field(repr=False)
    threshold: np.ndarray = field(repr=False)
    missing_left: np.ndarray = field(repr=False)
    left: np.ndarray = field(repr=False)
    right: np.ndarray = field(repr=False)
    value: np.ndarray = field(repr=False)
    roots: np.ndarray = field(repr=False)

    def decision(self, x: np.ndarray) -> np.ndarray:
        """(P, F) features -> (P,) log-odds."""
        x = np.ascontiguousarray(x, np.float64)
        out = np.full(len(x), float(self.baseline))
        _walk(x, np.asarray(self.feature, np.int64), np.asarray(self.threshold, np.float64),
              np.asarray(self.missing_left, np.bool_), np.asarray(self.left, np.int64),
              np.asarray(self.right, np.int64), np.asarray(self.value, np.float64),
              np.asarray(self.roots, np.int64), out)
        return out

    def predict(self, x: np.ndarray) -> np.ndarray:
        """(P, F) features -> (P,) probability of the positive class."""
        return 0.5 * (1.0 + np.tanh(0.5 * self.decision(x)))  # the logistic function, without overflow

    def arrays(self, prefix: str) -> dict[str, np.ndarray]:
        """The ensemble as named arrays (for :func:`numpy.savez`)."""
        return {f"{prefix}{f.name}": np.asarray(getattr(self, f.name)) for f in fields(self)}

    @classmethod
    def from_arrays(cls, data: dict, prefix: str) -> TreeEnsemble:
        """Inverse of :meth:`arrays`; raises KeyError when an array is missing, ValueError when inconsistent."""
        kw: dict[str, Any] = {f.name: np.asarray(data[f"{prefix}{f.name}"]) for f in fields(cls)}
        kw["baseline"] = float(kw["baseline"])
        n = len(kw["feature"])
        if any(len(kw[k]) != n for k in ("threshold", "missing_left", "left", "right", "value")):
            raise ValueError("tree arrays of different lengths")
        inner = kw["feature"] >= 0
        if n and (kw["roots"].min(initial=0) < 0 or kw["roots"].max(initial=0) >= n
                  or (inner & ((kw["left"] < 0) | (kw["left"] >= n) | (kw["right"] < 0) | (kw["right"] >= n))).any()):
            raise ValueError("tree node index out of range")
        return cls(**kw)

    @classmethod
    def from_sklearn(cls, clf: Any) -> TreeEnsemble:
        """Copy a fitted binary :class:`~sklearn.ensemble.HistGradientBoostingClassifier` (numeric features)."""
        nodes = [tree[0].nodes for tree in clf._predictors]
        if any(n["is_categorical"].any() for n in nodes):
            raise ValueError("categorical splits are not supported")
        offsets = np.cumsum([0] + [len(n) for n in nodes[:-1]])
        cat = np.concatenate(nodes)
        shift = np.repeat(offsets, [len(n) for n in nodes])
        leaf = cat["is_leaf"].astype(bool)
        return cls(baseline=float(np.ravel(clf._baseline_prediction)[0]),
                   feature=np.where(leaf, -1, cat["feature_idx"]).astype(np.int32),
                   threshold=cat["num_threshold"].astype(np.float64),
                   missing_left=cat["missing_go_to_left"].astype(bool),
                   left=(cat["left"] + shift).astype(np.int32), right=(cat["right"] + shift).astype(np.int32),
                   value=np.where(leaf, cat["value"], 0.0).astype(np.float64), roots=offsets.astype(np.int64))


@_njit
def _walk(x, feature, threshold, missing_left, left, right, value, roots, out):  # pragma: no cover - compiled
    for i in range(x.shape[0]):
        s = 0.0
        for t in range(roots.size):
            k = roots[t]
            while feature[k] >= 0:
                v = x[i, feature[k]]
                if np.isnan(v):
                    k = left[k] if missing_left[k] else right[k]
                else:
                    k = left[k] if v <= threshold[k] else right[k]
            s += value[k]
        out[i] += s


def fit_trees(features: np.ndarray, labels: np.ndarray, weights: np.ndarray, seed: int = 0,
              **settings: Any) -> TreeEnsemble:
    """Fit gradient-boosted trees (binary log-loss, ``weights`` as sample weights); needs scikit-learn.

    ``settings`` override :data:`TREE_DEFAULTS`; no early stopping (so no random validation split),
    so the fit is deterministic for a given input. Labels of one class only give a constant model.
    """
    try:
        from sklearn.ensemble import HistGradientBoostingClassifier
    except ImportError:
        raise ConfigError("training gradient-boosted trees needs scikit-learn (pip install scikit-learn)") from None
    y, w = np.asarray(labels) > 0.5, np.asarray(weights, np.float64)
    if y.all() or not y.any():  # one class: no split to learn, a constant (clipped) log-odds
        q = float(np.clip(y.mean() if y.size else 0.5, 1e-6, 1 - 1e-6))
        none = np.zeros(0, np.int64)
        return TreeEnsemble(float(np.log(q / (1 - q))), none.astype(np.int32), none.astype(np.float64),
                            none.astype(bool), none.astype(np.int32), none.astype(np.int32), none.astype(np.float64),
                            none)
    clf = HistGradientBoostingClassifier(**{**TREE_DEFAULTS, **settings}, early_stopping=False, random_state=seed)
    clf.fit(np.asarray(features, np.float64), y, sample_weight=w / w.mean())
    return TreeEnsemble.from_sklearn(clf)
