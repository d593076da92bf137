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

from .join_contacts import (CONTACT_FEATURE_NAMES, DEFAULT_REACH_NM, ContactTable, contact_tables, interface_area,
                            iter_contact_tables)
from .join_context import CONTEXT_FEATURE_NAMES, context_features
from .join_features import FEATURE_NAMES, SectionObjectIds, iter_pair_tables
from .join_trees import TREE_DEFAULTS, fit_trees
from .joins import JoinModel
from .overlap import majority_labels, section_objects
from .track_scan import read_section

__all__ = ["JoinExamples", "JoinGraph", "join_examples", "contact_examples", "join_graph", "train_join_model",
           "train_two_stage", "CLASSIFIERS"]

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


def _labelled(tables: Any, voxel_size: tuple[float, float, float], what: str | None, width: int) -> JoinExamples:
    feats, labels, weights = [], [], []
    for t in tables:
        keep = (t.ref_a > 0) & (t.ref_b > 0)
        feats.append(t.features[keep])
        labels.append((t.ref_a[keep] == t.ref_b[keep]).astype(np.float64))
        weights.append(interface_area(t, voxel_size)[keep].astype(np.float64))
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
    return _labelled(iter_pair_tables(labels2d, image, voxel_size, ref=gt, max_gap=max_gap), voxel_size,
                     "overlapping", len(FEATURE_NAMES))


def contact_examples(labels2d: Any, image: Any, gt: Any, voxel_size: tuple[float, float, float],
                     reach_nm: float = DEFAULT_REACH_NM) -> JoinExamples:
    """Training contacts of one stack: one row per pair of 2D objects touching within a section.

    Weighted by the interface each stands for (contact length x section thickness, nm²). A stack
    whose objects never touch gives no rows (not an error: its overlaps may still train the joins).
    """
    return _labelled(iter_contact_tables(labels2d, image, voxel_size, ref=gt, reach_nm=reach_nm), voxel_size, None,
                     len(CONTACT_FEATURE_NAMES))


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
                     reach_nm: float = DEFAULT_REACH_NM, classifier: str = "mlp",
                     names: tuple[Sequence[str], Sequence[str]] = (FEATURE_NAMES, CONTACT_FEATURE_NAMES)) -> JoinModel:
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
    names : tuple of two sequences of str
        The columns of ``examples`` and of ``contacts`` (a second stage's are longer:
        :func:`train_two_stage`).
    """
    if classifier not in CLASSIFIERS:
        raise InputError(f"classifier must be one of {', '.join(CLASSIFIERS)}, got {classifier!r}")

    def fit(ex: JoinExamples, names: Sequence[str]) -> JoinModel:
        if ex.features.shape[1] != len(names):
            raise InputError(f"expected {len(names)} features, got {ex.features.shape[1]}")
        if classifier == "trees":
            return _fit_trees(ex, names, seed)
        return _fit(ex, names, members, hidden, steps, lr, weight_decay, seed)

    pairs = fit(examples, names[0])
    touching = None
    if contacts is not None and len(contacts.labels):
        touching = fit(contacts, names[1])
        touching = replace(touching, card={**touching.card, "reach_nm": reach_nm})
    card = {**pairs.card, **(card or {})}
    if touching is not None:
        card["contacts"] = touching.card
    return replace(pairs, card=card, contacts=touching)


@dataclass(frozen=True)
class JoinGraph:
    """Every pair a join model scores in one stack, between its 2D objects, with ground truth.

    What :func:`learned_joins` sees when it starts from the 2D objects (:class:`.SectionObjectIds`,
    the pipeline's default), plus each 2D object's majority ground-truth neuron: the training data
    of a two-stage model (:func:`train_two_stage`).

    Attributes
    ----------
    pairs, contacts : JoinExamples
        Every overlap between sections and every contact within one, known or not (rows of
        unknown truth have label 0; see ``known``).
    pair_ends, contact_ends : numpy.ndarray
        (P, 2) the two 2D object ids of each row (:class:`.SectionObjectIds` numbering).
    pair_dist : numpy.ndarray
        (P,) section distance of each overlap.
    pair_known, contact_known : numpy.ndarray
        (P,) bool: both objects overlap ground truth (the rows a classifier trains on).
    n_nodes : int
        Number of 2D objects + 1.
    """

    pairs: JoinExamples
    contacts: JoinExamples
    pair_ends: np.ndarray
    contact_ends: np.ndarray
    pair_dist: np.ndarray
    pair_known: np.ndarray
    contact_known: np.ndarray
    n_nodes: int

    def known(self, contacts: bool = False) -> JoinExamples:
        """The rows with ground truth, of the overlaps or of the contacts."""
        ex, keep = (self.contacts, self.contact_known) if contacts else (self.pairs, self.pair_known)
        return JoinExamples(ex.features[keep], ex.labels[keep], ex.weights[keep])

    def context(self, model: JoinModel) -> tuple[np.ndarray, np.ndarray]:
        """:func:`.context_features` of the overlaps and of the contacts, from ``model``'s probabilities."""
        n = len(self.pair_dist)
        p = np.r_[model.predict(self.pairs.features), model.contacts.predict(self.contacts.features)]
        ends = np.concatenate([self.pair_ends, self.contact_ends])
        rows = context_features(ends[:, 0], ends[:, 1], np.r_[self.pair_dist, np.zeros(len(self.contact_ends), int)],
                                p, self.n_nodes)
        return rows[:n], rows[n:]


def join_graph(labels2d: Any, image: Any, gt: Any, voxel_size: tuple[float, float, float], max_gap: int = 2,
               reach_nm: float = DEFAULT_REACH_NM) -> JoinGraph:
    """The :class:`JoinGraph` of one stack: (Z, Y, X) 2D labels, image and ground-truth neurons.

    Its known rows equal :func:`join_examples` and :func:`contact_examples` (same order).
    """
    ids = SectionObjectIds(labels2d)
    truth = np.zeros(ids.n_objects + 1, np.int64)
    for z in range(len(ids)):
        objects = section_objects(ids[z])
        truth[objects.ids] = majority_labels(objects, section_objects(read_section(gt, z)))
    rows: dict[bool, list] = {False: [], True: []}
    for t in iter_pair_tables(ids, image, voxel_size, ref=ids, max_gap=max_gap,
                              per_section=contact_tables(voxel_size, reach_nm)):
        contact = isinstance(t, ContactTable)
        w = interface_area(t, voxel_size)
        dist = np.full(len(w), 0 if contact else t.zb - t.za, np.int64)
        rows[contact].append((np.stack([t.ref_a, t.ref_b], 1), dist, t.features, w))

    def stack(kind: bool, width: int) -> tuple:
        parts = rows[kind]
        ends = np.concatenate([r[0] for r in parts]) if parts else np.zeros((0, 2), np.int64)
        dist = np.concatenate([r[1] for r in parts]) if parts else np.zeros(0, np.int64)
        feats = np.concatenate([r[2] for r in parts]) if parts else np.zeros((0, width))
        w = np.concatenate([r[3] for r in parts]).astype(np.float64) if parts else np.zeros(0)
        ta, tb = truth[ends[:, 0]], truth[ends[:, 1]]
        return ends, dist, JoinExamples(feats, (ta == tb).astype(np.float64), w), (ta > 0) & (tb > 0)

    pe, pd, pairs, pk = stack(False, len(FEATURE_NAMES))
    ce, _, contacts, ck = stack(True, len(CONTACT_FEATURE_NAMES))
    if not pk.any():
        raise InputError("no overlapping 2D objects with ground truth: nothing to train the joins on")
    return JoinGraph(pairs, contacts, pe, ce, pd, pk, ck, ids.n_objects + 1)


def train_two_stage(graphs: Sequence[JoinGraph], groups: Sequence[Any], seed: int = 0, card: dict | None = None,
                    reach_nm: float = DEFAULT_REACH_NM) -> JoinModel:
    """Fit a first join model on ``graphs`` and a second stage that also reads its context.

    Both stages are gradient-boosted trees (overlaps and contacts each). The second stage
    (:attr:`.JoinModel.context`) trains on the features plus :data:`.CONTEXT_FEATURE_NAMES`
    computed from *out-of-fold* first-stage probabilities: for each group (one sample, e.g. its
    masks with and without ``segment.fill``), a first stage trained on every other group scores
    it, so the second stage learns how far to trust a first stage on data it never saw, as at
    inference. That is one more fit per group: with 9 groups, about ten times the one-stage time.

    Parameters
    ----------
    graphs : sequence of JoinGraph
        From :func:`join_graph`, one per stack.
    groups : sequence
        The group of each graph (at least two groups).
    seed, card, reach_nm
        As in :func:`train_join_model`.
    """
    if len(groups) != len(graphs) or len(set(groups)) < 2:
        raise InputError("a two-stage join model needs at least two groups of training stacks")

    def fit(gs: Sequence[JoinGraph], extra: dict | None = None, **kw: Any) -> JoinModel:
        def rows(g: JoinGraph, contacts: bool) -> JoinExamples:
            ex = g.known(contacts)
            if extra is None:
                return ex
            more = extra[id(g)][contacts][g.contact_known if contacts else g.pair_known]
            return replace(ex, features=np.concatenate([ex.features, more], axis=1))
        return train_join_model(JoinExamples.concat([rows(g, False) for g in gs]), seed=seed, reach_nm=reach_nm,
                                contacts=JoinExamples.concat([rows(g, True) for g in gs]), classifier="trees", **kw)

    first = fit(graphs)
    if first.contacts is None:
        raise InputError("a two-stage join model needs contacts within sections in its training stacks")
    extra = {}
    for group in dict.fromkeys(groups):
        held = [g for g, k in zip(graphs, groups) if k == group]
        model = fit([g for g, k in zip(graphs, groups) if k != group])
        extra.update({id(g): g.context(model) for g in held})
    more = tuple(CONTEXT_FEATURE_NAMES)
    second = fit(graphs, extra, names=(FEATURE_NAMES + more, CONTACT_FEATURE_NAMES + more))
    info = {"stages": 2, "context_features": list(more), "out_of_fold_groups": len(set(groups))}
    return replace(first, card={**first.card, **info, **(card or {})}, context=second)
