"""Train a :class:`~dendrosam.reconstruct.joins.JoinModel` from automatic masks and ground truth.

A training example is an overlapping pair of 2D objects in sections ``z`` / ``z + d`` of the masks
your segmentation produces (:func:`join_examples`); its label is whether both objects' majority
ground-truth neuron is the same (pairs touching an object with no ground truth are left out).
The loss is binary cross-entropy weighted by the interface area (nm²), so the classifier is most
accurate on the pairs that move the most voxels. The contact ensemble is trained the same way on
the pairs of 2D objects that touch within a section (:func:`contact_examples`). Each ensemble member
is a 2-hidden-layer MLP trained full-batch with Adam from its own seed; members differ only by
initialisation. ``classifier="trees"`` fits gradient-boosted trees instead (:mod:`.join_trees`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from dendrosam.errors import InputError

from .join_contacts import CONTACT_FEATURE_NAMES, DEFAULT_REACH_NM, iter_contact_tables
from .join_features import FEATURE_NAMES, iter_pair_tables
from .join_trees import TREE_DEFAULTS, fit_trees
from .joins import JoinModel

__all__ = ["JoinExamples", "join_examples", "contact_examples", "train_join_model", "CLASSIFIERS"]

#: The join classifiers :func:`train_join_model` fits.
CLASSIFIERS = ("mlp", "trees")


@dataclass(frozen=True)
class JoinExamples:
    """Features, labels and weights of training pairs (rows aligned)."""

    features: np.ndarray
    labels: np.ndarray
    weights: np.ndarray

    @staticmethod
    def concat(parts: Sequence[JoinExamples]) -> JoinExamples:
        """Stack several example sets."""
        return JoinExamples(np.concatenate([p.features for p in parts]),
                            np.concatenate([p.labels for p in parts]),
                            np.concatenate([p.weights for p in parts]))


def _labelled(tables: Any, weight: str, what: str | None, width: int) -> JoinExamples:
    feats, labels, weights = [], [], []
    for t in tables:
        keep = (t.ref_a > 0) & (t.ref_b > 0)
        feats.append(t.features[keep])
        labels.append((t.ref_a[keep] == t.ref_b[keep]).astype(np.float64))
        weights.append(getattr(t, weight)[keep].astype(np.float64))
    if what is not None and (not feats or not sum(len(f) for f in feats)):
        raise InputError(f"no {what} 2D objects with ground truth: nothing to train the joins on")
    if not feats:
        return JoinExamples(np.zeros((0, width)), np.zeros(0), np.zeros(0))
    return JoinExamples(np.concatenate(feats), np.concatenate(labels), np.concatenate(weights))


def join_examples(labels2d: Any, image: Any, gt: Any, voxel_size: tuple[float, float, float],
                  max_gap: int = 2) -> JoinExamples:
    """Training pairs of one stack: (Z, Y, X) 2D labels, image and ground-truth neurons.

    One row per overlapping pair in sections ``z`` / ``z + d`` (``d <= max_gap``), weighted by
    the overlap area (nm²).
    """
    pixel_area = float(voxel_size[1]) * float(voxel_size[2])
    ex = _labelled(iter_pair_tables(labels2d, image, voxel_size, ref=gt, max_gap=max_gap), "count", "overlapping",
                   len(FEATURE_NAMES))
    return JoinExamples(ex.features, ex.labels, ex.weights * pixel_area)


def contact_examples(labels2d: Any, image: Any, gt: Any, voxel_size: tuple[float, float, float],
                     reach_nm: float = DEFAULT_REACH_NM) -> JoinExamples:
    """Training contacts of one stack: one row per pair of 2D objects touching within a section.

    Weighted by the interface each stands for (contact length x section thickness, nm²). A stack
    whose objects never touch gives no rows (not an error: its overlaps may still train the joins).
    """
    line_area = 0.5 * (float(voxel_size[1]) + float(voxel_size[2])) * float(voxel_size[0])
    ex = _labelled(iter_contact_tables(labels2d, image, voxel_size, ref=gt, reach_nm=reach_nm), "length", None,
                   len(CONTACT_FEATURE_NAMES))
    return JoinExamples(ex.features, ex.labels, ex.weights * line_area)


def _fit(examples: JoinExamples, names: Sequence[str], members: int, hidden: int, steps: int, lr: float,
         weight_decay: float, seed: int) -> JoinModel:
    import torch

    x = examples.features
    mean, std = x.mean(0), x.std(0) + 1e-6
    xt = torch.tensor((x - mean) / std, dtype=torch.float32)
    yt = torch.tensor(examples.labels, dtype=torch.float32)
    wt = torch.tensor(examples.weights / examples.weights.mean(), dtype=torch.float32)
    out = []
    for k in range(members):
        torch.manual_seed(seed + k)
        net = torch.nn.Sequential(torch.nn.Linear(x.shape[1], hidden), torch.nn.ReLU(),
                                  torch.nn.Linear(hidden, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, 1))
        opt = torch.optim.Adam(net.parameters(), lr, weight_decay=weight_decay)
        for _ in range(steps):
            opt.zero_grad()
            loss = torch.nn.functional.binary_cross_entropy_with_logits(net(xt)[:, 0], yt, weight=wt)
            loss.backward()
            opt.step()
        linear = [m for m in net if isinstance(m, torch.nn.Linear)]
        out.append(tuple((m.weight.detach().double().numpy().copy(), m.bias.detach().double().numpy().copy())
                         for m in linear))
    info = {"features": list(names), "members": members, "hidden": hidden, "steps": steps,
            "lr": lr, "weight_decay": weight_decay, "seed": seed, "n_pairs": int(len(x)),
            "positive_fraction": float(examples.labels.mean())}
    return JoinModel(mean, std, tuple(out), info)


def _fit_trees(examples: JoinExamples, names: Sequence[str], seed: int) -> JoinModel:
    x = examples.features
    trees = fit_trees(x, examples.labels, examples.weights, seed=seed)
    info = {"classifier": "trees", "features": list(names), **TREE_DEFAULTS, "seed": seed, "n_pairs": int(len(x)),
            "n_nodes": int(len(trees.feature)), "positive_fraction": float(examples.labels.mean())}
    return JoinModel(np.zeros(len(names)), np.ones(len(names)), (), info, trees=trees)


def train_join_model(examples: JoinExamples, members: int = 5, hidden: int = 32, steps: int = 1500,
                     lr: float = 1e-2, weight_decay: float = 1e-4, seed: int = 0,
                     card: dict | None = None, contacts: JoinExamples | None = None,
                     reach_nm: float = DEFAULT_REACH_NM, classifier: str = "mlp") -> JoinModel:
    """Fit both classifiers: MLP ensembles (``F -> hidden -> hidden -> 1``) or gradient-boosted trees.

    Full batch, CPU, deterministic for a given input.

    Parameters
    ----------
    examples : JoinExamples
        From :func:`join_examples` (several stacks: :meth:`JoinExamples.concat`).
    members : int
        MLP ensemble size; member ``k`` starts from seed ``seed + k``.
    hidden, steps, lr, weight_decay
        MLP width, Adam steps, learning rate and weight decay.
    card : dict, optional
        Provenance stored with the model.
    contacts : JoinExamples, optional
        From :func:`contact_examples`: also fit the contact ensemble (:attr:`JoinModel.contacts`),
        same settings (skipped when it has no rows).
    reach_nm : float
        The ``reach_nm`` the contact examples were made with (stored in the contact card, used
        again at inference).
    classifier : {"mlp", "trees"}
        ``"trees"``: gradient-boosted trees (:func:`.join_trees.fit_trees`, :data:`.TREE_DEFAULTS`;
        needs scikit-learn; a minute where the MLPs take half an hour). ``members``, ``hidden``,
        ``steps``, ``lr`` and ``weight_decay`` then do not apply.
    """
    if classifier not in CLASSIFIERS:
        raise InputError(f"classifier must be one of {', '.join(CLASSIFIERS)}, got {classifier!r}")

    def fit(ex: JoinExamples, names: Sequence[str]) -> JoinModel:
        if ex.features.shape[1] != len(names):
            raise InputError(f"expected {len(names)} features, got {ex.features.shape[1]}")
        if classifier == "trees":
            return _fit_trees(ex, names, seed)
        return _fit(ex, names, members, hidden, steps, lr, weight_decay, seed)

    pairs = fit(examples, FEATURE_NAMES)
    touching = None
    if contacts is not None and len(contacts.labels):
        touching = fit(contacts, CONTACT_FEATURE_NAMES)
        touching = replace(touching, card={**touching.card, "reach_nm": reach_nm})
    card = {**pairs.card, **(card or {})}
    if touching is not None:
        card["contacts"] = touching.card
    return replace(pairs, card=card, contacts=touching)
