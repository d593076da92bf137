"""Object matching by IoU with Hungarian assignment; segmentation accuracy (micro-sam convention).

Objects are the non-zero ids of gt and seg (0 is background on both sides), or ``(z, id)``
pairs when evaluating per section. For GT object i and segment j with overlap n_ij::

    IoU_ij = n_ij / (|g_i| + |s_j| - n_ij)

Only overlapping pairs are considered (IoU of non-touching objects is 0). For each threshold
t in 0.50, 0.55, ..., 0.95, a one-to-one matching between GT objects and segments that
maximises first the number of pairs with IoU >= t, then their summed IoU, is found with
:func:`scipy.optimize.linear_sum_assignment` on each connected group of candidate pairs (above
t = 0.5 every object has at most one candidate, so most groups are single pairs). Then::

    TP(t) = matched pairs, FP(t) = n_seg - TP(t), FN(t) = n_gt - TP(t)
    SA(t) = TP / (TP + FP + FN)                 (segmentation accuracy)
    mSA   = mean of SA(t) over the 10 thresholds
    precision = TP / n_seg, recall = TP / n_gt, F1 = 2 TP / (n_gt + n_seg)   (at t = 0.5)

With nothing to find and nothing found (n_gt = n_seg = 0) SA is undefined (NaN).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dendrosam.reconstruct.contingency import Contingency

__all__ = ["THRESHOLDS", "MatchResult", "match_objects", "match_from_table"]

THRESHOLDS: tuple[float, ...] = tuple(np.round(np.arange(0.50, 0.951, 0.05), 2).tolist())


@dataclass(frozen=True)
class MatchResult:
    """Matching counts per IoU threshold (and per section when evaluated per section).

    Attributes
    ----------
    thresholds : tuple of float
        IoU thresholds (0.50:0.05:0.95).
    tp : numpy.ndarray
        (T,) true positives per threshold.
    n_gt, n_seg : int
        Number of GT objects and of predicted objects.
    section_tp : numpy.ndarray or None
        (Z, T) true positives per section and threshold (per-section evaluation only).
    section_n_gt, section_n_seg : numpy.ndarray or None
        (Z,) object counts per section.
    """

    thresholds: tuple[float, ...]
    tp: np.ndarray
    n_gt: int
    n_seg: int
    section_tp: np.ndarray | None = None
    section_n_gt: np.ndarray | None = None
    section_n_seg: np.ndarray | None = None

    @staticmethod
    def _sa(tp: np.ndarray, n_gt: np.ndarray | int, n_seg: np.ndarray | int) -> np.ndarray:
        denom = np.asarray(n_gt + n_seg - tp, dtype=np.float64)  # TP + FP + FN
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(denom > 0, tp / np.where(denom > 0, denom, 1), np.nan)

    @property
    def sa(self) -> np.ndarray:
        """(T,) segmentation accuracy TP / (TP + FP + FN) per threshold."""
        return self._sa(self.tp, self.n_gt, self.n_seg)

    @property
    def msa(self) -> float:
        """Mean segmentation accuracy over the thresholds."""
        return float(np.mean(self.sa))

    def at(self, threshold: float) -> float:
        """Segmentation accuracy at one of :attr:`thresholds`."""
        return float(self.sa[self.thresholds.index(round(threshold, 2))])

    @property
    def precision(self) -> float:
        """TP / n_seg at IoU 0.5 (NaN without predictions)."""
        return float(self.tp[0] / self.n_seg) if self.n_seg else float("nan")

    @property
    def recall(self) -> float:
        """TP / n_gt at IoU 0.5 (NaN without GT objects)."""
        return float(self.tp[0] / self.n_gt) if self.n_gt else float("nan")

    @property
    def f1(self) -> float:
        """2 TP / (n_gt + n_seg) at IoU 0.5."""
        total = self.n_gt + self.n_seg
        return float(2 * self.tp[0] / total) if total else float("nan")

    @property
    def section_sa(self) -> np.ndarray | None:
        """(Z, T) segmentation accuracy per section (NaN for sections with no objects)."""
        if self.section_tp is None:
            return None
        return self._sa(self.section_tp, self.section_n_gt[:, None], self.section_n_seg[:, None])

    @property
    def section_f1(self) -> np.ndarray | None:
        """(Z,) F1 at IoU 0.5 per section (NaN for sections with no objects)."""
        if self.section_tp is None:
            return None
        total = (self.section_n_gt + self.section_n_seg).astype(np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(total > 0, 2 * self.section_tp[:, 0] / np.where(total > 0, total, 1), np.nan)


def _max_matching(rows: np.ndarray, cols: np.ndarray, iou: np.ndarray) -> np.ndarray:
    """Boolean mask of candidate pairs kept by a maximum-cardinality, maximum-IoU matching."""
    from scipy.optimize import linear_sum_assignment
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    matched = np.zeros(len(rows), dtype=bool)
    if len(rows) == 0:
        return matched
    r_ids, r = np.unique(rows, return_inverse=True)
    c_ids, c = np.unique(cols, return_inverse=True)
    nr = len(r_ids)
    # bipartite graph: nodes 0..nr-1 rows, nr.. cols
    graph = coo_matrix((np.ones(len(r)), (r, c + nr)), shape=(nr + len(c_ids),) * 2)
    _, comp = connected_components(graph, directed=False)
    pair_comp = comp[r]
    comp_size = np.bincount(pair_comp)
    single = comp_size[pair_comp] == 1  # isolated pair: matched trivially
    matched[single] = True
    for label in np.unique(pair_comp[~single]):  # loop over ambiguous groups (rare)
        idx = np.flatnonzero(pair_comp == label)
        ur, rr = np.unique(r[idx], return_inverse=True)
        uc, cc = np.unique(c[idx], return_inverse=True)
        weight = np.zeros((len(ur), len(uc)))
        # cardinality first: each pair is worth 1, plus an IoU tie-break summing to < 1
        weight[rr, cc] = 1.0 + iou[idx] / (2 * min(len(ur), len(uc)))
        sel_r, sel_c = linear_sum_assignment(weight, maximize=True)
        lookup = {(a, b): i for a, b, i in zip(rr.tolist(), cc.tolist(), idx.tolist())}
        for a, b in zip(sel_r.tolist(), sel_c.tolist()):
            if weight[a, b] > 0:
                matched[lookup[(a, b)]] = True
    return matched


def match_from_table(
    table: Contingency, thresholds: tuple[float, ...] = THRESHOLDS
) -> MatchResult:
    """IoU matching of all objects of a contingency table; see the module docstring."""
    gkey, skey, n = table.object_keys("gt"), table.object_keys("seg"), table.count
    gfg, sfg = table.gt != 0, table.seg != 0
    g_ids, g_inv = np.unique(gkey[gfg], return_inverse=True)
    s_ids, s_inv = np.unique(skey[sfg], return_inverse=True)
    g_size = np.bincount(g_inv, weights=n[gfg], minlength=len(g_ids))
    s_size = np.bincount(s_inv, weights=n[sfg], minlength=len(s_ids))
    both = gfg & sfg
    gi = np.searchsorted(g_ids, gkey[both])
    si = np.searchsorted(s_ids, skey[both])
    inter = n[both].astype(np.float64)
    iou = inter / (g_size[gi] + s_size[si] - inter)
    cand = iou >= min(thresholds)
    gi, si, iou = gi[cand], si[cand], iou[cand]
    pair_section = table.section[both][cand] if table.section is not None else None
    tp = np.zeros(len(thresholds), dtype=np.int64)
    sec_tp = np.zeros((table.n_sections, len(thresholds)), np.int64) if pair_section is not None else None
    for k, t in enumerate(thresholds):
        keep = iou >= t
        matched = np.flatnonzero(keep)[_max_matching(gi[keep], si[keep], iou[keep])]
        tp[k] = len(matched)
        if sec_tp is not None:
            sec_tp[:, k] = np.bincount(pair_section[matched], minlength=table.n_sections)
    sec_gt = sec_seg = None
    if table.section is not None:
        shift = np.uint64(32)
        sec_gt = np.bincount((g_ids >> shift).astype(np.int64), minlength=table.n_sections)
        sec_seg = np.bincount((s_ids >> shift).astype(np.int64), minlength=table.n_sections)
    return MatchResult(
        thresholds=tuple(thresholds),
        tp=tp,
        n_gt=len(g_ids),
        n_seg=len(s_ids),
        section_tp=sec_tp,
        section_n_gt=sec_gt,
        section_n_seg=sec_seg,
    )


def match_objects(gt: np.ndarray, seg: np.ndarray, *, per_section: bool = False) -> MatchResult:
    """Match the objects of two label volumes by IoU (Hungarian); see the module docstring.

    Examples
    --------
    >>> import numpy as np
    >>> gt = np.array([[1, 1, 0, 2, 2]])
    >>> result = match_objects(gt, np.array([[5, 5, 0, 0, 7]]))
    >>> result.tp[0], result.msa  # object 2 is only half covered (IoU 0.5): matched at t=0.5 only
    (np.int64(2), 0.4)
    """
    from dendrosam.reconstruct.contingency import contingency_table

    return match_from_table(contingency_table(gt, seg, per_section=per_section))
