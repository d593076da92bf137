"""Learned joins: build 3D objects from 2D objects where a trained edge classifier says so.

The agglomeration starts from a partition of the 2D objects into 3D objects: every 2D object on
its own (:class:`SectionObjectIds`, the pipeline's default ``joins.start = "sections"``) or the
tracker's 3D objects (:func:`~dendrosam.reconstruct.track`, ``"tracks"``). Every overlapping pair of
2D objects in sections ``z`` / ``z + d`` (``d <= max_gap``) that belong to *different* starting
objects is scored by a learned classifier (gradient-boosted trees or MLPs, :class:`JoinModel`; features
in :mod:`.join_features`), optionally twice: a second stage sees what the first said about each
pair's neighbours (:mod:`.join_context`). The pairs are contracted onto the starting objects, and the objects are
merged by one of two agglomerations (GASP rules, Bailoni et al. 2022). ``linkage="additive"``
(greedy additive edge contraction, the pipeline's default ``joins.linkage``): every pair adds
``interface * (logit p - logit stop)`` to its two clusters' edge, and the largest positive sum is
contracted first. ``linkage="average"`` (this function's default, kept for the API): repeatedly
merge the two clusters whose interface-weighted mean join probability is highest, while it is at
least ``stop``. Starting from the tracker's objects keeps every link the tracker made,
right or wrong; starting from the 2D objects lets the classifier decide those links too.

When asked to (``contacts=True``, the pipeline's default) and the model has a
contact ensemble (:attr:`JoinModel.contacts`), the 2D objects that touch *within* a section
(:mod:`.join_contacts`) add edges too, mostly repulsive: two neurites lying side by side along a
membrane. Every edge is weighted by the interface it stands for, in nm² (the overlap area between
sections; within one, contact length x section thickness, times ``contact_weight``), so the two
kinds of evidence are averaged on one scale and a single leaky mask bridging two neurites can be outvoted by the
membrane they share over many sections. The default ``stop = 0.5`` is the
classifier's own decision threshold (join when it is more likely one neuron than two), not a
value tuned on evaluation data.

The shipped model (:func:`default_join_model`) was trained by :func:`train_join_model` on
automatic masks of sections the evaluation does not use; its card says on what and how.

Examples
--------
>>> import numpy as np
>>> from dendrosam.reconstruct.joins import average_agglomeration
>>> edges = np.array([[1, 2], [2, 3], [1, 3]]); p = np.array([0.9, 0.6, 0.2]); w = np.ones(3)
>>> average_agglomeration(4, edges, p, w, stop=0.5).tolist()   # {1,2} first; then {1,2}-3 = 0.4
[0, 1, 1, 3]
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from dendrosam.errors import CheckpointError, ConfigError

from .agglomerate import additive_agglomeration, average_agglomeration, logit, merge_pooled, pool_pairs
from .config import LINKAGES
from .join_context import CONTEXT_FEATURE_NAMES, context_features
from .join_contacts import CONTACT_FEATURE_NAMES, DEFAULT_REACH_NM, ContactTable, contact_tables, interface_area
from .join_features import FEATURE_NAMES, SectionObjectIds, iter_pair_tables
from .join_trees import TreeEnsemble

__all__ = ["JoinModel", "JoinResult", "SectionObjectIds", "average_agglomeration", "additive_agglomeration",
           "learned_joins", "default_join_model", "load_join_model", "DEFAULT_JOIN_MODEL", "PIECES_JOIN_MODEL",
           "PER_ID_JOIN_MODEL"]

#: The shipped join model: trained on the masks of the shipped (per-profile) SAM.
PIECES_JOIN_MODEL = Path(__file__).with_name("models") / "dendrosam_joins_pieces.npz"
DEFAULT_JOIN_MODEL = PIECES_JOIN_MODEL
#: The same recipe trained on the masks of the per-GT-id SAM (``segment.sam = "per-id"``).
PER_ID_JOIN_MODEL = PIECES_JOIN_MODEL.with_name("dendrosam_joins_per_id.npz")


#: Feature counts (pairs, contacts) of models trained before the per-object columns were added.
LEGACY_WIDTHS = (19, 11)

@dataclass(frozen=True)
class JoinModel:
    """Classifiers that score 2D-object pairs: an ensemble of small MLPs or gradient-boosted trees.

    Inference is numpy / numba only (no torch or scikit-learn needed).

    Attributes
    ----------
    mean, std : numpy.ndarray
        (F,) feature standardisation (of the MLP input; zeros and ones for trees).
    members : tuple
        One tuple of ``(weight, bias)`` layers per MLP member; ReLU between layers, sigmoid at the
        end. Empty for a tree model.
    card : dict
        Provenance: data, command, validation figures.
    contacts : JoinModel, optional
        The ensemble that scores contacts *within* a section (features
        :data:`~.join_contacts.CONTACT_FEATURE_NAMES`); None for a model that only scores overlaps
        between sections.
    trees : TreeEnsemble, optional
        Gradient-boosted trees (:mod:`.join_trees`) that replace the MLP members.
    context : JoinModel, optional
        A second stage (with its own ``contacts``) that scores every pair again from its features
        plus :data:`~.join_context.CONTEXT_FEATURE_NAMES`: what this model said about the pair's
        neighbours (:func:`learned_joins` then streams the stack twice).
    """

    mean: np.ndarray
    std: np.ndarray
    members: tuple = field(repr=False)
    card: dict = field(default_factory=dict, compare=False)
    contacts: JoinModel | None = field(default=None, repr=False)
    trees: TreeEnsemble | None = field(default=None, repr=False)
    context: JoinModel | None = field(default=None, repr=False)

    def predict(self, features: np.ndarray) -> np.ndarray:
        """Join probability of each row of ``features`` ((P, F) -> (P,)): the trees', or the MLP members' mean.

        A model trained on fewer features than ``F`` (an earlier feature list: the same columns,
        fewer of them) reads the leading columns it knows.
        """
        x = np.asarray(features, np.float64)[:, :self.mean.size]
        if self.trees is not None:
            return self.trees.predict(x)
        x = (x - self.mean) / self.std
        out = np.zeros(len(x))
        for layers in self.members:
            h = x
            for i, (w, b) in enumerate(layers):
                h = h @ w.T + b
                if i < len(layers) - 1:
                    h = np.maximum(h, 0.0)
            out += 0.5 * (1.0 + np.tanh(0.5 * h[:, 0]))  # the logistic function, without overflow
        return out / max(len(self.members), 1)

    def _arrays(self, prefix: str) -> dict[str, np.ndarray]:
        arrays = {f"{prefix}mean": self.mean, f"{prefix}std": self.std}
        for k, layers in enumerate(self.members):
            for i, (w, b) in enumerate(layers):
                arrays[f"{prefix}m{k}_w{i}"], arrays[f"{prefix}m{k}_b{i}"] = w, b
        if self.trees is not None:
            arrays.update(self.trees.arrays(f"{prefix}trees_"))
        return arrays

    def _stage(self, prefix: str) -> tuple[dict, dict[str, np.ndarray]]:
        card, arrays = dict(self.card), self._arrays(prefix)
        if self.contacts is not None:
            card["contacts"] = self.contacts.card
            arrays.update(self.contacts._arrays(f"{prefix}contacts_"))
        return card, arrays

    def save(self, path: str | Path) -> None:
        """Write an ``.npz`` (plain arrays and a JSON card; loads without pickle)."""
        card, arrays = self._stage("")
        if self.context is not None:
            card["context"], more = self.context._stage("context_")
            arrays.update(more)
        np.savez_compressed(path, **arrays, card=np.array(json.dumps(card)))

    @staticmethod
    def _from(data: dict, prefix: str, n_features: tuple[int, ...], card: dict) -> JoinModel:
        members, k = [], 0
        while f"{prefix}m{k}_w0" in data:
            n = sum(1 for key in data if key.startswith(f"{prefix}m{k}_w"))
            members.append(tuple((data[f"{prefix}m{k}_w{i}"], data[f"{prefix}m{k}_b{i}"]) for i in range(n)))
            k += 1
        trees = TreeEnsemble.from_arrays(data, f"{prefix}trees_") if f"{prefix}trees_feature" in data else None
        model = JoinModel(data[f"{prefix}mean"], data[f"{prefix}std"], tuple(members), card, trees=trees)
        width = model.mean.size  # the current feature list, or the earlier one (its leading columns)
        too_wide = trees is not None and trees.feature.max(initial=-1) >= width
        if (not members and trees is None) or model.mean.shape != (width,) or width not in n_features or too_wide:
            stage = "second-stage " if prefix.startswith("context") else ""
            what = f"{stage}{'contact' if 'contacts' in prefix else 'pair'}"
            raise ValueError(f"its {what} ensemble is not for {n_features[-1]} features")
        return model

    @classmethod
    def _load_stage(cls, data: dict, prefix: str, card: dict,
                    widths: tuple[tuple[int, ...], tuple[int, ...]]) -> JoinModel:
        model = cls._from(data, prefix, widths[0], card)
        if f"{prefix}contacts_mean" in data:
            contacts = cls._from(data, f"{prefix}contacts_", widths[1], dict(card.get("contacts", {})))
            model = replace(model, contacts=contacts)
        return model

    @classmethod
    def load(cls, path: str | Path) -> JoinModel:
        """Read a model written by :meth:`save`."""
        try:
            with np.load(path, allow_pickle=False) as z:
                data = {k: z[k] for k in z.files}
        except (OSError, ValueError) as exc:
            raise CheckpointError(f"cannot read join model {path}: {exc}") from None
        try:
            card = json.loads(str(data["card"]))
            model = cls._load_stage(data, "", card, ((LEGACY_WIDTHS[0], len(FEATURE_NAMES)),
                                                     (LEGACY_WIDTHS[1], len(CONTACT_FEATURE_NAMES))))
            if "context_mean" in data:
                more = len(CONTEXT_FEATURE_NAMES)
                context = cls._load_stage(data, "context_", dict(card.get("context", {})),
                                          ((len(FEATURE_NAMES) + more,), (len(CONTACT_FEATURE_NAMES) + more,)))
                model = replace(model, context=context)
        except KeyError as exc:
            raise CheckpointError(f"{path} is not a dendrosam join model (missing {exc})") from None
        except ValueError as exc:
            raise CheckpointError(f"{path} is not a dendrosam join model: {exc}") from None
        return model


def default_join_model() -> JoinModel:
    """The shipped join model (trained by ``make train-models``)."""
    if not DEFAULT_JOIN_MODEL.is_file():
        raise CheckpointError(f"the shipped join model is missing: {DEFAULT_JOIN_MODEL.name}")
    return JoinModel.load(DEFAULT_JOIN_MODEL)


def load_join_model(name: str) -> JoinModel | None:
    """``"default"`` or ``"pieces"`` -> the shipped model (trained on the per-profile SAM's masks),
    ``"per-id"`` -> the one trained on the per-GT-id SAM's masks, ``"none"`` -> None, anything else ->
    :meth:`JoinModel.load`."""
    if name == "none":
        return None
    if name in ("default", "pieces"):
        return default_join_model()
    return JoinModel.load(PER_ID_JOIN_MODEL if name == "per-id" else name)


_POOL_EVERY = 1_000_000  # scored pairs held before they are pooled per object pair


@dataclass(frozen=True)
class _Edges:
    a: np.ndarray  # (P,) starting object ids
    b: np.ndarray
    dist: np.ndarray  # (P,) section distance (0: a contact within a section)
    w: np.ndarray  # (P,) interface area, nm²
    p: np.ndarray  # (P,) join probability


class _ScoredEdges:
    """One pass over the stack per call of :meth:`scored`: the pairs of 2D objects of different starting objects."""

    def __init__(self, labels2d: Any, image: Any, labels3d: Any, voxel_size: tuple[float, float, float],
                 shifts: np.ndarray | None, max_gap: int, per_section: Any, contact_weight: float = 1.0,
                 warps: np.ndarray | None = None) -> None:
        self.tables = lambda: iter_pair_tables(labels2d, image, voxel_size, ref=labels3d, shifts=shifts,
                                               max_gap=max_gap, per_section=per_section, warps=warps)
        self.voxel_size, self.contact_weight = voxel_size, contact_weight
        self.n_pairs = self.n_contacts = 0

    def scored(self, model: JoinModel, context: np.ndarray | None = None) -> Iterator[_Edges]:
        """Score every table with ``model`` (its ``contacts`` for contacts); ``context``: (E, 11) rows
        appended to the features, in the order of an earlier pass."""
        self.n_pairs = self.n_contacts = done = 0
        for table in self.tables():
            keep = (table.ref_a > 0) & (table.ref_b > 0) & (table.ref_a != table.ref_b)
            n = int(keep.sum())
            if not n:
                continue
            x = table.features[keep]
            if context is not None:
                x, done = np.concatenate([x, context[done:done + n]], axis=1), done + n
            if isinstance(table, ContactTable):  # interface area: contact length x section thickness
                self.n_contacts += n
                w = interface_area(table, self.voxel_size)[keep] * self.contact_weight
                p, dist = model.contacts.predict(x), 0
            else:  # interface area: overlap between sections
                self.n_pairs += n
                w, p, dist = interface_area(table, self.voxel_size)[keep], model.predict(x), table.zb - table.za
            yield _Edges(table.ref_a[keep], table.ref_b[keep], np.full(n, dist, np.int64), w, p)


@dataclass(frozen=True)
class JoinResult:
    """Output of :func:`learned_joins`.

    Attributes
    ----------
    lut : numpy.ndarray
        (N + 1,) uint32 map from the tracker's ids to the joined ids (consecutive, in order of each
        object's first voxel when the input ids were; 0 stays 0).
    n_objects : int
        Number of objects after joining.
    n_pairs : int
        Overlapping 2D pairs between different 3D objects that were scored.
    n_contacts : int
        Touching 2D pairs (within a section) between different 3D objects that were scored.
    """

    lut: np.ndarray = field(repr=False)
    n_objects: int
    n_pairs: int
    n_contacts: int = 0


def learned_joins(
    labels2d: Any,
    image: Any,
    labels3d: Any,
    voxel_size: tuple[float, float, float],
    model: JoinModel | None = None,
    shifts: np.ndarray | None = None,
    stop: float = 0.5,
    max_gap: int = 2,
    n_objects: int | None = None,
    contacts: bool = True,
    linkage: str = "average",
    contact_weight: float = 1.0,
    warps: np.ndarray | None = None,
) -> JoinResult:
    """Decide which starting objects to join into 3D objects (streams the stack once).

    Parameters
    ----------
    labels2d, image : array-like
        (Z, Y, X) the per-section 2D labels and the EM image.
    labels3d : array-like
        (Z, Y, X) the starting objects, ids ``1..n_objects``: the tracker's 3D objects, or
        :class:`SectionObjectIds` ``(labels2d)`` to start from every 2D object on its own.
    voxel_size : tuple of float
        (z, y, x) nm.
    model : JoinModel, optional
        Default: :func:`default_join_model`.
    shifts : numpy.ndarray, optional
        The tracker's (Z, 2) section shifts (``TrackResult.shifts``).
    warps : numpy.ndarray, optional
        The tracker's (Z, 2, 3) section transforms (``TrackResult.warps``); when given they
        replace ``shifts`` (pass them with ``align_model="affine"``).
    stop : float
        Smallest mean join probability at which two objects are merged (0 < stop <= 1).
    max_gap : int
        Largest section distance of a scored pair.
    n_objects : int, optional
        Largest id in ``labels3d`` (read from it when omitted).
    contacts : bool
        Also score the contacts within each section (when the model has a contact ensemble):
        objects lying side by side along a membrane repel each other in the agglomeration. On by
        default, as in the pipeline (``joins.contacts``); a model without a contact ensemble
        scores overlaps only. A model with a second stage (:attr:`JoinModel.context`) uses it
        only with contacts on (it was trained on both kinds of edge); it streams the stack twice and
        holds four numbers per scored pair in between.
    linkage : {"average", "additive"}
        :func:`average_agglomeration` (the default) or :func:`additive_agglomeration` (GAEC on the
        interface-weighted log-odds, ``stop`` as the zero point).
    contact_weight : float
        Factor on each contact's interface (contact length x section thickness); ``max_gap`` would
        count each stretch of a neurite's surface as often as its overlaps (one per section distance).

    Returns
    -------
    JoinResult
        Apply it with ``result.lut[labels3d]`` (block by block for large volumes); ids are
        consecutive, in order of the starting objects' ids.
    """
    if not 0.0 < stop <= 1.0:
        raise ConfigError(f"joins stop must be in (0, 1], got {stop}")
    if linkage not in LINKAGES:
        raise ConfigError(f"joins linkage must be one of {', '.join(LINKAGES)}, got {linkage!r}")
    if not contact_weight > 0:
        raise ConfigError(f"joins contact_weight must be > 0, got {contact_weight}")
    score = logit if linkage == "additive" else (lambda p: p)  # what each pair adds, times its interface
    model = model or default_join_model()
    scorer = model.contacts if contacts else None
    per_section = (contact_tables(voxel_size, float(scorer.card.get("reach_nm", DEFAULT_REACH_NM)))
                   if scorer is not None else None)
    stream = _ScoredEdges(labels2d, image, labels3d, voxel_size, shifts, max_gap, per_section, contact_weight,
                          warps)
    stage, context = model, None
    second = model.context is not None and model.context.contacts is not None and scorer is not None
    if second:  # score every pair again, with the first stage's context
        first = [(e.a, e.b, e.dist, e.p) for e in stream.scored(model)]
        a, b, dist, p = (np.concatenate(x) for x in zip(*first)) if first else (np.zeros(0, np.int64),) * 4
        context = context_features(a, b, dist, p, int(max(a.max(initial=0), b.max(initial=0))) + 1)
        stage = model.context
    pooled = (np.zeros((0, 2), np.int64), np.zeros(0), np.zeros(0))  # (ends, sum w*score, sum w) per object pair
    ends, wp, w, pending = [], [], [], 0

    def pool() -> tuple:
        return pool_pairs(np.concatenate([pooled[0], *ends]), np.concatenate([pooled[1], *wp]),
                          np.concatenate([pooled[2], *w]))

    for edges in stream.scored(stage, context):
        ends.append(np.stack([edges.a, edges.b], axis=1))
        w.append(edges.w)
        wp.append(edges.w * score(edges.p))
        pending += edges.a.size
        if pending > _POOL_EVERY:  # memory stays bounded by the number of distinct object pairs
            pooled, ends, wp, w, pending = pool(), [], [], [], 0
    pooled = pool()
    if n_objects is None:
        n_objects = max((int(np.asarray(labels3d[z]).max(initial=0)) for z in range(labels3d.shape[0])), default=0)
    e, swp, sw = pooled
    if linkage == "average":
        root = merge_pooled(n_objects + 1, e, swp, sw, stop, mean=True)
    else:  # the summed log-odds are pooled directly: the logit of a pooled mean is not their sum
        root = merge_pooled(n_objects + 1, e, swp - sw * logit(stop), sw, 0.0, mean=False)
    roots = np.unique(root[1:])  # cluster minima, in the input's id order
    lut = np.zeros(n_objects + 1, np.uint32)
    lut[1:] = np.searchsorted(roots, root[1:]) + 1
    return JoinResult(lut=lut, n_objects=int(roots.size), n_pairs=stream.n_pairs, n_contacts=stream.n_contacts)
