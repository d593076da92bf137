"""Train a :class:`~dendrosam.reconstruct.joins.JoinModel` from automatic masks and ground truth.

A training example is an overlapping pair of 2D objects in sections ``z`` / ``z + d`` of the masks
your segmentation produces (:func:`join_examples`); its label is whether both objects' majority
ground-truth neuron is the same (pairs touching an object with no ground truth are left out).
The loss is binary cross-entropy weighted by the overlap area, so the classifier is most accurate
on the pairs that move the most voxels. Each ensemble member is a 2-hidden-layer MLP trained
full-batch with Adam from its own seed; members differ only by initialisation.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from dendrosam.errors import InputError

from .join_features import FEATURE_NAMES, iter_pair_tables
from .joins import JoinModel

__all__ = ["JoinExamples", "join_examples", "train_join_model"]


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


def join_examples(labels2d: Any, image: Any, gt: Any, voxel_size: tuple[float, float, float],
                  max_gap: int = 2) -> JoinExamples:
    """Training pairs of one stack: (Z, Y, X) 2D labels, image and ground-truth neurons."""
    feats, labels, weights = [], [], []
    for t in iter_pair_tables(labels2d, image, voxel_size, ref=gt, max_gap=max_gap):
        keep = (t.ref_a > 0) & (t.ref_b > 0)
        feats.append(t.features[keep])
        labels.append((t.ref_a[keep] == t.ref_b[keep]).astype(np.float64))
        weights.append(t.count[keep].astype(np.float64))
    if not feats or not sum(len(f) for f in feats):
        raise InputError("no overlapping 2D objects with ground truth: nothing to train the joins on")
    return JoinExamples(np.concatenate(feats), np.concatenate(labels), np.concatenate(weights))


def train_join_model(examples: JoinExamples, members: int = 5, hidden: int = 32, steps: int = 1500,
                     lr: float = 1e-2, weight_decay: float = 1e-4, seed: int = 0,
                     card: dict | None = None) -> JoinModel:
    """Fit an ensemble of MLPs (``F -> hidden -> hidden -> 1``), full batch, CPU, deterministic.

    Parameters
    ----------
    examples : JoinExamples
        From :func:`join_examples` (several stacks: :meth:`JoinExamples.concat`).
    members : int
        Ensemble size; member ``k`` starts from seed ``seed + k``.
    hidden, steps, lr, weight_decay
        MLP width, Adam steps, learning rate and weight decay.
    card : dict, optional
        Provenance stored with the model.
    """
    import torch

    x = examples.features
    if x.shape[1] != len(FEATURE_NAMES):
        raise InputError(f"expected {len(FEATURE_NAMES)} features, got {x.shape[1]}")
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
    info = {"features": list(FEATURE_NAMES), "members": members, "hidden": hidden, "steps": steps,
            "lr": lr, "weight_decay": weight_decay, "seed": seed, "n_pairs": int(len(x)),
            "positive_fraction": float(examples.labels.mean())}
    return JoinModel(mean, std, tuple(out), {**info, **(card or {})})
