"""Variation of information and adapted Rand error from one contingency table.

Conventions (CREMI / SNEMI3D): only voxels with gt != 0 are scored (GT background ignored);
the predicted background ``seg == 0`` is an ordinary label (one object), as in CREMI and in
scikit-image's ``ignore_labels=(0,)``. Voxels in an ignore mask (boundary tolerance) are left out.

Let n_ij be the number of scored voxels with gt == i and seg == j, N = sum_ij n_ij,
a_i = sum_j n_ij (GT object sizes), b_j = sum_i n_ij (segment sizes), p_ij = n_ij / N.

Variation of information (bits, log base 2)::

    H(G, S)  = - sum_ij p_ij log2 p_ij
    split    = H(S | G) = H(G, S) - H(G)          (over-segmentation)
    merge    = H(G | S) = H(G, S) - H(S)          (under-segmentation)
    VOI      = split + merge

Per-object contributions, which sum to split and merge::

    split_i  = - sum_j p_ij log2(n_ij / a_i)      for GT object i
    merge_j  = - sum_i p_ij log2(n_ij / b_j)      for segment j

Adapted Rand error (SNEMI3D, pair counting without self-pairs as in scikit-image)::

    precision = sum_ij n_ij (n_ij - 1) / sum_j b_j (b_j - 1)
    recall    = sum_ij n_ij (n_ij - 1) / sum_i a_i (a_i - 1)
    ARAND     = 1 - 2 precision recall / (precision + recall)

A denominator of zero (only single-voxel objects) gives precision (or recall) 1: no pair can
be wrongly joined (or split).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from dendrosam.reconstruct.contingency import Contingency, contingency_table

__all__ = [
    "VoiResult",
    "RandResult",
    "voi",
    "voi_tables",
    "adapted_rand",
    "voi_from_table",
    "rand_from_table",
]


@dataclass(frozen=True)
class VoiResult:
    """Variation of information with per-object contributions (bits).

    Attributes
    ----------
    split, merge : float
        H(seg | gt) and H(gt | seg).
    gt_ids, split_bits : numpy.ndarray
        GT ids and their split contribution, sorted by decreasing contribution.
    seg_ids, merge_bits : numpy.ndarray
        Segment ids and their merge contribution, sorted by decreasing contribution.
    n_voxels : int
        Number of scored voxels N.
    """

    split: float
    merge: float
    gt_ids: np.ndarray
    split_bits: np.ndarray
    seg_ids: np.ndarray
    merge_bits: np.ndarray
    n_voxels: int

    @property
    def total(self) -> float:
        """split + merge."""
        return self.split + self.merge


@dataclass(frozen=True)
class RandResult:
    """Adapted Rand error with its precision and recall."""

    error: float
    precision: float
    recall: float


def _scored(table: Contingency) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Object keys (gt, seg) and counts of the scored foreground cells."""
    keep = (table.gt != 0) & (table.scored > 0)
    return table.object_keys("gt")[keep], table.object_keys("seg")[keep], table.scored[keep]


def _group(keys: np.ndarray, n: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distinct keys, index of each cell's key, and summed counts per key."""
    uniq, inverse = np.unique(keys, return_inverse=True)
    return uniq, inverse, np.bincount(inverse, weights=n, minlength=len(uniq))


def voi_from_table(table: Contingency) -> VoiResult:
    """Variation of information (bits) from a contingency table; see the module docstring."""
    g, s, n = _scored(table)
    total = float(n.sum())
    if total == 0:
        empty = np.zeros(0, np.uint64)
        return VoiResult(0.0, 0.0, empty, np.zeros(0), empty, np.zeros(0), 0)
    g_ids, g_inv, a = _group(g, n)
    s_ids, s_inv, b = _group(s, n)
    nf = n.astype(np.float64)
    split_cell = -(nf / total) * np.log2(nf / a[g_inv])
    merge_cell = -(nf / total) * np.log2(nf / b[s_inv])
    split_obj = np.bincount(g_inv, weights=split_cell, minlength=len(g_ids))
    merge_obj = np.bincount(s_inv, weights=merge_cell, minlength=len(s_ids))
    go, so = np.argsort(-split_obj, kind="stable"), np.argsort(-merge_obj, kind="stable")
    return VoiResult(
        split=float(max(split_obj.sum(), 0.0)),
        merge=float(max(merge_obj.sum(), 0.0)),
        gt_ids=g_ids[go],
        split_bits=np.maximum(split_obj[go], 0.0),
        seg_ids=s_ids[so],
        merge_bits=np.maximum(merge_obj[so], 0.0),
        n_voxels=int(total),
    )


def rand_from_table(table: Contingency) -> RandResult:
    """Adapted Rand error from a contingency table; see the module docstring."""
    g, s, n = _scored(table)
    if n.sum() == 0:
        return RandResult(float("nan"), float("nan"), float("nan"))
    a = _group(g, n)[2]
    b = _group(s, n)[2]
    nf = n.astype(np.float64)
    pairs_ij = float(np.dot(nf, nf - 1))
    pairs_a = float(np.dot(a, a - 1))
    pairs_b = float(np.dot(b, b - 1))
    precision = pairs_ij / pairs_b if pairs_b > 0 else 1.0
    recall = pairs_ij / pairs_a if pairs_a > 0 else 1.0
    denom = precision + recall
    fscore = 2 * precision * recall / denom if denom > 0 else 0.0
    return RandResult(error=1.0 - fscore, precision=precision, recall=recall)


def voi_tables(gt: Any, seg: Any) -> VoiResult:
    """Variation of information with the per-object split/merge tables (worst first).

    Parameters
    ----------
    gt, seg : array_like
        Integer label volumes of equal shape; gt == 0 is ignored.

    Returns
    -------
    VoiResult
    """
    return voi_from_table(contingency_table(gt, seg))


def voi(gt: Any, seg: Any) -> tuple[float, float]:
    """Return ``(split, merge)`` = (H(seg|gt), H(gt|seg)) in bits over voxels with gt != 0.

    Examples
    --------
    >>> import numpy as np
    >>> gt = np.array([[1, 1, 1, 1]])
    >>> voi(gt, np.array([[1, 1, 2, 2]]))  # one object cut in two halves: 1 bit of split
    (1.0, 0.0)
    """
    result = voi_tables(gt, seg)
    return result.split, result.merge


def adapted_rand(gt: Any, seg: Any) -> RandResult:
    """Adapted Rand error (SNEMI3D, foreground-restricted) of ``seg`` against ``gt``.

    Examples
    --------
    >>> import numpy as np
    >>> gt = np.array([[1, 1, 2, 2]])
    >>> adapted_rand(gt, gt).error
    0.0
    """
    return rand_from_table(contingency_table(gt, seg))
