"""Context features for a second join classifier: what the first one said about each pair's neighbours.

A first-stage classifier (:class:`~.joins.JoinModel`) scores every pair of 2D objects on its own:
an overlap between sections, or a contact within one. Its mistakes are rarely isolated. A mask that
leaks into the next neurite has two good-looking continuations in the next section; a true
continuation that the first stage doubted is often confirmed by a third object both ends join
confidently. The second stage (:attr:`~.joins.JoinModel.context`, "stacking" or auto-context)
reads the first stage's features plus these numbers per pair and decides again. Every
"other" column leaves the pair itself out. With ``d`` the pair's section distance (``z_b - z_a``;
0 for a contact), ``a``'s *side* of the pair is its pairs at distance ``+d`` and ``b``'s side its
pairs at ``-d``:

===  ===================================================================================
  0  logit of the pair's own first-stage probability (clipped to [1e-6, 1 - 1e-6])
1-2  highest probability among the other pairs on a's side, and on b's side (0 when none)
3-4  sum of the probabilities of those other pairs, on a's side and on b's side
5-6  number of pairs on a's side and on b's side (the pair included)
7-8  highest probability of a's pairs in the opposite direction (``-d``) and of b's at ``+d``:
     does the chain continue beyond the pair (for a contact: the same as 1-2, the highest
     other contact)
  9  sum over third objects ``c`` of ``p(a, c) * p(c, b)`` (support from shared neighbours)
 10  number of third objects that both ``a`` and ``b`` join with ``p > 0.5``
===  ===================================================================================

Everything is computed on the first stage's edge list (arrays of a few numbers per pair), so the
joins stream the stack twice instead of once; no pixels are held.

Examples
--------
>>> import numpy as np
>>> a, b, d = np.array([1, 1, 2]), np.array([2, 3, 3]), np.array([1, 1, 0])
>>> f = context_features(a, b, d, np.array([0.9, 0.2, 0.8]), n_nodes=4)
>>> f[:, 1].tolist()   # the other pair of object 1 towards the next section
[0.2, 0.9, 0.0]
>>> round(float(f[0, 9]), 2)   # 1-2 is supported by 1-3 and 2-3: 0.2 * 0.8
0.16
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

__all__ = ["CONTEXT_FEATURE_NAMES", "context_features"]

CONTEXT_FEATURE_NAMES = (
    "logit_p", "other_best_a", "other_best_b", "other_sum_a", "other_sum_b", "partners_a", "partners_b",
    "beyond_best_a", "beyond_best_b", "shared_support", "shared_count",
)
_SPAN = 64  # (node, signed distance) -> node * _SPAN + distance + _SPAN // 2


def _sides(node: np.ndarray, dist: np.ndarray, p: np.ndarray) -> tuple[np.ndarray, ...]:
    """Per half-edge: best and sum of the *other* half-edges of its (node, distance) group, group size,
    and the best of the group (node, -distance)."""
    if np.abs(dist).max(initial=0) >= _SPAN // 2:
        raise ValueError(f"section distances must be below {_SPAN // 2}")
    key = node.astype(np.int64) * _SPAN + dist + _SPAN // 2
    order = np.lexsort((-p, key))
    ks, ps = key[order], p[order]
    first = np.r_[True, ks[1:] != ks[:-1]]
    start = np.flatnonzero(first)
    group = np.cumsum(first) - 1
    best, size = ps[start], np.diff(np.r_[start, ks.size])
    second = np.where(size > 1, ps[np.minimum(start + 1, ks.size - 1)], 0.0)
    total = np.bincount(group, ps, start.size)
    is_top = np.zeros(ks.size, bool)
    is_top[start] = True
    other_best = np.empty(ks.size)
    other_best[order] = np.where(is_top, second[group], best[group])
    other_sum = np.empty(ks.size)
    other_sum[order] = total[group] - ps
    count = np.empty(ks.size)
    count[order] = size[group]
    back = node.astype(np.int64) * _SPAN - dist + _SPAN // 2
    i = np.minimum(np.searchsorted(ks[start], back), start.size - 1)
    beyond = np.where(ks[start][i] == back, best[i], 0.0)
    return other_best, other_sum, count, beyond


def context_features(a: np.ndarray, b: np.ndarray, dist: np.ndarray, p: np.ndarray, n_nodes: int) -> np.ndarray:
    """The :data:`CONTEXT_FEATURE_NAMES` of every edge of a first-stage join graph.

    Parameters
    ----------
    a, b : numpy.ndarray
        (E,) the two objects of each edge (ids ``< n_nodes``); ``a`` lies in the earlier section.
    dist : numpy.ndarray
        (E,) section distance ``z_b - z_a`` (0 for a contact within a section).
    p : numpy.ndarray
        (E,) first-stage join probability.
    n_nodes : int
        Number of object ids (largest id + 1).

    Returns
    -------
    numpy.ndarray
        (E, 11) float64, rows aligned with the edges.
    """
    a, b = np.asarray(a, np.int64), np.asarray(b, np.int64)
    dist, p = np.asarray(dist, np.int64), np.asarray(p, np.float64)
    e = a.size
    if e == 0:
        return np.zeros((0, len(CONTEXT_FEATURE_NAMES)))
    other_best, other_sum, count, beyond = _sides(np.r_[a, b], np.r_[dist, -dist], np.r_[p, p])
    both = (np.r_[a, b], np.r_[b, a])
    support = sp.csr_matrix((np.r_[p, p], both), shape=(n_nodes, n_nodes))
    support.sum_duplicates()
    strong = sp.csr_matrix(((np.r_[p, p] > 0.5).astype(np.float64), both), shape=(n_nodes, n_nodes))
    strong.sum_duplicates()
    strong.data = np.minimum(strong.data, 1.0)
    shared = np.asarray((support @ support)[a, b]).ravel()
    shared_count = np.asarray((strong @ strong)[a, b]).ravel()
    q = np.clip(p, 1e-6, 1 - 1e-6)
    return np.stack([np.log(q / (1 - q)), other_best[:e], other_best[e:], other_sum[:e], other_sum[e:],
                     count[:e], count[e:], beyond[:e], beyond[e:], shared, shared_count], axis=1)
